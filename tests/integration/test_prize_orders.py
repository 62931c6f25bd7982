"""A goods prize redeemed as a zero-price order on both ends: one unit through the ledger, PAID for 0, once.

Every test ends with the ledger's counters checked against the order rows and the payments journal
(`assert_store_matches_ledger`: units conserved; the audit: charges − refunds == each order's due).
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest
from sqlalchemy import func, select

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.domain.cart import PricedItem
from flashsale.domain.draws import (
    Award,
    AwardStatus,
    EntitlementRule,
    EntitlementSource,
    Game,
    PrizeKind,
    prize_order_key,
)
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import OrderStatus
from flashsale.services.audit import audit_payments
from flashsale.services.settlement import FREE
from flashsale.store.tables import CheckoutRow, OrderRow, PaymentRow
from tests.conftest import T0, Sale
from tests.engines import POSTGRES_REDIS, SQLITE, drain_orders
from tests.factories import release_together
from tests.integration.ledger_store_checks import assert_store_matches_ledger

pytestmark = pytest.mark.engines(SQLITE, POSTGRES_REDIS)  # the two ends (see tests/engines.py)

QUOTA = 5  # the mug's regular item


def mug_item(platform: Platform, sale: Sale) -> int:
    """A mug at its shop price all morning (a regular item, quota 5, one per shopper).

    The session outlasts a payment window (15 minutes), so an order can expire while it is open.
    """
    cat = platform.catalog
    session = cat.create_session(
        campaign_id=sale.campaign_id, name="all morning", starts_at=T0, ends_at=T0 + timedelta(hours=2)
    )
    mug = cat.create_product(sku="MUG-1", name="Mug", list_price_cents=9_900, stock=100)
    return cat.create_item(
        session_id=session.id,
        product_id=mug.id,
        flash_price_cents=9_900,
        quota=QUOTA,
        per_user_limit=1,
        regular=True,
    ).id


def won(platform: Platform, product_id: int, user_id: str = "ann") -> Award:
    """A pool whose only prize is the product (no thanks weight), and the shopper's winning draw."""
    draws = platform.draws
    free = EntitlementRule(EntitlementSource.FREE_DAILY)
    pool = draws.create_pool(
        name="Mug wheel", game=Game.LOTTERY, thanks_weight=0, utc_offset_min=0, rules=[free]
    )
    draws.add_prize(pool.id, name="A mug", kind=PrizeKind.GOODS, weight=1, stock=10, product_id=product_id)
    assert draws.free_daily(pool.id, user_id).granted == 1
    outcome = draws.draw(pool.id, user_id, "spin-1")
    assert outcome.award.status is AwardStatus.AWARDED
    return outcome.award


def product_of(platform: Platform, item_id: int) -> int:
    return platform.deps.prices.get(item_id)[1].id


def settled(platform: Platform, item_id: int) -> None:
    """Let the Redis writer catch up, and check store, ledger and journal agree."""
    drain_orders(platform)
    assert_store_matches_ledger(platform, item_id, limit=1)
    assert audit_payments(platform.deps.sessions).clean


def count(platform: Platform, model: type, *where: object) -> int:
    with platform.deps.read() as read:
        return int(read.db.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


def test_redeeming_a_goods_award_places_one_paid_zero_price_order(platform: Platform, sale: Sale) -> None:
    item = mug_item(platform, sale)
    award = won(platform, product_of(platform, item))
    redeemed = platform.draws.redeem(award.id, "ann")

    assert redeemed.status is AwardStatus.REDEEMED and redeemed.order_id is not None
    order = platform.orders.get(redeemed.order_id, "ann")
    assert (order.status, order.total_cents, order.item_id, order.qty) == (OrderStatus.PAID, 0, item, 1)
    assert [o.id for o in platform.orders.list_for_user("ann")] == [order.id]
    level = platform.ledger.stock(item)
    assert (level.available, level.held, level.sold) == (QUOTA - 1, 0, 1) and level.conserved
    assert count(platform, PaymentRow, PaymentRow.order_id == order.id) == 1  # the 0-cent charge
    assert count(platform, PaymentRow, PaymentRow.provider == FREE, PaymentRow.amount_cents == 0) == 1
    with pytest.raises(FlashSaleError) as again:
        platform.draws.redeem(award.id, "ann")
    assert again.value.code is ErrorCode.ALREADY_REDEEMED
    assert platform.ledger.stock(item).sold == 1
    settled(platform, item)


def test_twenty_concurrent_redemptions_of_one_goods_award_place_one_order(
    platform: Platform, sale: Sale
) -> None:
    item = mug_item(platform, sale)
    award = won(platform, product_of(platform, item))

    def redeem() -> str:
        try:
            return platform.draws.redeem(award.id, "ann").order_id or "no order"
        except FlashSaleError as exc:
            return exc.code.value

    answers = release_together([redeem] * 20)
    orders = {a for a in answers if a != ErrorCode.ALREADY_REDEEMED.value}
    assert len(orders) == 1 and answers.count(ErrorCode.ALREADY_REDEEMED.value) == 19
    (order_id,) = orders
    assert platform.draws.awards("ann")[0][0].order_id == order_id
    assert count(platform, CheckoutRow, CheckoutRow.user_id == "ann") == 1
    drain_orders(platform)
    assert count(platform, OrderRow, OrderRow.user_id == "ann") == 1
    assert platform.orders.get(order_id).status is OrderStatus.PAID
    level = platform.ledger.stock(item)
    assert (level.held, level.sold) == (0, 1) and level.conserved
    settled(platform, item)


def test_a_goods_prize_not_on_sale_is_refused_and_stays_redeemable(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    item = mug_item(platform, sale)
    loose = platform.catalog.create_product(sku="CUP-9", name="Cup", list_price_cents=5_000, stock=10)
    award = won(platform, loose.id)

    with pytest.raises(FlashSaleError) as refused:
        platform.draws.redeem(award.id, "ann")
    assert refused.value.code is ErrorCode.PRIZE_NOT_STOCKED
    assert platform.draws.awards("ann")[0][0].status is AwardStatus.AWARDED
    assert count(platform, CheckoutRow) == 0 and count(platform, OrderRow) == 0
    assert platform.ledger.stock(item).held == 0  # nothing held anywhere

    # Once the cup is on sale (a regular item now), the same award is redeemed.
    cup = platform.catalog.create_item(
        session_id=sale.session_id, product_id=loose.id, flash_price_cents=5_000, quota=2, regular=True
    )
    redeemed = platform.draws.redeem(award.id, "ann")
    assert redeemed.order_id is not None
    assert platform.orders.get(redeemed.order_id).status is OrderStatus.PAID
    settled(platform, cup.id)


def test_a_refused_hold_leaves_the_award_redeemable_and_a_later_attempt_delivers(
    platform: Platform, sale: Sale
) -> None:
    item = mug_item(platform, sale)
    award = won(platform, product_of(platform, item))
    platform.catalog.update_item(item, quota=0)  # sold out for now
    redeem = partial(platform.draws.redeem, award.id, "ann")
    for _ in range(2):  # the refusal is the ledger's each time, not a stored answer
        with pytest.raises(FlashSaleError) as refused:
            redeem()
        assert refused.value.code is ErrorCode.SOLD_OUT
    assert platform.draws.awards("ann")[0][0].status is AwardStatus.AWARDED

    platform.catalog.update_item(item, quota=QUOTA)
    redeemed = redeem()
    assert redeemed.order_id is not None and platform.ledger.stock(item).sold == 1
    settled(platform, item)


# -- a kill between steps ----------------------------------------------------------------------------
# A kill -9 inside a step is that step's own concern (a checkout, a settlement: tests elsewhere); a
# kill between steps leaves the state each case below builds with the same calls. A retry of the
# redemption must finish from there with the one order, never a second.


def placed_unpaid(platform: Platform, award: Award, item: int) -> str:
    """What a kill after the place step leaves: the award's checkout placed, its order UNPAID."""
    line = PricedItem(item, 1, 0, 0)
    checkout, _ = platform.carts.check_out_priced(award.user_id, prize_order_key(award.id, 0), [line])
    order = checkout.lines[0].order
    assert order is not None and order.status is OrderStatus.UNPAID
    return order.id


@pytest.mark.parametrize("killed_after", ["place", "settle"])
def test_a_retry_after_a_kill_between_steps_finishes_with_the_same_order(
    platform: Platform, sale: Sale, killed_after: str
) -> None:
    item = mug_item(platform, sale)
    award = won(platform, product_of(platform, item))
    order_id = placed_unpaid(platform, award, item)
    if killed_after == "settle":
        assert platform.orders.payments.settle_free(order_id).status is OrderStatus.PAID
    assert platform.draws.awards("ann")[0][0].status is AwardStatus.AWARDED

    redeemed = platform.draws.redeem(award.id, "ann")
    assert redeemed.order_id == order_id
    assert platform.orders.get(order_id).status is OrderStatus.PAID
    drain_orders(platform)
    assert count(platform, OrderRow, OrderRow.user_id == "ann") == 1
    assert platform.ledger.stock(item).sold == 1
    settled(platform, item)


def test_a_retry_after_the_placed_order_expired_places_the_next_attempt_once(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    item = mug_item(platform, sale)
    award = won(platform, product_of(platform, item))
    lapsed = placed_unpaid(platform, award, item)
    clock.advance(16 * 60)  # past the 15-minute payment window: the ledger ends the hold

    def retry() -> str:
        try:
            return platform.draws.redeem(award.id, "ann").order_id or "no order"
        except FlashSaleError as exc:
            return exc.code.value

    answers = release_together([retry] * 8)  # twins of the retry
    assert answers.count(ErrorCode.ALREADY_REDEEMED.value) == 7
    (award_now, _), *_ = platform.draws.awards("ann")
    assert award_now.status is AwardStatus.REDEEMED and award_now.order_id not in (None, lapsed)
    assert award_now.order_id is not None
    platform.orders.expire_due()
    drain_orders(platform)
    statuses = sorted(o.status.value for o in platform.orders.list_for_user("ann"))
    assert statuses == [OrderStatus.EXPIRED.value, OrderStatus.PAID.value]
    assert platform.orders.get(award_now.order_id).total_cents == 0
    level = platform.ledger.stock(item)
    assert (level.held, level.sold) == (0, 1) and level.conserved
    settled(platform, item)
