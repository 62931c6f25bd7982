"""Hold ids (= order ids) are unguessable: no counter, no shared prefix, nothing that counts sales."""

from __future__ import annotations

import re
from itertools import pairwise, takewhile

from flashsale.ledger import Ledger
from flashsale.ledger.ids import HOLD_ID_LENGTH, HoldIdPool, new_hold_ids
from tests.contract.checks import granted
from tests.factories import terms

GRANTS = 1000
SINGLE = 200  # of them one `reserve` at a time, the rest in batches: two paths to an id on each engine
ID_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{{HOLD_ID_LENGTH}}}")
# Two random ids share their first k characters with chance 64**-k: five or more is 1e-9 per pair.
LONGEST_SHARED_PREFIX = 4


def shared_prefix(a: str, b: str) -> int:
    """Return how many leading characters two ids share."""
    return sum(1 for _ in takewhile(lambda pair: pair[0] == pair[1], zip(a, b, strict=False)))


def assert_unguessable(ids: list[str]) -> None:
    """Check the ids are distinct, of the documented shape, and free of any sequence or shared part."""
    assert len(set(ids)) == len(ids)
    assert all(ID_SHAPE.fullmatch(i) for i in ids), [i for i in ids if not ID_SHAPE.fullmatch(i)][:3]
    assert max(shared_prefix(a, b) for a, b in pairwise(ids)) <= LONGEST_SHARED_PREFIX
    # A prefix plus a counter keeps its leading characters and lets its last ones count up; random
    # ids vary in every position, and their order says nothing about their age.
    for position in range(HOLD_ID_LENGTH):
        assert len({i[position] for i in ids}) > 32, position
    ascending = sum(a < b for a, b in pairwise(ids))
    assert 0.3 < ascending / (len(ids) - 1) < 0.7


def test_a_thousand_consecutive_hold_ids_are_distinct_and_share_no_prefix_or_sequence(ledger: Ledger) -> None:
    ledger.configure(terms(1, quota=GRANTS, per_user_limit=1))

    ids = [granted(ledger.reserve(item_id=1, user_id=f"u{n}", qty=1, request_id="k")) for n in range(SINGLE)]
    batch = [(1, f"u{n}", 1, "k") for n in range(SINGLE, GRANTS)]
    ids += [granted(d) for d in ledger.reserve_many(batch)]

    assert len(ids) == GRANTS
    assert_unguessable(ids)
    assert ledger.stock(1).held == GRANTS


def test_refused_requests_between_grants_leave_no_trace_in_the_ids(ledger: Ledger) -> None:
    ledger.configure(terms(1, quota=100, per_user_limit=1))
    decisions = ledger.reserve_many([(1, f"u{n // 2}", 1, f"k{n}") for n in range(200)])  # every 2nd: limit

    ids = [d.hold.hold_id for d in decisions if d.hold is not None]

    assert len(ids) == 100
    assert_unguessable(ids)


def test_ids_made_in_bulk_or_one_by_one_have_the_same_shape() -> None:
    pool = HoldIdPool(batch=7)  # a small batch, so the pool refills several times

    assert_unguessable(new_hold_ids(GRANTS))
    assert_unguessable([pool() for _ in range(GRANTS)])
    assert new_hold_ids(0) == []
