"""What `flashsale serve` would run with `PublicReadFastPath` installed: `python -m uvicorn --factory
bench.fastpath_app:app_factory`. The read-flood bench measures it beside the app as it ships, so
the effect of wiring the middleware into `create_app` is measured before anyone does.
"""

from __future__ import annotations

from starlette.types import ASGIApp

from flashsale.api.main import serving_app_factory
from flashsale.api.shop.sessions import PublicReadFastPath


def app_factory() -> ASGIApp:
    """Build the serving app and put the public-read fast path in front of it."""
    app = serving_app_factory()
    return PublicReadFastPath(app, platform=app.state.platform)
