"""The Redis ledger on a Redis Cluster: correctness and Redis CPU per decision on each shard.

On one machine the shards share its cores, so this row shows the cost each shard pays per decision
(the figure a capacity plan multiplies, see BENCHMARKS.md), not a speed-up. It runs on an existing
Cluster named by FLASHSALE_BENCH_REDIS_CLUSTER_URL (`redis+cluster://host:port`; `.ci/services.sh`
starts one) and is skipped without one. The CPU is each master's `INFO commandstats` time in
scripts (EVALSHA: the reserve script of each slot group and the request claims of each user group).

The spread rows put the hot item on 3 slot groups (one per master of a 3-master Cluster) and compare
it unspread (`groups=3`) with spread over them (`groups=3&spread=3`, see flashsale.ledger.redis_spread):
a shard's CPU then covers its bucket's decisions, its users' claims and the transfers near sell-out.
"""

from __future__ import annotations

import os
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from bench.ledgers import bench_batched
from bench.report import Result, Skipped
from bench.workload import Shape
from flashsale.ledger.redis import RedisLedger, redis_ledger_from_url

CLUSTER_URL_ENV = "FLASHSALE_BENCH_REDIS_CLUSTER_URL"
THREADS = 4
BATCH = 64


def _script_usec(ledger: RedisLedger) -> dict[str, int]:
    """Server CPU µs spent in scripts so far, per master (host:port)."""
    spent = {}
    for node in ledger.client.get_primaries():
        stats = ledger.client.info("commandstats", target_nodes=node)
        spent[node.name] = sum(int(stats.get(f"cmdstat_{c}", {}).get("usec", 0)) for c in ("eval", "evalsha"))
    return spent


def _decided_on(ledger: RedisLedger, shape: Shape) -> Counter[str]:
    """How many of the crowd's requests each master decides (by the slot of the request's group:
    the item's, or on a spread ledger its user's bucket's)."""
    nodes = {
        group: ledger.client.get_node_from_key(f"{ledger.prefix}:{{g{group}}}:due").name
        for group in range(ledger.groups)
    }
    return Counter(nodes[ledger.group_of_request(r.item_id, r.user_id)] for r in shape.crowd())


def bench_cluster(url: str, shape: Shape, options: str = "") -> Result:
    """reserve_many on the Cluster; the row tells the Redis CPU per decision, overall and per shard."""
    prefix = f"bench-{secrets.token_hex(4)}"
    ledger = redis_ledger_from_url(f"{url}?prefix={prefix}{options}", time.time)
    try:
        before = _script_usec(ledger)
        result = bench_batched(
            ledger, shape, engine="redis cluster ledger, reserve_many", threads=THREADS, batch=BATCH
        )
        after = _script_usec(ledger)
        decided = _decided_on(ledger, shape)
    finally:
        for key in list(ledger.client.scan_iter(match=f"{prefix}:*", count=1000)):
            ledger.client.unlink(key)
        ledger.close()
    spent = {node: after[node] - before.get(node, 0) for node in after}
    total = sum(spent.values()) / max(1, result.run.decisions)
    # A shard's CPU covers the decisions of its items' groups and the request claims of its users'
    # groups, so a shard with no item of the crowd still works (claims only).
    shards = ", ".join(
        f"{node}: {spent[node] / 1000:.0f} ms"
        + (
            f" = {spent[node] / decided[node]:.1f} µs × {decided[node]:,} decided"
            if decided[node]
            else ", claims only"
        )
        for node in sorted(spent)
    )
    layout = f"{ledger.groups} slot groups" + (f", spread over {ledger.spread.n}" if ledger.spread else "")
    how = f"{result.how}, {layout}; Redis CPU {total:.1f} µs/decision (per shard {shards})"
    return replace(result, how=how)


def steps(requests: int) -> list[tuple[str, Callable[[], Result | Skipped]]]:
    """One hot item (one shard works) and 100 items (spread over the shards); one hot item on 3 slot
    groups, unspread (one shard decides) and spread over the 3 (each shard decides a third)."""
    url = os.environ.get(CLUSTER_URL_ENV)
    if not url:
        name = "redis cluster ledger"
        return [(name, lambda: Skipped(name, f"no Redis Cluster (set {CLUSTER_URL_ENV})"))]
    rows = [
        (f"redis cluster ledger, reserve_many / {s.label}", partial(bench_cluster, url, s))
        for s in (Shape(requests, 1), Shape(requests, 100))
    ]
    return rows + [
        (
            f"redis cluster ledger, reserve_many / 1 hot item, {name}",
            partial(bench_cluster, url, Shape(requests, 1), o),
        )
        for name, o in (("3 groups", "&groups=3"), ("spread over 3 groups", "&groups=3&spread=3"))
    ]
