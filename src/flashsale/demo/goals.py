"""The demo operator's goals: KPI targets set from the campaign's own plan, and three channels whose
spend and attribution stand in for what an analytics export would say (a tenth of the sales is
left to no channel, as organic traffic)."""

from __future__ import annotations

from flashsale.demo.campaign import DemoCampaign
from flashsale.domain.channels import Channel
from flashsale.domain.review import Kpis
from flashsale.domain.targets import Target
from flashsale.services.goals import Goals

# name: (share of paid orders and GMV attributed, share of the marketing budget, spend / budget)
CHANNELS = {"search": (45, 50, 110), "social": (30, 30, 90), "push": (15, 20, 60)}
BUDGET_SHARE_OF_FULL_GMV = 5  # percent: the marketing budget against selling every unit


def enter_goals(goals: Goals, campaign: DemoCampaign, kpis: Kpis) -> None:
    """Set the demo campaign's targets and channels, as its operator would through the admin API."""
    full_gmv = sum(i.spec.flash_price_cents * i.spec.quota for i in campaign.items)
    goals.set_targets(
        campaign.campaign_id,
        [
            Target("gmv_cents", full_gmv * 95 // 100),
            Target("units_sold", sum(i.spec.quota for i in campaign.items)),
            Target("conversion", 8_000),  # basis points: 80 % of orders placed get paid
            Target("expired_share", 1_500),  # at most 15 % of orders expire unpaid
        ],
    )
    budget = full_gmv * BUDGET_SHARE_OF_FULL_GMV // 100
    goals.set_channels(
        campaign.campaign_id,
        [
            Channel(
                name,
                budget_cents=budget * budget_share // 100,
                spend_cents=budget * budget_share * spent // 10_000,
                attributed_orders=kpis.orders_paid * attributed // 100,
                attributed_gmv_cents=kpis.gmv_cents * attributed // 100,
            )
            for name, (attributed, budget_share, spent) in CHANNELS.items()
        ],
    )
