"""Flash sessions (秒杀时段): one at a time, or daily slots across a campaign."""

from __future__ import annotations

from fastapi import APIRouter

from flashsale.api.deps import PathId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import DailySessionsIn, SessionIn, SessionOut, SessionPatch

router = APIRouter(tags=["admin: sessions"], responses=error_responses(404))


@router.post("/campaigns/{campaign_id}/sessions", status_code=201)
def create_session(campaign_id: PathId, body: SessionIn, platform: PlatformDep) -> SessionOut:
    """Add one session inside the campaign's time range."""
    session = platform.catalog.create_session(
        campaign_id=campaign_id, name=body.name, starts_at=body.starts_at, ends_at=body.ends_at
    )
    return SessionOut.model_validate(session)


@router.post("/campaigns/{campaign_id}/daily-sessions", status_code=201)
def create_daily_sessions(
    campaign_id: PathId, body: DailySessionsIn, platform: PlatformDep
) -> list[SessionOut]:
    """Add a session for every slot (e.g. 10:00–10:10 Asia/Shanghai) on every day of the campaign.

    A slot must not be empty, given twice, or overlap another slot of the same request.
    """
    sessions = platform.catalog.create_daily_sessions(campaign_id, body.to_domain())
    return [SessionOut.model_validate(s) for s in sessions]


@router.patch("/sessions/{session_id}", responses=error_responses(409))
def update_session(session_id: PathId, body: SessionPatch, platform: PlatformDep) -> SessionOut:
    """Move or rename a session; its items' sale window follows at once."""
    return SessionOut.model_validate(platform.catalog.update_session(session_id, **body.changes()))
