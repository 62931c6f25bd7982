"""The demo's example campaign: a phone launch with four phases, two flash sessions and five items.

Around the flash sale, the shop's promotions: two regular items (list price, coupons allowed) in the
second session, a 满300减30 shop promotion, a coupon wave of 满199减20 on a budget, and a free-order
rule (免单) on the phone's paid orders.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from flashsale.domain.campaign import Phase, PhaseKind
from flashsale.domain.coupons import CouponKind, CouponTemplate, CouponWave
from flashsale.domain.promotions import Tier
from flashsale.services.catalog import CatalogService
from flashsale.services.coupons import CouponService
from flashsale.services.free_orders import FreeOrders

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
class RegularSpec:
    """A regular item of the example: the product at its shop price, coupons allowed, no flash deal."""

    sku: str
    name: str
    list_price_cents: int
    shop_price_cents: int
    stock: int
    per_user_limit: int


# In the second session, beside the flash items: what the basket shoppers put in their carts.
REGULAR_ITEMS: tuple[RegularSpec, ...] = (
    RegularSpec("CHARGER-65", "65 W charger", 19_900, 16_900, 1_000, 5),
    RegularSpec("CABLE-C", "USB-C cable", 7_900, 5_900, 2_000, 5),
)
PROMOTION_TIER = Tier(30_000, 3_000)  # 满300减30, applies by itself
COUPON_TIER = Tier(19_900, 2_000)  # 满199减20, claimed from the coupon wave
# The coupon wave hands one coupon to each basket shopper; its budget pays for 90 % of them at once,
# so the last checkouts may meet BUDGET_EXHAUSTED until cancelled or expired coupons give some back.
COUPON_BUDGET_SHARE = 90
PROMOTION_BUDGET_PER_BASKET_CENTS = 3_000  # enough for every basket: the promotion never runs out
FREE_ORDER_SKU = "PHONE-X"
FREE_ORDER_RANKS = (1, 88, 188)  # the 1st, 88th and 188th paid order of the phone is free


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
    session_ids: tuple[int, ...] = ()
    regular: tuple[RegularItem, ...] = ()
    promotions: DemoPromotions | None = None


@dataclass(frozen=True, slots=True)
class RegularItem:
    """A regular item as created in the store: its id beside its spec (stock already scaled)."""

    id: int
    spec: RegularSpec


@dataclass(frozen=True, slots=True)
class DemoPromotions:
    """The promotions as created: the coupon's template and wave, the 满减 promotion, the free-order rule."""

    coupon_template_id: int
    coupon_wave_id: int
    coupon_budget_cents: int
    promotion_template_id: int
    promotion_budget_cents: int
    free_order_rule_id: int
    free_order_item_id: int
    free_order_ranks: tuple[int, ...]


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
    regular = []
    for shelf in REGULAR_ITEMS:
        stock = max(1, round(shelf.stock * quota_scale))
        product = catalog.create_product(
            sku=shelf.sku, name=shelf.name, list_price_cents=shelf.list_price_cents, stock=stock
        )
        item = catalog.create_item(
            session_id=sessions[-1].id,
            product_id=product.id,
            flash_price_cents=shelf.shop_price_cents,  # a regular item's shop price
            quota=stock,
            per_user_limit=shelf.per_user_limit,
            regular=True,
        )
        regular.append(RegularItem(item.id, replace(shelf, stock=stock)))
    return DemoCampaign(
        campaign_id=campaign.id,
        session_opens_at=tuple(s.starts_at.timestamp() for s in sessions),
        items=tuple(items),
        session_ids=tuple(s.id for s in sessions),
        regular=tuple(regular),
    )


def create_promotions(
    coupons: CouponService,
    free_orders: FreeOrders,
    campaign: DemoCampaign,
    *,
    baskets: int,
) -> DemoCampaign:
    """Set up the shop's promotions for `baskets` basket shoppers; return the campaign with them."""
    valid_from, valid_until = SALE_DAY - timedelta(days=1), SALE_DAY + timedelta(days=1)
    coupon_budget = max(1, baskets) * COUPON_TIER.off_cents * COUPON_BUDGET_SHARE // 100
    coupon = coupons.create_template(
        CouponTemplate(
            0,
            "满199减20",
            CouponKind.THRESHOLD,
            valid_from,
            valid_until,
            tiers=(COUPON_TIER,),
            budget_cents=coupon_budget,
        )
    )
    wave = coupons.create_wave(CouponWave(0, coupon.id, valid_from, max(1, baskets), 1))
    promotion_budget = max(1, baskets) * PROMOTION_BUDGET_PER_BASKET_CENTS
    promotion = coupons.create_promotion(
        CouponTemplate(
            0,
            "满300减30",
            CouponKind.THRESHOLD,
            valid_from,
            valid_until,
            tiers=(PROMOTION_TIER,),
            budget_cents=promotion_budget,
        ),
        campaign.campaign_id,
    )
    phone = next(i for i in campaign.items if i.spec.sku == FREE_ORDER_SKU)
    rule = free_orders.create_rule(
        name=f"免单: paid orders {', '.join(map(str, FREE_ORDER_RANKS))} of {phone.spec.name}",
        session_id=campaign.session_ids[phone.spec.session],
        item_id=phone.id,
        ranks=FREE_ORDER_RANKS,
    )
    return replace(
        campaign,
        promotions=DemoPromotions(
            coupon_template_id=coupon.id,
            coupon_wave_id=wave.wave.id,
            coupon_budget_cents=coupon_budget,
            promotion_template_id=promotion.id,
            promotion_budget_cents=promotion_budget,
            free_order_rule_id=rule.id,
            free_order_item_id=phone.id,
            free_order_ranks=FREE_ORDER_RANKS,
        ),
    )
