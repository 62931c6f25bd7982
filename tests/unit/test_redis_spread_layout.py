"""Where a spread item's buckets live (flashsale.ledger.redis_spread): pure arithmetic, no server."""

from __future__ import annotations

import pytest

from flashsale.ledger.redis_spread import Spread, shares


def unused_run(*_: object, **__: object) -> None:
    raise AssertionError("no script runs here")


@pytest.mark.parametrize(("groups", "n"), [(3, 3), (16, 4), (16, 3), (5, 2)])
def test_every_bucket_of_an_item_has_its_own_group_and_the_group_names_the_bucket(
    groups: int, n: int
) -> None:
    spread = Spread(unused_run, lambda: 0.0, groups, n)
    for item_id in range(1, 60):
        placed = spread.groups_of(item_id)
        assert len(set(placed)) == n and placed[0] == item_id % groups  # bucket 0: the item's own group
        assert [spread.part_of_group(item_id, g) for g in placed] == list(range(n))


def test_a_user_always_goes_to_the_same_bucket() -> None:
    spread = Spread(unused_run, lambda: 0.0, 16, 4)
    assert {spread.part_of_user("ann") for _ in range(5)} == {spread.part_of_user("ann")}
    assert {spread.part_of_user(f"u{n}") for n in range(100)} == {0, 1, 2, 3}


def test_units_are_shared_evenly_and_none_is_lost() -> None:
    assert shares(10, 3) == [4, 3, 3]
    assert shares(2, 3) == [1, 1, 0]
    assert sum(shares(1_000_003, 4)) == 1_000_003


@pytest.mark.parametrize(("groups", "n"), [(3, 1), (2, 3)])
def test_spread_needs_two_buckets_and_at_most_one_per_group(groups: int, n: int) -> None:
    with pytest.raises(ValueError):
        Spread(unused_run, lambda: 0.0, groups, n)


def test_items_whose_buckets_share_a_master_are_named() -> None:
    spread = Spread(unused_run, lambda: 0.0, 6, 3)  # bucket groups r, r+2, r+4 (mod 6)
    apart = {0: "a", 1: "a", 2: "b", 3: "b", 4: "c", 5: "c"}
    assert spread.crowded(apart.__getitem__) == {}
    together = {0: "a", 2: "b", 4: "c", 1: "a", 3: "a", 5: "b"}  # groups 1 and 3 on one master
    assert spread.crowded(together.__getitem__) == {
        1: ["a", "a", "b"],
        3: ["a", "b", "a"],
        5: ["b", "a", "a"],
    }
    assert Spread(unused_run, lambda: 0.0, 6, 3).crowded(lambda g: "only") == {}  # one master: no better
