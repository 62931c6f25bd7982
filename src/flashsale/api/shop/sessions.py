"""Public catalogue of flash sessions with live remaining stock; no token needed.

Anyone may call these routes as often as they like, so they answer from the platform's in-memory
shop window (`services/showcase.py`) and never from the store or the ledger: each page is serialised
once per snapshot and state epoch, carries a strong ETag of its bytes, and may be cached for a
second; `If-None-Match` with the current ETag gets an empty 304.

A flood of them also costs little CPU: `PublicReadFastPath`, an ASGI middleware that `create_app`
installs, answers well-formed reads from a fresh snapshot before the framework sees them at all,
with the same functions as the declared endpoints; anything else (a stale snapshot, a query the
route must refuse with 422) goes on to the routes below.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from flashsale.api.deps import PathId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import MAX_INT32, ShopSessionOut
from flashsale.bootstrap import Platform
from flashsale.domain.campaign import SessionState
from flashsale.services.showcase import SHOWN_BY_DEFAULT, ShowcaseSnapshot

PREFIX = "/sessions"
CACHE_CONTROL = "public, max-age=1"  # the view itself refreshes stock about twice a second
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not Modified: the `If-None-Match` ETag is still the current one"}
}
_LIST = TypeAdapter(list[ShopSessionOut])


@dataclass(frozen=True, slots=True)
class Page:
    """A serialised answer and its strong ETag."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, body: bytes) -> Page:
        """Wrap serialised JSON with the ETag of its bytes."""
        return cls(body, f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"')


# -- the answers: from a snapshot, at an instant ----------------------------------------------------
def list_answer(
    snapshot: ShowcaseSnapshot, now: datetime, wanted: frozenset[SessionState], if_none_match: str | None
) -> Response:
    """Answer GET /sessions for the states `wanted` at `now`."""
    page = snapshot.memoized(
        ("list", wanted),
        now,
        lambda: Page.of(_LIST.dump_json([ShopSessionOut.of(v) for v in snapshot.views(wanted, now)])),
    )
    return _answer(page, if_none_match)


def session_answer(
    snapshot: ShowcaseSnapshot, now: datetime, session_id: int, if_none_match: str | None
) -> Response:
    """Answer GET /sessions/{id} at `now`; an unknown id raises NOT_FOUND."""
    view = snapshot.view(session_id, now)  # raises before anything is memoised for a wrong id
    page = snapshot.memoized(
        ("session", session_id), now, lambda: Page.of(ShopSessionOut.of(view).model_dump_json().encode())
    )
    return _answer(page, if_none_match)


def _answer(page: Page, if_none_match: str | None) -> Response:
    headers = {"ETag": page.etag, "Cache-Control": CACHE_CONTROL}
    if _matches(if_none_match, page.etag):
        return Response(status_code=304, headers=headers)
    return Response(page.body, media_type="application/json", headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    # RFC 9110: If-None-Match uses the weak comparison, so a W/ prefix still matches.
    if not if_none_match:
        return False
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return any(tag == "*" or tag.removeprefix("W/") == etag for tag in tags)


def _states_of(query: QueryParams) -> frozenset[SessionState] | None:
    """Parse `state` as the route does; None when FastAPI must refuse it (422)."""
    values = query.getlist("state")
    try:
        return frozenset(SessionState(v) for v in values) if values else SHOWN_BY_DEFAULT
    except ValueError:
        return None


def _session_id_of(raw: str) -> int | None:
    """Parse a session id as the route does; None when FastAPI must refuse it (422)."""
    return int(raw) if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_INT32 else None


# -- the routes -------------------------------------------------------------------------------------
router = APIRouter(prefix=PREFIX, tags=["sessions"])


@router.get("", response_model=list[ShopSessionOut], responses={**error_responses(422, 429), **NOT_MODIFIED})
async def list_sessions(
    request: Request,
    platform: PlatformDep,
    state: Annotated[
        list[SessionState] | None, Query(description="Repeat to combine; default: open and upcoming")
    ] = None,
) -> Response:
    """List sessions in the given states, soonest first, with each item's remaining stock."""
    snapshot = await platform.showcase.snapshot_async()
    now = platform.deps.now()  # states are exact at this instant, however old the snapshot
    wanted = frozenset(state) if state else SHOWN_BY_DEFAULT
    return list_answer(snapshot, now, wanted, request.headers.get("if-none-match"))


@router.get(
    "/{session_id}",
    response_model=ShopSessionOut,
    responses={**error_responses(404, 422, 429), **NOT_MODIFIED},
)
async def get_session(request: Request, session_id: PathId, platform: PlatformDep) -> Response:
    """Show one session, its state now, and its items."""
    snapshot = await platform.showcase.snapshot_async()
    return session_answer(snapshot, platform.deps.now(), session_id, request.headers.get("if-none-match"))


# -- the middleware ---------------------------------------------------------------------------------
# The declared routes, by endpoint: the fast path answers for `list_sessions` and `get_session`.
_ROUTE_OF = {route.endpoint: route for route in router.routes if isinstance(route, APIRoute)}


def is_public_read(path: str) -> bool:
    """True for the anonymous reads of the shop window: /sessions and /sessions/…."""
    return path == PREFIX or path.startswith(PREFIX + "/")


class PublicReadFastPath:
    """Pure ASGI middleware: answer GET /sessions and GET /sessions/{id} from a fresh snapshot first.

    The framework's routing, middleware and exception handling cost more CPU than the answer itself
    (in process: about 145 µs per GET /sessions through the route, 15 µs here), and on one worker
    every flooded GET is CPU the buyers do not get. Anything this cannot answer at
    once (a stale snapshot, which the route refreshes once for all readers; a query it does not
    parse; an unknown session) goes on to the app unchanged, so every answer stays the routes'.
    Install it outermost: `app.add_middleware(PublicReadFastPath, platform=platform)`.
    """

    def __init__(self, app: ASGIApp, *, platform: Platform) -> None:
        self.app = app
        self.platform = platform

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a plain public read from memory, or pass the request on."""
        answer = self._answer(scope) if scope["type"] == "http" and scope["method"] == "GET" else None
        if answer is None:
            await self.app(scope, receive, send)
        else:
            await answer(scope, receive, send)

    def _answer(self, scope: Scope) -> Response | None:
        """Return the answer the route would give, naming that route in `scope` as routing would.

        Whoever watches the request from outside (metrics, logs) then sees the route it reached.
        """
        answer = self._page(scope)
        if answer is not None:
            scope["route"] = _ROUTE_OF[list_sessions if scope["path"] == PREFIX else get_session]
        return answer

    def _page(self, scope: Scope) -> Response | None:
        path: str = scope["path"]
        if not is_public_read(path):
            return None
        snapshot = self.platform.showcase.current()
        if snapshot is None:
            return None
        now, if_none_match = self.platform.deps.now(), Headers(scope=scope).get("if-none-match")
        if path == PREFIX:
            wanted = _states_of(QueryParams(scope["query_string"]))
            return None if wanted is None else list_answer(snapshot, now, wanted, if_none_match)
        session_id = _session_id_of(path.removeprefix(PREFIX + "/"))
        if session_id is None or session_id not in snapshot.by_id:
            return None
        return session_answer(snapshot, now, session_id, if_none_match)
