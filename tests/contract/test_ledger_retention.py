"""Retention (`finished` + `forget`): finished holds and their request keys are forgotten, on every engine.

After retention the ledger holds less, the counters are untouched (conservation, limits), and a
forgotten key of a user is answered REQUEST_FORGOTTEN (ask the system of record) until the caller
says it checked (`reserve_many(..., checked=True)`).
"""

from __future__ import annotations

import threading

from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode
from flashsale.domain.holds import Hold, HoldState
from flashsale.domain.sale import ItemTerms
from flashsale.ledger import Ledger
from flashsale.ledger.redis import INDEX_AGAIN_S, RedisLedger
from tests.contract.checks import assert_conserved, error_code, granted
from tests.factories import OPENS_AT, terms
from tests.integration.redis_support import unindex

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


def sold_and_forgotten(ledger: Ledger, clock: ManualClock) -> tuple[dict[str, str], Hold]:
    """`sell_a_day`, then the sold hold is forgotten a day after its sale; returns the ids and the
    sold hold as its stored order has it."""
    ids = sell_a_day(ledger, clock)
    sold = ledger.get_hold(ids["sold"])
    assert sold is not None and sold.state is HoldState.SOLD
    assert [h.hold_id for h in ledger.sold_before(clock() - DAY / 2, limit=100)] == [ids["sold"]]
    assert ledger.forget_sold([ids["sold"]]) == 1
    return ids, sold


def test_only_sold_holds_are_listed_as_sold_and_forgetting_them_keeps_the_counters(
    ledger: Ledger, clock: ManualClock
) -> None:
    ledger.configure(long_terms(1))
    ids = sell_a_day(ledger, clock)
    level = assert_conserved(ledger, 1)

    assert [h.state for h in ledger.sold_before(clock() + 1, limit=100)] == [HoldState.SOLD]
    assert ledger.sold_before(OPENS_AT, limit=100) == []  # nothing was sold that long ago
    others = [ids[state] for state in ("released", "expired", "refunded", "held")]
    assert ledger.forget_sold(others) == 0  # finished ones go by `forget`, held ones never
    assert ledger.forget([ids["sold"]]) == 0  # and a sold one not by `forget`
    assert ledger.forget_sold([ids["sold"]]) == 1
    assert ledger.forget_sold([ids["sold"]]) == 0

    assert ledger.get_hold(ids["sold"]) is None and ledger.sold_before(clock() + 1, limit=100) == []
    assert assert_conserved(ledger, 1) == level  # the unit stays sold …
    assert ledger.used_by(1, "ann") == 2  # … and counts against ann's limit
    replay = ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="sold")
    assert replay.code is ErrorCode.REQUEST_FORGOTTEN  # the store answers for it
    over = ledger.reserve_many([(1, "ann", 4, "more")], checked=True)[0]
    assert over.code is ErrorCode.LIMIT_EXCEEDED  # 2 used + 4 > 5
    assert assert_conserved(ledger, 1) == level


def test_a_refund_of_a_forgotten_sold_hold_moves_its_units_once_under_concurrent_calls(
    ledger: Ledger, clock: ManualClock
) -> None:
    ledger.configure(long_terms(1))
    ids, stored = sold_and_forgotten(ledger, clock)
    before = assert_conserved(ledger, 1)
    calls = 2
    gate = threading.Barrier(calls, timeout=30)
    answers: list[Hold] = []
    errors: list[BaseException] = []

    def refund() -> None:
        try:
            gate.wait()
            answers.append(ledger.refund_stored(stored))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=refund) for _ in range(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert errors == [] and len(answers) == calls
    assert {(h.hold_id, h.state) for h in answers} == {(ids["sold"], HoldState.REFUNDED)}
    level = assert_conserved(ledger, 1)
    assert (level.available, level.held, level.sold) == (before.available + 1, before.held, before.sold - 1)
    assert ledger.used_by(1, "ann") == 1  # the unit went back to ann's quota too
    assert ledger.refund_stored(stored).state is HoldState.REFUNDED  # a retry later: nothing moves
    assert assert_conserved(ledger, 1) == level
    # Kept as a finished hold, so retention forgets it again, and a refund after that is refused.
    assert ids["sold"] in {h.hold_id for h in ledger.finished(clock() + 1, limit=100)}
    assert ledger.forget([ids["sold"]]) == 1
    assert error_code(ledger.refund_stored, stored) is ErrorCode.CONFLICT  # no sold unit of ann left
    assert assert_conserved(ledger, 1) == level


def test_a_stored_refund_of_a_known_hold_is_a_refund_and_of_no_sale_is_refused(
    ledger: Ledger, clock: ManualClock
) -> None:
    ledger.configure(long_terms(1))
    ids = sell_a_day(ledger, clock)
    sold = ledger.get_hold(ids["sold"])
    assert sold is not None

    assert ledger.refund_stored(sold).state is HoldState.REFUNDED  # not forgotten: refunded by id
    level = assert_conserved(ledger, 1)
    assert (level.available, level.held, level.sold) == (9, 1, 0)
    never_sold = sold._replace(hold_id="x" * 24)
    assert error_code(ledger.refund_stored, never_sold) is ErrorCode.CONFLICT  # nothing sold: refused
    assert error_code(ledger.refund_stored, never_sold._replace(item_id=99)) is ErrorCode.UNKNOWN_ITEM
    assert assert_conserved(ledger, 1) == level and ledger.get_hold(never_sold.hold_id) is None


def test_a_stored_refund_waits_for_a_pause_to_end(ledger: Ledger, clock: ManualClock) -> None:
    ledger.configure(long_terms(1))
    _, stored = sold_and_forgotten(ledger, clock)
    level = assert_conserved(ledger, 1)
    ledger.pause([1], until=clock() + 30, token="repair")

    assert error_code(ledger.refund_stored, stored) is ErrorCode.SALE_PAUSED
    assert assert_conserved(ledger, 1) == level
    ledger.resume([1], token="repair")
    assert ledger.refund_stored(stored).state is HoldState.REFUNDED
    assert assert_conserved(ledger, 1).sold == level.sold - 1


def test_restore_indexes_sold_holds_from_now(ledger: Ledger, clock: ManualClock) -> None:
    ledger.configure(long_terms(1))
    ids = sell_a_day(ledger, clock)

    ledger.restore([long_terms(1)], ledger.holds(1))

    assert ledger.sold_before(clock(), limit=100) == []  # retained from the restore on
    assert [h.hold_id for h in ledger.sold_before(clock() + 1, limit=100)] == [ids["sold"]]


def test_holds_finished_before_the_indexes_existed_are_indexed_once_and_then_forgotten(
    ledger: Ledger, clock: ManualClock
) -> None:
    if not isinstance(ledger, RedisLedger):
        # No older deploy's data: the in-process ledger is rebuilt at start-up, every hold it has was
        # indexed as it finished (or restored), and the backfill says so at once.
        assert ledger.index_finished()
        return
    ledger.configure(terms(1, quota=1000, per_user_limit=1000, hold_ttl_s=TTL, closes_at=OPENS_AT + 9 * DAY))
    ids = sell_a_day(ledger, clock)
    # More holds than a hash Redis keeps compact (hash-max-listpack-entries), which HSCAN returns whole.
    bought = ledger.reserve_many([(1, "bob", 1, f"r{n}") for n in range(600)])
    released = [granted(d) for d in bought]
    for hold_id in released:
        ledger.release(hold_id)
    late = granted(ledger.reserve(item_id=1, user_id="cat", qty=1, request_id="late"))
    clock.advance(TTL)
    ledger.stock(1)  # `late` and ann's held one expire, not handed out yet: the store has not heard
    unindex(ledger)
    clock.advance(DAY)
    level = assert_conserved(ledger, 1)
    assert ledger.finished(clock(), limit=1000) == [] and ledger.sold_before(clock(), limit=1000) == []

    # A page at a time; a second process (a restart) goes on where the first stopped.
    restarted = RedisLedger(
        ledger.client, clock, prefix=ledger.prefix, buckets=ledger.buckets, groups=ledger.groups
    )
    calls = 0
    while not (ledger if calls % 2 else restarted).index_finished(limit=50):
        calls += 1
        assert calls < 100
    assert calls > 2  # 600 holds did not fit in one page
    assert ledger.index_finished(limit=50) and restarted.index_finished(limit=50)  # done stays done
    indexed_at = clock()
    clock.advance(DAY)

    old = {h.hold_id for h in ledger.finished(indexed_at + 1, limit=1000)}
    assert old == {ids["released"], ids["expired"], ids["refunded"], *released}  # not `late`, nor live ones
    assert [h.hold_id for h in ledger.sold_before(indexed_at + 1, limit=1000)] == [ids["sold"]]
    assert ledger.forget(old) == len(old) and ledger.forget_sold([ids["sold"]]) == 1
    unreported = {ids["held"], late}
    assert {h.hold_id for h in ledger.expire_due()} == unreported  # handed out now, and indexed
    assert {h.hold_id for h in ledger.finished(clock() + 1, limit=1000)} == unreported
    assert {h.hold_id for h in ledger.holds(1)} == unreported
    assert assert_conserved(ledger, 1) == level

    # A process of the older version (a rolling deploy) sells without the index: found a day after
    # the last scan came round (the one that starts now, a day after the first).
    while not ledger.index_finished(limit=50):
        pass
    straggler = granted(ledger.reserve(item_id=1, user_id="dee", qty=1, request_id="rolling"))
    ledger.confirm(straggler)
    ledger.client.zrem(f"{ledger._prefixes[ledger.group_of_hold(straggler)]}:sold", straggler)
    assert ledger.index_finished(limit=50) and ledger.sold_before(clock() + 1, limit=10) == []
    clock.advance(INDEX_AGAIN_S)
    while not ledger.index_finished(limit=50):
        pass
    assert [h.hold_id for h in ledger.sold_before(clock() + 1, limit=10)] == [straggler]
