"""The demo's example campaign: a phone launch with four phases, two flash sessions and five items."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from flashsale.domain.campaign import Phase, PhaseKind
from flashsale.services.catalog import CatalogService

CST = timezone(timedelta(hours=8), "CST")  # China Standard Time, fixed offset: no tzdata needed
SALE_DAY = datetime(2026, 11, 11, tzinfo=CST)
PAYMENT_WINDOW_S = 15 * 60
# Longer than the payment window, so units of holds that expire unpaid re-sell in the same session.
SESSION_LENGTH = timedelta(minutes=20)
SESSION_OPENS = (timedelta(hours=10), timedelta(hours=15))


@dataclass(frozen=True, slots=True)
class ItemSpec:
    """One flash item of the example: which session, what product, at what price, how many, limit N."""

    session: int  # index into SESSION_OPENS
    sku: str
    name: str
    list_price_cents: int
    flash_price_cents: int
    quota: int
    per_user_limit: int


ITEMS: tuple[ItemSpec, ...] = (
    ItemSpec(0, "PHONE-X", "Phone X", 599_900, 399_900, 500, 1),
    ItemSpec(0, "BUDS-2", "Earbuds 2", 99_900, 49_900, 1000, 2),
    ItemSpec(0, "CASE-X", "Phone X case", 19_900, 4_900, 1500, 2),
    ItemSpec(1, "PHONE-X-ENCORE", "Phone X (encore)", 599_900, 429_900, 300, 1),
    ItemSpec(1, "WATCH-3", "Watch 3", 249_900, 149_900, 200, 2),
)


@dataclass(frozen=True, slots=True)
class DemoItem:
    """An item as created in the store: its id beside its spec (quota already scaled)."""

    id: int
    spec: ItemSpec


@dataclass(frozen=True, slots=True)
class DemoCampaign:
    """The campaign as created: its id, when each session opens, and its items."""

    campaign_id: int
    session_opens_at: tuple[float, ...]  # epoch seconds, one per session
    items: tuple[DemoItem, ...]


def scaled(spec: ItemSpec, quota_scale: float) -> ItemSpec:
    """Return the spec with its quota scaled (at least one unit), for smaller test crowds."""
    return replace(spec, quota=max(1, round(spec.quota * quota_scale)))


def create_campaign(catalog: CatalogService, *, quota_scale: float = 1.0) -> DemoCampaign:
    """Create the phone-launch campaign, its sessions and items through the operator use cases."""
    day = SALE_DAY
    phases = (
        Phase(PhaseKind.WARM_UP, day - timedelta(days=1), day - timedelta(hours=4)),
        Phase(PhaseKind.PRE_HEAT, day - timedelta(hours=4), day + SESSION_OPENS[0]),
        Phase(PhaseKind.MAIN, day + SESSION_OPENS[0], day + SESSION_OPENS[1]),
        Phase(PhaseKind.ENCORE, day + SESSION_OPENS[1], day + timedelta(days=1)),
    )
    campaign = catalog.create_campaign(
        name="Phone X launch",
        theme="Singles' Day phone launch",
        starts_at=phases[0].starts_at,
        ends_at=phases[-1].ends_at,
        phases=phases,
        payment_window_s=PAYMENT_WINDOW_S,
    )
    windows = [(day + opens, day + opens + SESSION_LENGTH) for opens in SESSION_OPENS]
    sessions = catalog.create_sessions(
        campaign.id, [(f"{start:%H:%M}–{end:%H:%M}", start, end) for start, end in windows]
    )
    items = []
    for spec in (scaled(s, quota_scale) for s in ITEMS):
        product = catalog.create_product(
            sku=spec.sku, name=spec.name, list_price_cents=spec.list_price_cents, stock=spec.quota
        )
        item = catalog.create_item(
            session_id=sessions[spec.session].id,
            product_id=product.id,
            flash_price_cents=spec.flash_price_cents,
            quota=spec.quota,
            per_user_limit=spec.per_user_limit,
        )
        items.append(DemoItem(item.id, spec))
    return DemoCampaign(
        campaign_id=campaign.id,
        session_opens_at=tuple(s.starts_at.timestamp() for s in sessions),
        items=tuple(items),
    )
