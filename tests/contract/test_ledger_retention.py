"""Retention (`finished` + `forget`): finished holds and their request keys are forgotten, on every engine.

After retention the ledger holds less, the counters are untouched (conservation, limits), and a
forgotten key of a user is answered REQUEST_FORGOTTEN (ask the system of record) until the caller
says it checked (`reserve_many(..., checked=True)`).
"""

from __future__ import annotations

from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode
from flashsale.domain.holds import HoldState
from flashsale.domain.sale import ItemTerms
from flashsale.ledger import Ledger
from flashsale.ledger.redis import RedisLedger
from tests.contract.checks import assert_conserved, granted
from tests.factories import OPENS_AT, terms

TTL = 60.0
DAY = 86_400.0


def long_terms(item_id: int, quota: int = 10, per_user_limit: int = 5) -> ItemTerms:
    """An item on sale for three days, so requests a day later are still inside the window."""
    return terms(
        item_id, quota=quota, per_user_limit=per_user_limit, hold_ttl_s=TTL, closes_at=OPENS_AT + 3 * DAY
    )


def redis_entries(ledger: Ledger) -> int:
    """Hold records, request keys, claims, the finished-holds index and the users' marks in Redis."""
    assert isinstance(ledger, RedisLedger)
    total = 0
    for g in range(max(ledger.groups, 1)):
        _due, holds, _expired, _stream, reqs, _pauses, claims, done, retired = ledger._shared[g]
        for key in (holds, reqs, claims, retired):
            total += ledger.client.hlen(key)
        total += ledger.client.zcard(done)
    return total


def sell_a_day(ledger: Ledger, clock: ManualClock) -> dict[str, str]:
    """ann: released, expired, refunded, sold and held holds of item 1, a day old (the held one fresh)."""
    ids = {
        state: granted(ledger.reserve(item_id=1, user_id="ann", qty=1, request_id=state))
        for state in ("released", "expired", "refunded", "sold")
    }
    ledger.release(ids["released"])
    ledger.confirm(ids["sold"])
    ledger.confirm(ids["refunded"])
    ledger.refund(ids["refunded"])
    clock.advance(TTL)
    assert [h.hold_id for h in ledger.expire_due()] == [ids["expired"]]  # handed out: the store follows
    clock.advance(DAY)
    ids["held"] = granted(ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="held"))
    return ids


def test_only_finished_holds_are_listed_and_forgotten(ledger: Ledger, clock: ManualClock) -> None:
    ledger.configure(long_terms(1))
    ids = sell_a_day(ledger, clock)
    before = len(ledger.holds(1))

    old = ledger.finished(clock() - DAY / 2, limit=100)

    assert {h.hold_id for h in old} == {ids["released"], ids["expired"], ids["refunded"]}
    assert {h.state for h in old} == {HoldState.RELEASED, HoldState.EXPIRED, HoldState.REFUNDED}
    assert ledger.finished(OPENS_AT, limit=100) == []  # nothing finished that long ago
    assert ledger.forget([ids["sold"], ids["held"]]) == 0  # a refund or a payment may still need them
    assert ledger.forget([h.hold_id for h in old]) == 3
    assert ledger.forget([h.hold_id for h in old]) == 0

    assert {h.hold_id for h in ledger.holds(1)} == {ids["sold"], ids["held"]} and before == 5
    assert ledger.finished(clock(), limit=100) == []
    level = assert_conserved(ledger, 1)
    assert (level.available, level.held, level.sold) == (8, 1, 1)
    assert ledger.used_by(1, "ann") == 2
    ledger.refund(ids["sold"])  # the sold hold is still there for its refund
    assert assert_conserved(ledger, 1).available == 9


def test_a_forgotten_key_asks_for_the_store_until_the_caller_checked(
    ledger: Ledger, clock: ManualClock
) -> None:
    ledger.configure(long_terms(1))
    ids = sell_a_day(ledger, clock)
    ledger.forget([h.hold_id for h in ledger.finished(clock(), limit=100)])

    replay = ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="released")
    assert replay.hold is None and replay.code is ErrorCode.REQUEST_FORGOTTEN
    unknown = ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="never-used")
    assert unknown.code is ErrorCode.REQUEST_FORGOTTEN  # the ledger cannot tell which keys it forgot
    kept = ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="sold")
    assert kept.replayed and kept.hold is not None and kept.hold.hold_id == ids["sold"]
    granted(ledger.reserve(item_id=1, user_id="bob", qty=1, request_id="released"))  # bob forgot nothing
    assert assert_conserved(ledger, 1).held == 2  # nothing was held by the REQUEST_FORGOTTEN answers

    fresh = ledger.reserve_many([(1, "ann", 1, "never-used")], checked=True)[0]
    granted(fresh)
    again = ledger.reserve_many([(1, "ann", 1, "never-used")])[0]
    assert again.replayed and again.hold == fresh.hold  # a key granted after the check is known again
    level = assert_conserved(ledger, 1)
    assert (level.available, level.held, level.sold) == (6, 3, 1)


def test_a_forgotten_key_reused_on_an_item_of_another_group_asks_for_the_store(
    ledger: Ledger, clock: ManualClock
) -> None:
    # Items 1 and 2 live in different slot groups on the Cluster, where keys are claimed per user.
    ledger.configure(long_terms(1))
    ledger.configure(long_terms(2))
    sell_a_day(ledger, clock)
    ledger.forget([h.hold_id for h in ledger.finished(clock(), limit=100)])

    reused = ledger.reserve(item_id=2, user_id="ann", qty=1, request_id="released")

    assert reused.code is ErrorCode.REQUEST_FORGOTTEN
    assert assert_conserved(ledger, 2).available == 10


def test_retention_shrinks_what_the_ledger_keeps(ledger: Ledger, clock: ManualClock) -> None:
    ledger.configure(long_terms(1, quota=100, per_user_limit=8))
    ids = [
        granted(ledger.reserve(item_id=1, user_id=f"u{n}", qty=1, request_id=f"k{k}"))
        for n in range(5)
        for k in range(8)
    ]
    released = [hold_id for j, hold_id in enumerate(ids) if j % 8 < 6]
    for hold_id in released:
        ledger.release(hold_id)
    clock.advance(DAY)
    kept_before = redis_entries(ledger) if isinstance(ledger, RedisLedger) else None

    forgotten = 0
    while batch := ledger.finished(clock() - DAY / 2, limit=7):
        forgotten += ledger.forget([h.hold_id for h in batch])

    assert forgotten == len(released) == 30
    assert len(ledger.holds(1)) == 10  # the 10 unpaid ones expired but were not handed out: kept
    if kept_before is not None:
        assert redis_entries(ledger) < kept_before / 2
    level = assert_conserved(ledger, 1)
    assert (level.available, level.held, level.sold) == (100, 0, 0)
    assert ledger.reserve(item_id=1, user_id="u0", qty=1, request_id="k0").code is ErrorCode.REQUEST_FORGOTTEN


def test_restore_remembers_every_key_again(ledger: Ledger, clock: ManualClock) -> None:
    ledger.configure(long_terms(1))
    ids = sell_a_day(ledger, clock)
    old = ledger.finished(clock(), limit=100)
    ledger.forget([h.hold_id for h in old])

    ledger.restore([long_terms(1)], [*ledger.holds(1), *old])

    replay = ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="released")
    assert replay.replayed and replay.hold is not None and replay.hold.hold_id == ids["released"]
    assert {h.hold_id for h in ledger.finished(clock() + 1, limit=100)} == {h.hold_id for h in old}
    granted(ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="never-used"))
