"""The FastAPI app: `create_app(platform)` for tests and embedding, `app_factory()` from the
environment, and `serving_app_factory()` for uvicorn workers (what `flashsale serve` runs).

uvicorn.run("flashsale.api.main:serving_app_factory", factory=True)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from flashsale import __version__
from flashsale.api import admin, board, health, metrics, shop
from flashsale.api.edge import Edge
from flashsale.api.errors import install_error_handlers
from flashsale.auth import ShopperTokens
from flashsale.bootstrap import Platform, build
from flashsale.config import Settings
from flashsale.heap import tune_for_sale
from flashsale.logs import fields
from flashsale.services.admission import Admission, RateLimits, admission_storage, parse_limits
from flashsale.services.admission_gate import AdmissionGate
from flashsale.services.board import BoardFeed
from flashsale.services.checkout import Cancels, Checkout, Till

log = logging.getLogger(__name__)

DESCRIPTION = """
Flash sales (秒杀): timed sessions whose items have a quota and a per-user limit, sold through an
oversell-proof stock ledger. A purchase holds units for the payment window; unpaid holds expire
back to sale.

* Shoppers authenticate with a bearer JWT (`flashsale token <user>`); `POST /purchases` needs an
  `Idempotency-Key` header, and a retry with the same key replays the same order.
* Operators use `/admin/*` with the admin bearer token.
* Every refusal is `{"code": ..., "message": ...}`; `code` is stable, switch on it.
"""


TAGS = [
    {"name": "sessions", "description": "Public catalogue of sessions with live remaining stock."},
    {"name": "purchases", "description": "Buy: hold units and open an unpaid order (idempotent)."},
    {"name": "orders", "description": "The shopper's own orders: show, pay, cancel."},
    {"name": "payments", "description": "Signed callbacks from payment providers."},
    {"name": "admin: campaigns", "description": "Campaigns and their phases."},
    {"name": "admin: sessions", "description": "Timed flash sessions, single or daily."},
    {"name": "admin: products", "description": "Products (SKUs)."},
    {"name": "admin: items", "description": "Flash items: price, quota, per-user limit, stats."},
    {"name": "admin: orders", "description": "Refunds."},
    {"name": "draws", "description": "Lucky draws: earn draws (check-in, share, paid order), draw, redeem."},
    {"name": "admin: draws", "description": "Prize pools, prizes and scheduled draws."},
    {"name": "coupons", "description": "The shopper's coupons: claim from a wave, redeem a code, list."},
    {"name": "admin: coupons", "description": "Coupon templates, waves and runs of single-use codes."},
    {"name": "admin: margin", "description": "Product costs; each item's worst-case price and margin."},
    {"name": "admin: plans", "description": "Traffic forecast, targets, channels, rehearsal copies."},
    {"name": "admin: messages", "description": "催付 and waves: templates, opt-outs, dry-runs, the log."},
    {
        "name": "admission",
        "description": "Sale tokens (the hidden path) and waiting rooms, for items whose terms ask for them.",
    },
    {
        "name": "admin: admission",
        "description": "Per campaign and item: rate limits, sale token, waiting room, hoarders.",
    },
    {"name": "board", "description": "The live board: the page at /board, its data, its event stream."},
    {"name": "health", "description": "Liveness and readiness for load balancers; no token needed."},
]


class ShopApp(FastAPI):
    """FastAPI, but an HTTP request enters at ServerErrorMiddleware wrapped round the shop's middleware.

    FastAPI puts four layers before an app's own middleware, and on each request its `__call__`
    asks OpenTelemetry whether a tracer, meter or logger provider is set (environment reads and
    lookups: about a tenth of the Python calls of a purchase). With no provider set and no
    `max_body_size` (the shop sets neither; `BodySizeLimit` caps bodies) only one of the four,
    ServerErrorMiddleware, does anything for a request: the telemetry layers record nothing and the
    body limit is not installed. So the first request checks that once and, when it holds, every
    HTTP request then passes ServerErrorMiddleware (the same handler, the same 500s) straight into
    the shop's middleware; otherwise, and for lifespan and WebSocket, the framework runs as usual.
    """

    _direct: ASGIApp | None = None
    _checked = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve an HTTP request past the framework's idle layers when they are idle; see the class doc."""
        if scope["type"] == "http":
            if not self._checked:
                self._direct, self._checked = self._direct_stack(), True
            if self._direct is not None:
                if self.root_path:
                    scope["root_path"] = self.root_path
                scope["app"] = self  # as Starlette sets it: the middleware reads `app.state`
                await self._direct(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _direct_stack(self) -> ASGIApp | None:
        """ServerErrorMiddleware round the app's first middleware, or None if the skipped layers would act."""
        telemetry = getattr(self, "_native_telemetry", None)  # FastAPI's own OpenTelemetry, where it has it
        traced = telemetry is not None and telemetry.enabled()
        if traced or getattr(self, "max_body_size", None) is not None:
            return None
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        outer = self.middleware_stack
        first: Any = self.user_middleware[0].cls if self.user_middleware else None
        node: Any = outer
        while first is not None and node is not None and not isinstance(node, first):
            node = getattr(node, "app", None)
        if first is None or node is None or not isinstance(outer, ServerErrorMiddleware):
            return None  # not the stack this was written for: take the framework's way
        return ServerErrorMiddleware(node, handler=outer.handler, debug=outer.debug)


def create_app(platform: Platform, *, start_jobs: bool = True, fast_paths: bool = True) -> FastAPI:
    """Build the HTTP app around a wired platform; the app closes the platform when it shuts down.

    `fast_paths=False` answers every request through its route (tests compare the two ways).
    """
    jwt_secret = platform.settings.jwt_secret
    if not (jwt_secret and platform.settings.admin_token):
        raise ValueError("the platform has no secrets: build it with flashsale.bootstrap.build")

    @asynccontextmanager
    async def lifespan(served: FastAPI) -> AsyncIterator[None]:
        if start_jobs:
            platform.start_jobs()
        settings = platform.settings
        log.info("startup", extra=fields(backend=settings.backend, jobs=start_jobs, version=__version__))
        try:
            yield
        finally:
            platform.close()
            served.state.readiness.close()
            served.state.board.close()
            served.state.metrics.close()
            log.info("shutdown")

    app = ShopApp(
        title="flashsale",
        summary="Flash-sale (秒杀) and promotion platform",
        description=DESCRIPTION,
        version=__version__,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.platform = platform
    app.state.shopper_tokens = ShopperTokens(jwt_secret)
    app.state.checkout = Checkout(platform.orders)
    app.state.till = Till(platform.orders)  # pays arriving together share transactions
    app.state.cancels = Cancels(platform.orders)  # and so do cancels
    app.state.board = BoardFeed(platform.deps, platform.showcase)
    settings = platform.settings
    limits = RateLimits(
        purchase_per_shopper=parse_limits(settings.rate_limit_purchase_per_shopper),
        purchase_per_client=parse_limits(settings.rate_limit_purchase_per_client),
        read_per_client=parse_limits(settings.rate_limit_read_per_client),
    )
    # Campaigns may set limits of their own at any time, so the storage is always the shared one.
    app.state.admission = Admission(limits, admission_storage(settings.ledger_url()))
    app.state.gate = AdmissionGate(app.state.admission, platform.admission, platform.deps.clock)
    app.state.metrics = metrics.Metrics(platform)
    app.state.readiness = health.Readiness.of(platform)
    app.state.log_requests = platform.settings.access_log
    install_error_handlers(app)
    # The shop's one middleware: it observes every request and sends each down the edge chain of
    # its path (a plain POST /purchases skips routing, public reads are answered from memory, …).
    app.add_middleware(
        Edge,
        metrics=app.state.metrics,
        log_requests=platform.settings.access_log,
        max_body_bytes=platform.settings.max_body_bytes,
        platform=platform,
        shopper_tokens=app.state.shopper_tokens,
        feed=app.state.board,
        # Before the fast path: a flood is refused before it is answered.
        read_admission=app.state.admission if limits.read_per_client else None,
        fast_paths=fast_paths,
    )
    app.include_router(shop.router)
    app.include_router(admin.router)
    app.include_router(board.router)
    # Last: routes are matched in order, so the buy path never tries these first.
    app.include_router(health.router)
    if platform.settings.metrics_enabled:
        app.include_router(metrics.router)
    return app


def app_factory() -> FastAPI:
    """Build the app from the environment's Settings (FLASHSALE_*), with its background jobs."""
    return create_app(build(Settings()))


def serving_app_factory() -> FastAPI:
    """Build the app as `app_factory` does, in a process that does nothing but serve it (uvicorn workers),
    with the garbage collector tuned for that process (`flashsale.heap`)."""
    app = app_factory()
    tune_for_sale()
    return app
