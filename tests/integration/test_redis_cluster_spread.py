"""A hot item spread over the masters of a 3-master Redis Cluster (`?groups=3&spread=3`).

The contract suite runs on this engine too (tests/contract, `redis-cluster-spread`); these tests cover
what only spreading has: buckets on different masters, transfers between them (one interrupted by a
client that dies between its steps), and a crowd on one hot item decided by three masters.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from flashsale.bootstrap import Platform, order_writer_for, repair_hook
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import Hold
from flashsale.ledger import redis as redis_ledger_module
from flashsale.ledger.contract import SEQUENCE_EPOCH
from flashsale.ledger.redis import RedisLedger, redis_ledger_from_url
from flashsale.ledger.redis_spread import LayoutChanged, Spread
from flashsale.services.orders import Buy
from flashsale.store import repositories as repo
from flashsale.store.tables import OrderRow
from tests.conftest import Sale
from tests.factories import OPENS_AT, release_together, terms
from tests.integration.redis_support import delete_keys_of, redis_of, redis_platform, wait_until, with_query
from tests.services import REDIS_CLUSTER_URL

pytestmark = pytest.mark.redis_cluster

LIMIT = 2


@pytest.fixture
def ledger() -> Iterator[RedisLedger]:
    """A ledger with every item in three buckets, one per slot group, under a fresh prefix."""
    assert REDIS_CLUSTER_URL is not None
    url = with_query(REDIS_CLUSTER_URL, groups=3, spread=3, prefix=f"t-{uuid.uuid4().hex}")
    made = redis_ledger_from_url(url, ManualClock(OPENS_AT))
    yield made
    delete_keys_of(made)
    made.close()


@pytest.fixture
def platform(settings: Settings, clock: ManualClock) -> Iterator[Platform]:
    """The shared `platform` fixture on a spread Cluster ledger (orders in the default database)."""
    with redis_platform(settings, clock, cluster=True, groups=3, spread=3) as plat:
        yield plat


def spread_of(ledger: RedisLedger) -> Spread:
    assert ledger.spread is not None
    return ledger.spread


def outgoing(ledger: RedisLedger, item_id: int) -> int:
    """Outgoing transfer records of the item's buckets (finished transfers leave none)."""
    return sum(len(p.out) for p in spread_of(ledger).parts(item_id) if p is not None)


def test_the_buckets_of_a_spread_item_live_on_different_masters(ledger: RedisLedger) -> None:
    for item_id in (1, 2, 3, 42):
        groups = ledger.groups_of_item(item_id)
        nodes = {ledger.client.get_node_from_key(f"{ledger.prefix}:{{g{g}}}:due").name for g in groups}
        assert len(set(groups)) == 3
        assert len(nodes) >= 2, nodes  # with groups g0..g2 on three masters: all three
    assert spread_of(ledger).crowded(ledger.master_of_group) == {}  # no item has two buckets on one master
    ledger.configure(terms(1, quota=10, per_user_limit=LIMIT))
    assert [p.quota for p in spread_of(ledger).parts(1) if p is not None] == [4, 3, 3]


def test_a_users_requests_all_go_to_one_bucket_so_the_limit_is_exact(ledger: RedisLedger) -> None:
    ledger.configure(terms(1, quota=30, per_user_limit=LIMIT))
    answers = ledger.reserve_many([(1, "ann", 1, f"k{n}") for n in range(4)])

    assert [a.code for a in answers] == [None, None, ErrorCode.LIMIT_EXCEEDED, ErrorCode.LIMIT_EXCEEDED]
    groups = {ledger.group_of_hold(a.hold.hold_id) for a in answers if a.hold is not None}
    assert groups == {ledger.group_of_request(1, "ann")}
    assert ledger.used_by(1, "ann") == LIMIT


def test_items_of_an_unspread_ledger_are_refused_plainly_until_a_rebuild(ledger: RedisLedger) -> None:
    assert REDIS_CLUSTER_URL is not None
    unspread = redis_ledger_from_url(
        with_query(REDIS_CLUSTER_URL, groups=3, prefix=ledger.prefix), ledger._clock
    )
    try:
        unspread.configure(terms(3, quota=10))  # item 3: group 0, which is also bucket 0's
    finally:
        unspread.close()
    with pytest.raises(LayoutChanged):
        ledger.stock(3)
    ledger.restore([terms(3, quota=10)], [])
    assert ledger.stock(3).available == 10


def test_a_restore_under_a_lease_one_bucket_lost_changes_no_bucket(ledger: RedisLedger) -> None:
    item = terms(1, quota=9, per_user_limit=LIMIT)
    ledger.configure(item)
    held = ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k").hold
    assert held is not None
    ledger.pause([1], until=OPENS_AT + 30, token="t")
    # the group rebuilt last lost the lease (it ran out there first, say): the others' books must
    # not be rebuilt without it
    ledger._run("pause", OPENS_AT, "resume", "t", 0, 1, group=max(ledger.groups_of_item(1)))
    before = [p.quota if p else None for p in spread_of(ledger).parts(1)]

    with pytest.raises(FlashSaleError) as refused:
        ledger.restore([item], [], token="t")  # the store says ann's hold is gone: 9 available

    assert refused.value.code is ErrorCode.CONFLICT
    assert [p.quota if p else None for p in spread_of(ledger).parts(1)] == before
    assert ledger.stock(1).held == 2


def test_a_restore_without_a_token_pauses_so_no_transfer_spans_rebuilt_and_unrebuilt_buckets(
    ledger: RedisLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = terms(1, quota=9, per_user_limit=LIMIT)
    ledger.configure(item)
    spread = spread_of(ledger)
    groups = spread.groups_of(1)
    first, last = groups.index(min(groups)), groups.index(max(groups))  # rebuilt first and last
    run, moved = ledger._run, []

    def run_then_transfer(name: str, *args: object, group: int = 0) -> object:
        reply = run(name, *args, group=group)
        if name == "restore" and group == groups[first] and not moved:
            # another client moves units from a bucket not rebuilt yet to one rebuilt already
            tid, taken = spread.send(1, last, first, 2)
            moved.append(taken)
            if taken:
                spread.land(1, last, first, tid, taken)
        return reply

    monkeypatch.setattr(ledger, "_run", run_then_transfer)
    ledger.restore([item], [])

    assert moved == [0]  # refused: the item was paused
    level = ledger.stock(1)
    assert level.conserved and (level.quota, level.available) == (9, 9)
    assert ledger.pauses() == {}  # and resumed


def test_an_interrupted_transfer_is_counted_in_transit_and_landed_by_the_next_lease_holder(
    ledger: RedisLedger,
) -> None:
    ledger.configure(terms(1, quota=9, per_user_limit=LIMIT))
    spread = spread_of(ledger)
    tid, taken = spread.send(1, 1, 0, 3)  # step 1, then the client dies: no step 2 or 3
    assert taken == 3
    assert [p.avail for p in spread.parts(1) if p is not None] == [3, 0, 3]
    assert ledger.stock(1).available == 9 and ledger.stock(1).conserved  # the 3 are in transit

    # A buyer of the dry bucket 1 takes the lease: it lands the dead client's transfer first, then
    # moves units to its own bucket.
    buyer = next(f"u{n}" for n in range(100) if spread.part_of_user(f"u{n}") == 1)
    assert ledger.reserve(item_id=1, user_id=buyer, qty=1, request_id="k").granted
    assert outgoing(ledger, 1) == 0
    spread.land(1, 1, 0, tid, 3)  # the dead client's steps 2 and 3, late: a no-op
    level = ledger.stock(1)
    assert (level.quota, level.available, level.held) == (9, 8, 1)
    assert sum(p.avail for p in spread.parts(1) if p is not None) == 8


def test_a_transfer_sent_before_a_restore_is_never_credited_after_it(ledger: RedisLedger) -> None:
    """A lease holder stalls between its send and its receive while a repair rebuilds every bucket
    (which counts the units in transit as the donor's again): its late receive is refused (STALE) and
    credits nothing, so no unit is made out of the transfer."""
    item = terms(1, quota=6, per_user_limit=LIMIT)
    ledger.configure(item)
    spread = spread_of(ledger)
    tid, taken = spread.send(1, 1, 0, 2)  # step 1, then the holder stalls
    assert taken == 2
    ledger.restore([item], [])  # a repair meanwhile: every bucket rebuilt, the outgoing record gone

    assert spread.land(1, 1, 0, tid, taken)[0] == "STALE"  # the holder wakes: step 2, late

    assert [p.avail for p in spread.parts(1) if p is not None] == [2, 2, 2]
    level = ledger.stock(1)
    assert level.conserved and level.available == 6
    # Transfers of the new generation land as before.
    tid, taken = spread.send(1, 1, 0, 2)
    assert spread.land(1, 1, 0, tid, taken)[0] == "ok"
    assert [p.avail for p in spread.parts(1) if p is not None] == [4, 0, 2]


def test_a_dead_holders_refill_lease_runs_out_and_a_short_request_is_then_served(
    ledger: RedisLedger,
) -> None:
    ledger.configure(terms(1, quota=3, per_user_limit=LIMIT))  # one unit in each bucket
    spread = spread_of(ledger)
    spread.lease_ms = 300
    assert spread.take_lease(1, "dead")  # a holder that dies holding the lease
    assert not spread.take_lease(1, "other")
    buyer = next(f"u{n}" for n in range(100) if spread.part_of_user(f"u{n}") == 2)

    started = time.monotonic()
    decision = ledger.reserve(item_id=1, user_id=buyer, qty=2, request_id="k")

    assert decision.granted and time.monotonic() - started >= 0.2  # it waited for the lease to run out
    assert spread.take_lease(1, "other")  # the buyer gave its lease back
    level = ledger.stock(1)
    assert level.conserved and (level.held, level.available) == (2, 1)


def test_a_short_request_that_never_gets_the_lease_is_told_to_retry_not_refused_for_stock(
    ledger: RedisLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger.configure(terms(1, quota=3, per_user_limit=LIMIT))  # one unit in each bucket
    spread = spread_of(ledger)
    spread.lease_ms = 60_000
    assert spread.take_lease(1, "stuck")  # a holder that keeps it past the wait
    monkeypatch.setattr(redis_ledger_module, "LEASE_WAIT_S", 0.2)
    buyer = next(f"u{n}" for n in range(100) if spread.part_of_user(f"u{n}") == 2)

    decision = ledger.reserve(item_id=1, user_id=buyer, qty=2, request_id="k")

    assert decision.code is ErrorCode.SERVICE_UNAVAILABLE
    assert [p.avail for p in spread.parts(1) if p is not None] == [1, 1, 1]  # nothing moved


def test_a_short_request_keeps_collecting_while_its_buckets_own_sales_take_what_it_moved_in(
    ledger: RedisLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13's starvation, made deterministic: a request for 2 units in a bucket left with 1, and
    right after every transfer into that bucket other shoppers of the bucket (ordinary requests that
    fit) buy all but 1 of what it holds, while the item keeps exactly 2 units for the request
    (quota == demand). The reverted code gave up after a fixed count of refills (SHORT_RETRIES) and
    refused it with units still for sale; a holder of the refill lease keeps collecting, since every
    loop sees the stock fall by real sales, until the request fits."""
    quota = 300
    ledger.configure(terms(1, quota=quota, per_user_limit=LIMIT))
    spread = spread_of(ledger)
    users = [f"u{n}" for n in range(2000)]
    buyer, *others = [u for u in users if spread.part_of_user(u) == 1][: quota + 1]
    tid, taken = spread.send(1, 1, 0, 99)  # bucket 1 keeps 1 of its 100 units
    spread.land(1, 1, 0, tid, taken)
    land, sales = spread.land, iter(others)

    def land_then_sell_all_but_one(item_id: int, src: int, dst: int, tid: str, units: int) -> object:
        reply = land(item_id, src, dst, tid, units)
        parts = [p for p in spread.parts(1) if p is not None]
        # leave 1 in bucket 1, and 2 units of the item for the buyer
        selling = min(parts[1].avail - 1, sum(p.avail for p in parts) - 2)
        if dst == 1 and selling > 0:
            sold = ledger.reserve_many([(1, next(sales), 1, "k") for _ in range(selling)])
            assert all(d.granted for d in sold)
        return reply

    monkeypatch.setattr(spread, "land", land_then_sell_all_but_one)
    decision = ledger.reserve(item_id=1, user_id=buyer, qty=2, request_id="k")

    assert decision.granted, decision.code
    level = ledger.stock(1)
    assert level.conserved and (level.held, level.available) == (quota, 0)
    assert outgoing(ledger, 1) == 0


def test_a_crowd_on_one_hot_spread_item_sells_exactly_the_quota_and_nobody_more_than_the_limit(
    ledger: RedisLedger,
) -> None:
    quota, users = 300, 400
    ledger.configure(terms(1, quota=quota, per_user_limit=LIMIT))
    spread = spread_of(ledger)
    # Clients that died between steps 1 and 2 of their transfers: 6 units left in transit.
    for src, dst in ((0, 1), (1, 2), (2, 0)):
        assert spread.send(1, src, dst, 2)[1] == 2
    assert ledger.stock(1).available == quota

    rng = random.Random(7)
    requests = [(1, f"u{n}", rng.choice((1, 1, 2)), f"k{k}") for n in range(users) for k in range(2)]
    rng.shuffle(requests)
    lanes = [requests[n::8] for n in range(8)]

    def buy(lane: list[tuple[int, str, int, str]]) -> list[tuple[Hold | None, ErrorCode | None]]:
        # a few requests at a time, as the batcher sends them
        return [
            (d.hold, d.code) for at in range(0, len(lane), 5) for d in ledger.reserve_many(lane[at : at + 5])
        ]

    answers = [a for lane in release_together([lambda lane=lane: buy(lane) for lane in lanes]) for a in lane]

    grants = [hold for hold, _ in answers if hold is not None]
    codes = Counter(code for hold, code in answers if hold is None)
    level = ledger.stock(1)
    assert level.conserved and level.quota == quota
    assert sum(h.qty for h in grants) == level.held == quota  # nothing undersold: the crowd wanted more
    assert level.available == 0 and outgoing(ledger, 1) == 0  # the stranded units were sold too
    assert codes[ErrorCode.SOLD_OUT] > 0 and set(codes) <= {
        ErrorCode.SOLD_OUT,
        ErrorCode.INSUFFICIENT_STOCK,
        ErrorCode.LIMIT_EXCEEDED,
    }
    per_user = Counter[str]()
    for hold in grants:
        per_user[hold.user_id] += hold.qty
    assert max(per_user.values()) <= LIMIT
    assert all(ledger.used_by(1, user) == units for user, units in per_user.items())
    # every master decided some of the crowd
    assert len({ledger.group_of_hold(h.hold_id) for h in grants}) == 3


def test_a_spread_sale_is_stored_by_one_writer_whose_marks_call_for_no_repair(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    ledger, buds = redis_of(platform), sale.earbuds_id
    clock.set(clock() + 1)
    bought = [platform.orders.buy(Buy(f"u{n}", buds, 1, "k")).order.id for n in range(12)]
    assert len({ledger.group_of_hold(order_id) for order_id in bought}) == 3  # every bucket sold

    writer = order_writer_for(platform)
    writer.drain()
    with platform.deps.uow() as uow:
        assert set(uow.db.scalars(select(OrderRow.id))) == set(bought)
        marks = repo.ledger_marks(uow.db)
    # Every bucket is a book of its own: its entries carry its sequence, and it has its own mark.
    assert marks == {(buds, b): seq for b, seq in enumerate(ledger.sequences(buds))}
    assert sum(ledger.sequences(buds)) == 12
    writer.share_marks()  # hands the marks to the ledger as floors: none is above its sequence
    assert platform.orders.buy(Buy("late", buds, 1, "k")).order.id


def users_of_bucket(ledger: RedisLedger, part: int, count: int, tag: str) -> list[str]:
    """`count` user ids whose requests go to bucket `part`."""
    spread = spread_of(ledger)
    return [u for u in (f"{tag}{n}" for n in range(200)) if spread.part_of_user(u) == part][:count]


def group_keys(ledger: RedisLedger, group: int) -> list[str]:
    """Every key of a slot group of the ledger."""
    return list(ledger.client.scan_iter(match=f"{ledger.prefix}:{{g{group}}}:*", count=1000))


def snapshot_group(ledger: RedisLedger, group: int) -> dict[str, bytes]:
    """Every key of a slot group, dumped (what a master's AOF holds of it at this instant)."""
    return {key: ledger.client.dump(key) for key in group_keys(ledger, group)}


def go_back(ledger: RedisLedger, group: int, snapshot: dict[str, bytes]) -> None:
    """The group's master comes back on the snapshot: everything written to the group since is lost."""
    for key in group_keys(ledger, group):
        ledger.client.delete(key)
    for key, dumped in snapshot.items():
        ledger.client.restore(key, 0, dumped, replace=True)


def test_a_bucket_whose_master_went_back_is_found_by_its_own_mark_and_repaired(
    platform: Platform, sale: Sale, clock: ManualClock, settings: Settings
) -> None:
    """A master serving bucket 1 (not bucket 0) restarts on a stale AOF: the grants it lost were
    acknowledged and stored. A process that never saw them refuses that bucket from the database's
    marks alone, and the writer's look at the marks repairs the ledger and reports the lost orders."""
    ledger, buds = redis_of(platform), sale.earbuds_id
    clock.set(clock() + 1)
    for n in range(6):
        platform.orders.buy(Buy(f"u{n}", buds, 1, "k"))
    writer = order_writer_for(platform)
    writer.drain()
    group = ledger.groups_of_item(buds)[1]
    stale = snapshot_group(ledger, group)
    lost = {platform.orders.buy(Buy(u, buds, 1, "k")).order.id for u in users_of_bucket(ledger, 1, 3, "v")}
    writer.drain()  # acknowledged and stored: bucket 1's mark is above what the snapshot has
    go_back(ledger, group, stale)

    # A process that never saw those grants: only the database's marks tell it.
    assert REDIS_CLUSTER_URL is not None
    other = redis_ledger_from_url(
        with_query(REDIS_CLUSTER_URL, groups=3, spread=3, prefix=ledger.prefix), clock
    )
    try:
        with platform.deps.read() as r:
            other.expect(repo.ledger_marks(r.db))
        (late,) = users_of_bucket(ledger, 1, 1, "w")
        assert (
            other.reserve(item_id=buds, user_id=late, qty=1, request_id="k").code is ErrorCode.LEDGER_BEHIND
        )
        assert other.used_by(buds, late) == 0
        # A bucket that lost nothing sells on until the repair pauses the item.
        (fine,) = users_of_bucket(ledger, 0, 1, "w")
        assert other.reserve(item_id=buds, user_id=fine, qty=1, request_id="k").granted
    finally:
        other.close()
    writer.drain()

    # No operator: the writer's look at the marks finds bucket 1 behind and repairs it (as in serve).
    platform.orders.refusals.repair = repair_hook(platform)
    writer.share_marks()
    assert wait_until(lambda: any(settings.data_dir.glob("lost-writes-*.json")))
    (report,) = [json.loads(p.read_text()) for p in settings.data_dir.glob("lost-writes-*.json")]
    assert report["repaired"] and report["clean_after"]
    assert {a["order_id"] for a in report["affected"]} == lost  # restored into the ledger from the store
    assert all(seq >= SEQUENCE_EPOCH for seq in ledger.sequences(buds))  # every book in a new epoch
    level = ledger.stock(buds)
    with platform.deps.read() as r:
        stored = repo.all_holds(r.db)
    assert level.conserved and level.held == sum(h.qty for h in stored if h.state.value == "held")
    assert platform.orders.buy(Buy(late, buds, 1, "k")).order.id  # sells again, in the new epoch


def test_a_donor_bucket_below_its_floor_sends_nothing(ledger: RedisLedger) -> None:
    """A bucket whose sequence went back may count units it had sold as available: a transfer out of
    it could sell them twice, so the shortfall path refuses LEDGER_BEHIND and leaves it as it is."""
    ledger.configure(terms(1, quota=3, per_user_limit=LIMIT))
    spread = spread_of(ledger)
    (first,) = users_of_bucket(ledger, 1, 1, "u")
    assert ledger.reserve(item_id=1, user_id=first, qty=1, request_id="k").granted
    assert [p.avail for p in spread.parts(1) if p is not None] == [1, 0, 1]  # bucket 2 the only donor
    ledger.expect({(1, 2): ledger.sequences(1)[2] + 1})  # bucket 2 lost a grant this process saw
    (buyer,) = users_of_bucket(ledger, 0, 1, "u")

    decision = ledger.reserve(item_id=1, user_id=buyer, qty=2, request_id="k")

    assert decision.code is ErrorCode.LEDGER_BEHIND
    after = [p for p in spread.parts(1) if p is not None]
    assert after[2].avail == 1 and not after[2].out  # nothing left the bucket that is behind
    level = ledger.stock(1)
    assert level.conserved and level.held == 1 and ledger.used_by(1, buyer) == 0


def test_a_forgotten_sale_is_refunded_in_its_users_bucket_whichever_bucket_that_is(
    ledger: RedisLedger,
) -> None:
    ledger.configure(terms(1, quota=30, per_user_limit=LIMIT))
    spread = spread_of(ledger)
    users = {spread.part_of_user(f"u{n}"): f"u{n}" for n in range(50)}
    assert sorted(users) == [0, 1, 2]  # a shopper of every bucket
    sold: list[Hold] = []
    for user in users.values():
        (decision,) = ledger.reserve_many([(1, user, 1, "k")])
        assert decision.hold is not None
        sold.append(ledger.confirm(decision.hold.hold_id))
    assert ledger.forget_sold(h.hold_id for h in sold) == len(sold)

    for hold in sold:
        assert ledger.refund_stored(hold).state.value == "refunded"
        assert ledger.refund_stored(hold).state.value == "refunded"  # a repeat moves nothing
        assert ledger.used_by(1, hold.user_id) == 0
    level = ledger.stock(1)
    assert level.conserved and (level.sold, level.held, level.available) == (0, 0, 30)
