"""Public catalogue of flash sessions with live remaining stock; no token needed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from flashsale.api.deps import PathId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import ShopSessionOut
from flashsale.domain.campaign import SessionState

router = APIRouter(prefix="/sessions", tags=["sessions"])


@router.get("", responses=error_responses(422))
def list_sessions(
    platform: PlatformDep,
    state: Annotated[
        list[SessionState] | None, Query(description="Repeat to combine; default: open and upcoming")
    ] = None,
) -> list[ShopSessionOut]:
    """List sessions in the given states, soonest first, with each item's remaining stock."""
    views = platform.catalog.list_sessions(state) if state else platform.catalog.list_sessions()
    return [ShopSessionOut.of(v) for v in views]


@router.get("/{session_id}", responses=error_responses(404, 422))
def get_session(session_id: PathId, platform: PlatformDep) -> ShopSessionOut:
    """Show one session, its state now, and its items."""
    return ShopSessionOut.of(platform.catalog.get_session(session_id))
