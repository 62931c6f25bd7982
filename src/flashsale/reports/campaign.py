"""A campaign's whole review, as `flashsale report` and the demo write it: the review itself, then
the sections of the modules that add to it (targets and channels, promotions, load rehearsals)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from flashsale.reports.goals import goals_section
from flashsale.reports.promotions import promotions_section
from flashsale.reports.rehearsal import load_rehearsals, rehearsal_section
from flashsale.reports.review import write_review
from flashsale.services.goals import load_goals
from flashsale.services.promotion_review import load_promotions
from flashsale.services.review import load_review


def write_campaign_review(
    reads: sessionmaker[Session], campaign_id: int, folder: Path, *, compare: int | None = None
) -> Path:
    """Write the campaign's review into `folder` (NOT_FOUND if either campaign is unknown); return the
    page's path. Rehearsal results already in `folder` become a section."""
    review = load_review(reads, campaign_id)
    before = load_review(reads, compare) if compare is not None else None
    targets, channels = load_goals(reads, campaign_id)
    found = (
        goals_section(review, targets, channels),
        promotions_section(load_promotions(reads, campaign_id)),
        rehearsal_section(load_rehearsals(folder)),
    )
    return write_review(review, folder, compare=before, sections=[s for s in found if s is not None])
