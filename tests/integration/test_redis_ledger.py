"""What only the Redis ledger does: the purchase stream, bounded lazy expiry, buckets, restore, URLs.

The shared behaviour of every engine is in tests/contract; these tests cover what the Redis engine
adds on top, and look at its keys where the contract has no words for it (buckets, the stream).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import Hold, HoldState
from flashsale.ledger import ledger_from_url
from flashsale.ledger.redis import RedisLedger
from tests.factories import OPENS_AT, terms
from tests.integration.redis_support import REDIS_URL, LedgerMaker, bucket_units, redis_ledgers

pytestmark = pytest.mark.redis

TTL = 60.0
STREAM_FIELDS = {"hold_id", "item_id", "user_id", "qty", "request_id", "created_at", "expires_at", "seq"}


@pytest.fixture
def make(clock: ManualClock) -> Iterator[LedgerMaker]:
    assert REDIS_URL is not None
    with redis_ledgers(REDIS_URL, clock) as make:
        yield make


@pytest.fixture
def ledger(make: LedgerMaker) -> RedisLedger:
    """A one-bucket ledger with item 1 on sale: 5 units, 5 per user, one-minute holds."""
    ledger = make()
    ledger.configure(terms(1, quota=5, per_user_limit=5, hold_ttl_s=TTL))
    return ledger


def purchases(ledger: RedisLedger) -> list[Hold]:
    """Read the purchase stream back as the holds it announces, checking each entry's fields.

    Each item's sequence rises with every entry (a restore may make it jump, never go back).
    """
    entries = [fields for _id, fields in ledger.client.xrange(ledger.stream_key)]
    assert all(set(e) == STREAM_FIELDS for e in entries)
    last: dict[str, int] = {}
    for e in entries:
        assert int(e["seq"]) > last.get(e["item_id"], 0)
        last[e["item_id"]] = int(e["seq"])
    return [
        Hold(
            e["hold_id"],
            int(e["item_id"]),
            e["user_id"],
            int(e["qty"]),
            e["request_id"],
            float(e["created_at"]),
            float(e["expires_at"]),
            HoldState.HELD,
        )
        for e in entries
    ]


# -- the purchase stream -----------------------------------------------------------------------
def test_each_granted_hold_is_appended_to_the_purchase_stream_once(ledger: RedisLedger) -> None:
    first = ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="a")
    second = ledger.reserve(item_id=1, user_id="bob", qty=1, request_id="b")
    assert first.hold is not None and second.hold is not None

    assert purchases(ledger) == [first.hold, second.hold]


def test_replays_refusals_and_settlements_add_nothing_to_the_stream(ledger: RedisLedger) -> None:
    hold = ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="a").hold
    assert hold is not None
    answers = [
        ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="a"),  # replay
        ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="a"),  # mismatch
        ledger.reserve(item_id=1, user_id="ann", qty=4, request_id="more"),  # over the limit
        ledger.reserve(item_id=1, user_id="bob", qty=4, request_id="b"),  # more than is left
        ledger.reserve(item_id=9, user_id="bob", qty=1, request_id="c"),  # unknown item
    ]
    ledger.confirm(hold.hold_id)
    ledger.refund(hold.hold_id)

    assert [a.replayed or a.code for a in answers] == [
        True,
        ErrorCode.IDEMPOTENCY_MISMATCH,
        ErrorCode.LIMIT_EXCEEDED,
        ErrorCode.INSUFFICIENT_STOCK,
        ErrorCode.UNKNOWN_ITEM,
    ]
    assert purchases(ledger) == [hold]


def test_a_replay_naming_another_item_is_a_mismatch_even_when_that_item_has_stock(make: LedgerMaker) -> None:
    ledger = make()
    ledger.configure(terms(1, quota=5))
    ledger.configure(terms(2, quota=5))

    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k").granted
    assert (
        ledger.reserve(item_id=2, user_id="ann", qty=1, request_id="k").code is ErrorCode.IDEMPOTENCY_MISMATCH
    )
    assert ledger.stock(2).available == 5
    assert len(purchases(ledger)) == 1


def test_user_and_request_ids_may_hold_any_character(ledger: RedisLedger) -> None:
    user, key = "zoë|7", "r|1\n|ß"  # the scripts pack ids with '|' and split them by length in bytes

    hold = ledger.reserve(item_id=1, user_id=user, qty=2, request_id=key).hold
    again = ledger.reserve(item_id=1, user_id=user, qty=2, request_id=key)
    other = ledger.reserve(item_id=1, user_id="zoë", qty=1, request_id="|7r|1\n|ß")

    assert hold is not None and (hold.user_id, hold.request_id) == (user, key)
    assert again.replayed and again.hold == hold
    assert other.granted and not other.replayed
    assert ledger.get_hold(hold.hold_id) == hold
    assert ledger.used_by(1, user) == 2 and ledger.used_by(1, "zoë") == 1
    assert purchases(ledger)[0] == hold


def test_a_batch_sees_its_own_grants_although_it_writes_them_at_the_end(ledger: RedisLedger) -> None:
    first, again, changed, more = ledger.reserve_many(
        [(1, "ann", 2, "k"), (1, "ann", 2, "k"), (1, "ann", 1, "k"), (1, "ann", 4, "k2")]
    )

    assert first.hold is not None and not first.replayed
    assert again.replayed and again.hold == first.hold
    assert (changed.code, more.code) == (ErrorCode.IDEMPOTENCY_MISMATCH, ErrorCode.LIMIT_EXCEEDED)
    assert ledger.get_hold(first.hold.hold_id) == first.hold
    assert ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k").hold == first.hold
    assert (ledger.stock(1).held, ledger.used_by(1, "ann")) == (2, 2)
    assert purchases(ledger) == [first.hold]


def test_asking_about_an_unknown_item_leaves_no_key_behind(make: LedgerMaker) -> None:
    ledger = make()

    with pytest.raises(FlashSaleError):
        ledger.stock(9)
    assert ledger.used_by(9, "ann") == 0
    assert ledger.holds(9) == []
    assert ledger.reserve(item_id=9, user_id="ann", qty=1, request_id="k").code is ErrorCode.UNKNOWN_ITEM

    assert list(ledger.client.scan_iter(match=f"{ledger.prefix}:*")) == []


# -- lazy expiry is bounded per script call, yet every decision sees all due holds expired -------
def test_a_backlog_of_due_holds_larger_than_one_sweep_is_fully_expired_before_deciding(
    make: LedgerMaker, clock: ManualClock
) -> None:
    ledger = make()
    ledger.configure(terms(1, quota=700, per_user_limit=1, hold_ttl_s=TTL))
    crowd = [(1, f"u{n}", 1, "k") for n in range(700)]
    assert all(d.granted for d in ledger.reserve_many(crowd))
    clock.advance(TTL)

    late = ledger.reserve(item_id=1, user_id="late", qty=1, request_id="k")

    assert late.granted
    assert ledger.stock(1).available == 699
    assert len(ledger.expire_due(limit=1000)) == 700


def test_a_limited_sweep_expires_the_earliest_deadlines_across_items_first(
    make: LedgerMaker, clock: ManualClock
) -> None:
    ledger = make()
    for item_id in (1, 2):
        ledger.configure(terms(item_id, quota=5, hold_ttl_s=TTL))
    order = []
    for n, item_id in enumerate((2, 1, 2, 1)):  # deadlines one second apart, alternating items
        hold = ledger.reserve(item_id=item_id, user_id=f"u{n}", qty=1, request_id="k").hold
        assert hold is not None
        order.append(hold.hold_id)
        clock.advance(1)
    clock.advance(TTL)

    first, rest = ledger.expire_due(limit=2), ledger.expire_due(limit=2)

    assert [h.hold_id for h in first + rest] == order
    assert ledger.next_expiry() is None


# -- buckets -----------------------------------------------------------------------------------
def test_buckets_share_the_quota_and_a_dry_bucket_rebalances_instead_of_selling_out(
    make: LedgerMaker,
) -> None:
    ledger = make(buckets=4)
    ledger.configure(terms(1, quota=10, per_user_limit=10))
    assert bucket_units(ledger, 1) == [3, 3, 2, 2]

    big = ledger.reserve(item_id=1, user_id="whale", qty=7, request_id="k")  # more than any bucket holds

    assert big.granted
    assert sum(bucket_units(ledger, 1)) == ledger.stock(1).available == 3
    small = [ledger.reserve(item_id=1, user_id=f"u{n}", qty=1, request_id="k") for n in range(5)]
    assert [d.granted for d in small] == [True, True, True, False, False]
    assert {d.code for d in small[3:]} == {ErrorCode.SOLD_OUT}
    assert bucket_units(ledger, 1) == [0, 0, 0, 0]


def test_units_that_come_back_return_to_a_bucket_and_are_sold_again(
    make: LedgerMaker, clock: ManualClock
) -> None:
    ledger = make(buckets=3)
    ledger.configure(terms(1, quota=6, per_user_limit=2, hold_ttl_s=TTL))
    holds = [ledger.reserve(item_id=1, user_id=f"u{n}", qty=2, request_id="k").hold for n in range(3)]
    assert all(holds) and sum(bucket_units(ledger, 1)) == 0
    paid, cancelled, lapsed = (h.hold_id for h in holds if h is not None)
    ledger.confirm(paid)
    ledger.release(cancelled)
    clock.advance(TTL)
    ledger.refund(paid)

    level = ledger.stock(1)

    assert (level.available, level.held, level.sold) == (6, 0, 0)
    assert sum(bucket_units(ledger, 1)) == 6
    assert ledger.get_hold(lapsed) is not None
    again = [ledger.reserve(item_id=1, user_id=f"v{n}", qty=2, request_id="k") for n in range(4)]
    assert [d.granted for d in again] == [True, True, True, False]


def test_changing_the_number_of_buckets_keeps_every_unit(make: LedgerMaker) -> None:
    four = make(buckets=4)
    four.configure(terms(1, quota=10, per_user_limit=2))
    held = [four.reserve(item_id=1, user_id=f"u{n}", qty=1, request_id="k").hold for n in range(3)]
    one = make(prefix=four.prefix, buckets=1)

    level = one.configure(terms(1, quota=12, per_user_limit=2))

    assert (level.available, level.held) == (9, 3)
    assert bucket_units(one, 1) == [9]
    assert held[0] is not None
    one.release(held[0].hold_id)
    assert one.stock(1).available == 10


# -- restore -----------------------------------------------------------------------------------
def test_restore_replaces_everything_under_the_prefix_but_keeps_the_purchase_stream(
    ledger: RedisLedger, clock: ManualClock
) -> None:
    old = ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="a").hold
    assert old is not None
    due = Hold("h-due", 2, "bob", 2, "b", OPENS_AT - TTL, OPENS_AT, HoldState.HELD)  # its deadline is now
    sold = Hold("h-sold", 2, "cy", 1, "c", OPENS_AT, OPENS_AT + TTL, HoldState.SOLD)

    ledger.restore([terms(2, quota=4, per_user_limit=2, hold_ttl_s=TTL)], [due, sold])

    assert ledger.get_hold(old.hold_id) is None
    assert ledger.used_by(1, "ann") == 0
    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="z").code is ErrorCode.UNKNOWN_ITEM
    assert [h.hold_id for h in ledger.expire_due()] == ["h-due"]
    assert ledger.stock(2).available == 3
    assert purchases(ledger) == [old]


def test_restore_refuses_holds_beyond_the_quota_and_changes_nothing(ledger: RedisLedger) -> None:
    too_many = [Hold(f"h{n}", 1, f"u{n}", 2, "k", OPENS_AT, OPENS_AT + TTL, HoldState.SOLD) for n in range(3)]

    with pytest.raises(Exception, match="CONFLICT"):
        ledger.restore([terms(1, quota=5)], too_many)

    assert ledger.stock(1).available == 5


# -- URLs --------------------------------------------------------------------------------------
def test_the_url_names_prefix_and_buckets_and_passes_other_options_to_redis(clock: ManualClock) -> None:
    assert REDIS_URL is not None
    ledger = ledger_from_url(f"{REDIS_URL}?prefix=t-url&buckets=3&socket_timeout=7", clock)
    try:
        assert isinstance(ledger, RedisLedger)
        assert (ledger.prefix, ledger.buckets, ledger.stream_key) == ("t-url", 3, "t-url:purchases")
        assert ledger.client.connection_pool.connection_kwargs["socket_timeout"] == 7
        assert ledger.client.ping()
    finally:
        ledger.close()


@pytest.mark.parametrize("query", ["prefix=a{b}", "prefix=", "buckets=0"])
def test_a_prefix_with_hash_tag_braces_or_no_bucket_is_refused(clock: ManualClock, query: str) -> None:
    assert REDIS_URL is not None
    with pytest.raises(ValueError):
        ledger_from_url(f"{REDIS_URL}?{query}", clock)
