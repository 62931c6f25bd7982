"""The peers' patterns on PostgreSQL, one transaction per purchase, several connections in threads.

- baseline A (macrozheng/mall, the seckill demos): `UPDATE stock SET n = n - q WHERE id = ? AND n >= q`,
  then INSERT the order when a row changed. It has no per-user limit.
- baseline B (Saleor): `SELECT … FOR UPDATE` on the stock row, the buyer's `sum(qty)` for the item,
  then UPDATE + INSERT when both stock and the limit allow.

Each run gets its own schema, dropped afterwards, so a shared server is left as it was.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from bench.report import BASELINE_A, Result
from bench.workload import (
    PER_USER_LIMIT,
    Check,
    Decide,
    Level,
    Request,
    Run,
    Shape,
    check_sale,
    replay_single,
)

CLIENTS = 16  # as many clients as the pgbench floor measured on this box class, so they compare

SCHEMA = """
CREATE TABLE stock (id int PRIMARY KEY, quota int NOT NULL, n int NOT NULL);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    item_id int NOT NULL REFERENCES stock (id),
    user_id text NOT NULL,
    qty int NOT NULL,
    request_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_item_user ON orders (item_id, user_id);
"""
INSERT_ORDER = "INSERT INTO orders (item_id, user_id, qty, request_id) VALUES (%s, %s, %s, %s)"


def server_facts(url: str) -> str:
    """Return the server's version and the settings that bound a commit's cost."""
    with psycopg.connect(url) as conn:
        shown = [
            conn.execute(f"SHOW {name}").fetchone()
            for name in ("server_version", "fsync", "synchronous_commit")
        ]
    version, fsync, sync_commit = (str(row[0]) if row else "?" for row in shown)
    return f"{version} (fsync {fsync}, synchronous_commit {sync_commit})"


@contextmanager
def _sale_schema(url: str, shape: Shape) -> Iterator[str]:
    schema = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        try:
            conn.execute(f"SET search_path TO {schema}")
            conn.execute(SCHEMA)
            with conn.cursor() as cur:
                quota = shape.quota_per_item
                cur.executemany(
                    "INSERT INTO stock (id, quota, n) VALUES (%s, %s, %s)",
                    [(item, quota, quota) for item in shape.item_ids],
                )
            yield schema
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _mall_decider(conn: psycopg.Connection) -> Decide:
    def decide(r: Request) -> bool:
        with conn.cursor() as cur:
            cur.execute("UPDATE stock SET n = n - %s WHERE id = %s AND n >= %s", (1, r.item_id, 1))
            granted = cur.rowcount == 1
            if granted:
                cur.execute(INSERT_ORDER, (r.item_id, r.user_id, 1, r.request_id))
        conn.commit()
        return granted

    return decide


def _saleor_decider(conn: psycopg.Connection) -> Decide:
    def decide(r: Request) -> bool:
        with conn.cursor() as cur:
            cur.execute("SELECT n FROM stock WHERE id = %s FOR UPDATE", (r.item_id,))
            (left,) = cur.fetchone() or (0,)
            cur.execute(
                "SELECT coalesce(sum(qty), 0) FROM orders WHERE item_id = %s AND user_id = %s",
                (r.item_id, r.user_id),
            )
            (used,) = cur.fetchone() or (0,)
            granted = left >= 1 and used + 1 <= PER_USER_LIMIT
            if granted:
                cur.execute("UPDATE stock SET n = n - %s WHERE id = %s", (1, r.item_id))
                cur.execute(INSERT_ORDER, (r.item_id, r.user_id, 1, r.request_id))
        conn.commit()
        return granted

    return decide


def _final_state(url: str, schema: str, run: Run, *, user_limit_enforced: bool) -> Check:
    with psycopg.connect(url, options=f"-c search_path={schema}") as conn:
        rows = conn.execute(
            "SELECT s.id, s.quota, s.n, coalesce(sum(o.qty), 0) FROM stock s "
            "LEFT JOIN orders o ON o.item_id = s.id GROUP BY s.id, s.quota, s.n"
        ).fetchall()
        per_user = conn.execute("SELECT user_id, sum(qty) FROM orders GROUP BY item_id, user_id").fetchall()
    # An order row is an unpaid purchase: the pattern's equivalent of our hold.
    levels = [Level(item, quota, n, int(ordered), 0) for item, quota, n, ordered in rows]
    totals: Counter[str] = Counter()
    for user, units in per_user:
        totals[user] = max(totals[user], int(units))
    return check_sale(levels, run, per_user_totals=totals, user_limit_enforced=user_limit_enforced)


def _bench(
    url: str, shape: Shape, *, engine: str, pattern: Callable[[psycopg.Connection], Decide], limited: bool
) -> Result:
    with _sale_schema(url, shape) as schema:
        connections: list[psycopg.Connection] = []

        def decider() -> Decide:
            conn = psycopg.connect(url, options=f"-c search_path={schema}")
            connections.append(conn)
            return pattern(conn)

        try:
            run = replay_single(shape.crowd(), threads=CLIENTS, decider=decider)
        finally:
            for conn in connections:
                conn.close()
        check = _final_state(url, schema, run, user_limit_enforced=limited)
    return Result(engine, shape.label, "decisions/s", run, check, how=f"{CLIENTS} connections, 1 tx/request")


def bench_mall(url: str, shape: Shape) -> Result:
    """Measure baseline A: conditional UPDATE + INSERT per request, in its own transaction."""
    return _bench(
        url, shape, engine=f"{BASELINE_A}: PG UPDATE … n>=q + INSERT", pattern=_mall_decider, limited=False
    )


def bench_saleor(url: str, shape: Shape) -> Result:
    """Measure baseline B: SELECT … FOR UPDATE + the buyer's sum + UPDATE + INSERT per request."""
    return _bench(
        url,
        shape,
        engine="baseline B: PG FOR UPDATE + sum + UPDATE + INSERT",
        pattern=_saleor_decider,
        limited=True,
    )
