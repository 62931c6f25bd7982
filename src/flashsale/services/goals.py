"""The operator's goals for a campaign: KPI targets, and marketing channels with their budgets,
spend and attribution. Entered through the admin API; read by the review report."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from flashsale.domain.channels import Channel
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.targets import Target
from flashsale.services.deps import Deps
from flashsale.store import repositories as repo
from flashsale.store.tables import CampaignChannelRow, CampaignTargetRow
from flashsale.store.uow import ReadUnit


class Goals:
    """Set and read a campaign's targets and channels; each set replaces the campaign's whole list."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def set_targets(self, campaign_id: int, targets: Sequence[Target]) -> list[Target]:
        """Replace the campaign's targets (an empty list clears them)."""
        if len({t.kpi for t in targets}) != len(targets):
            raise FlashSaleError(ErrorCode.VALIDATION_ERROR, "a KPI is given two targets")
        with self.deps.uow() as uow:
            repo.load_campaign(uow.db, campaign_id)
            uow.db.execute(delete(CampaignTargetRow).where(CampaignTargetRow.campaign_id == campaign_id))
            uow.db.add_all(
                CampaignTargetRow(campaign_id=campaign_id, kpi=t.kpi, value=t.value) for t in targets
            )
            uow.commit()
        return self.targets(campaign_id)

    def set_channels(self, campaign_id: int, channels: Sequence[Channel]) -> list[Channel]:
        """Replace the campaign's channels (an empty list clears them)."""
        if len({c.name for c in channels}) != len(channels):
            raise FlashSaleError(ErrorCode.VALIDATION_ERROR, "a channel is named twice")
        with self.deps.uow() as uow:
            repo.load_campaign(uow.db, campaign_id)
            uow.db.execute(delete(CampaignChannelRow).where(CampaignChannelRow.campaign_id == campaign_id))
            uow.db.add_all(
                CampaignChannelRow(
                    campaign_id=campaign_id,
                    name=c.name,
                    budget_cents=c.budget_cents,
                    spend_cents=c.spend_cents,
                    attributed_orders=c.attributed_orders,
                    attributed_gmv_cents=c.attributed_gmv_cents,
                )
                for c in channels
            )
            uow.commit()
        return self.channels(campaign_id)

    def targets(self, campaign_id: int) -> list[Target]:
        """The campaign's targets (NOT_FOUND if there is no such campaign)."""
        return load_goals(self.deps.reads or self.deps.sessions, campaign_id)[0]

    def channels(self, campaign_id: int) -> list[Channel]:
        """The campaign's channels, by name (NOT_FOUND if there is no such campaign)."""
        return load_goals(self.deps.reads or self.deps.sessions, campaign_id)[1]


def load_goals(reads: sessionmaker[Session], campaign_id: int) -> tuple[list[Target], list[Channel]]:
    """Read the campaign's targets and channels (NOT_FOUND if there is no such campaign)."""
    with ReadUnit(reads) as r:
        repo.load_campaign(r.db, campaign_id)
        targets = [
            Target(row.kpi, row.value)
            for row in r.db.scalars(
                select(CampaignTargetRow).where(CampaignTargetRow.campaign_id == campaign_id)
            )
        ]
        channels = [
            Channel(
                row.name, row.budget_cents, row.spend_cents, row.attributed_orders, row.attributed_gmv_cents
            )
            for row in r.db.scalars(
                select(CampaignChannelRow)
                .where(CampaignChannelRow.campaign_id == campaign_id)
                .order_by(CampaignChannelRow.name)
            )
        ]
    return targets, channels
