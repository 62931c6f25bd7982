"""Redis losing acknowledged writes, on real servers: redis-server (AOF, fsync always), PostgreSQL,
`flashsale serve`.

redis-server is restarted on a copy of its AOF taken before the last purchases (as after a
failover to a lagging replica): those purchases were acknowledged (201) and stored in PostgreSQL
by the order writer, and this Redis never saw them. Without any operator command:
- a process that never saw those grants refuses to sell from that Redis (LEDGER_BEHIND, from the
  order writers' high-water marks in PostgreSQL), and the server that made them answers 503
  SALE_PAUSED with Retry-After, never 201, until the ledger is repaired;
- the server repairs it (reconcile under the pause lease) and writes a report in its data dir that
  lists exactly the acknowledged orders Redis had lost, with their shoppers;
- afterwards every acknowledged Idempotency-Key replays its own order id, a lost unpaid order can
  be paid, sold + held + available == quota, PAID ≤ quota, every user within the limit, and Redis
  agrees with PostgreSQL.
With no purchase at all, the server's order writer finds the loss (Redis' sequence below the
marks) and repairs it; a payer of an order the stale Redis forgot hears 503, never UNKNOWN_HOLD,
and pays once it is repaired.
A Redis that went back and granted a lost key a second time (from a process with no floor): the
server's order writer meets that grant at PostgreSQL's mark for another order, repairs and reports
the order id it had to drop; with no server, `flashsale reconcile --report` lists it and exits 3.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest

from flashsale.bootstrap import build, order_writer_for
from flashsale.domain.errors import ErrorCode
from flashsale.ledger.contract import SEQUENCE_EPOCH
from flashsale.ledger.redis import redis_ledger_from_url
from flashsale.services.orders import Buy
from flashsale.services.reconcile import Reconciler
from tests.integration import test_pause_faults
from tests.integration.test_pause_faults import (
    Live,
    Tally,
    assert_invariants,
    assert_only_honest_refusals,
    wait_until,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.redis_server]

live = test_pause_faults.live  # the fixture: a sale open now, served by `flashsale serve`

BEFORE, AFTER = 20, 15  # purchases in the stale copy of the AOF, and acknowledged after it


def buy(live: Live, http: httpx.Client, user: str, key: str) -> httpx.Response:
    return http.post(
        "/purchases", json={"item_id": live.item_id, "quantity": 1}, headers=live.headers(user, key)
    )


def stale_restart(live: Live, stale: Path) -> None:
    """Kill redis-server and start it again on the AOF copied to `stale` (the writes since are lost)."""
    aof = live.redis.data_dir / "appendonlydir"
    live.redis.kill()
    shutil.rmtree(aof)
    shutil.copytree(stale, aof)
    live.redis.start()


def copy_aof(live: Live, to: Path) -> None:
    """Copy the AOF while nothing writes: with fsync always, every acknowledged write is in it."""
    order_writer_for(live.platform).drain()  # the writer's acks are writes too: let them land first
    shutil.copytree(live.redis.data_dir / "appendonlydir", to)


def test_redis_restarted_on_a_stale_aof_is_detected_paused_repaired_and_reported(
    live: Live, tmp_path: Path
) -> None:
    writer = order_writer_for(live.platform)
    with live.http() as http:
        for n in range(BEFORE):
            assert buy(live, http, f"early{n}", f"k-early{n}").status_code == 201
        copy_aof(live, tmp_path / "stale")
        lost: dict[
            str, tuple[str, str]
        ] = {}  # order id -> (user, Idempotency-Key), acknowledged after the copy
        for n in range(AFTER):
            answer = buy(live, http, f"late{n}", f"k-late{n}")
            assert answer.status_code == 201
            lost[answer.json()["id"]] = (f"late{n}", f"k-late{n}")
        paid_id = next(iter(lost))
        paid = http.post(f"/orders/{paid_id}/pay", headers=live.headers(lost[paid_id][0]))
        assert paid.status_code == 200 and paid.json()["status"] == "PAID"
        writer.drain()  # every acknowledged purchase is stored, and its sequence is PostgreSQL's mark

        # The server stands still meanwhile, so the process below is the first to meet this Redis.
        os.kill(live.served.pid, signal.SIGSTOP)
        try:
            stale_restart(live, tmp_path / "stale")
            lost_at = time.monotonic()
            # A process that never saw the lost grants: PostgreSQL's marks alone make it refuse.
            fresh = build(live.settings)
            try:
                refused = fresh.ledger.reserve(item_id=live.item_id, user_id="fresh", qty=1, request_id="f")
            finally:
                fresh.close()
        finally:
            os.kill(live.served.pid, signal.SIGCONT)
        assert refused.hold is None and refused.code is ErrorCode.LEDGER_BEHIND

        # The server that acknowledged them sells nothing from this Redis: 503 SALE_PAUSED until it
        # repaired the ledger by itself (on this purchase, or on its writer's look at the marks).
        tally, first_paused_s = Tally(), None

        def sells_again() -> bool:
            nonlocal first_paused_s
            answer = buy(live, http, f"after-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex)
            tally.note(answer)
            if answer.status_code == 503 and first_paused_s is None:
                first_paused_s = time.monotonic() - lost_at
            if answer.status_code == 201:  # sold after the rebuild: in the new epoch of the sequence
                assert live.platform.ledger.sequences(live.item_id)[0] > SEQUENCE_EPOCH, (
                    "sold from the stale Redis"
                )
            return answer.status_code == 201

        wait_until(sells_again, "the server repairs the ledger by itself and sells again")
        resumed_s = time.monotonic() - lost_at
        assert sum(tally.answers.values()) == tally.answers[503, "SALE_PAUSED"] + 1, tally.answers
        assert_only_honest_refusals(tally)

        # Every acknowledged key answers its own order again; the lost unpaid ones can be paid.
        for order_id, (user, key) in lost.items():
            replay = buy(live, http, user, key)
            assert replay.status_code == 200, replay.text
            assert replay.json()["id"] == order_id
        unpaid_id = list(lost)[1]
        paid = http.post(f"/orders/{unpaid_id}/pay", headers=live.headers(lost[unpaid_id][0]))
        assert paid.status_code == 200 and paid.json()["status"] == "PAID", paid.text

    reports = sorted((tmp_path / "serve").glob("lost-writes-*.json"))
    assert len(reports) == 1, reports
    report = json.loads(reports[0].read_text())
    assert report["repaired"] and report["clean_after"] and report["taken_away"] == 0
    assert {(a["order_id"], a["user_id"], a["what"]) for a in report["affected"]} == {
        (order_id, user, "restored") for order_id, (user, _) in lost.items()
    }
    with reports[0].with_suffix(".csv").open() as rows:
        assert {row["order_id"] for row in csv.DictReader(rows)} == set(lost)
    assert_invariants(live)
    print(
        f"\n[stale AOF, {AFTER} acknowledged purchases lost by Redis]"
        f" first 503 after {first_paused_s or 0:.2f} s,"
        f" selling again after {resumed_s:.2f} s (paused {report['paused_s']} s); {dict(tally.answers)}"
    )


def test_a_stale_redis_is_repaired_by_the_server_with_no_purchase_and_no_operator(
    live: Live, tmp_path: Path
) -> None:
    with live.http() as http:
        copy_aof(live, tmp_path / "stale")
        lost = {buy(live, http, f"late{n}", f"k-late{n}").json()["id"] for n in range(3)}
    order_writer_for(live.platform).drain()
    stale_restart(live, tmp_path / "stale")
    lost_at = time.monotonic()

    # Nobody buys or pays: the server's order writer compares Redis with PostgreSQL's marks.
    reports = tmp_path / "serve"
    wait_until(lambda: any(reports.glob("lost-writes-*.json")), "the server finds and repairs the loss")
    found_s = time.monotonic() - lost_at
    report = json.loads(next(reports.glob("lost-writes-*.json")).read_text())
    assert {a["order_id"] for a in report["affected"]} == lost
    assert {a["what"] for a in report["affected"]} == {"restored"}
    assert_invariants(live)
    print(f"\n[stale AOF, no traffic] repaired and reported {found_s:.2f} s after the restart")


def test_an_order_a_stale_redis_forgot_is_never_unknown_to_its_payer_and_pays_after_the_repair(
    live: Live, tmp_path: Path
) -> None:
    with live.http() as http:
        copy_aof(live, tmp_path / "stale")
        order_id = buy(live, http, "payer", "k-pay").json()["id"]
        order_writer_for(live.platform).drain()
        stale_restart(live, tmp_path / "stale")
        tally = Tally()

        def pays() -> bool:
            answer = http.post(f"/orders/{order_id}/pay", headers=live.headers("payer"))
            tally.note(answer)
            return answer.status_code == 200

        # The payment itself may be what finds the loss (UNKNOWN_HOLD of a stored order), or the
        # server's writer finds it first: either way the payer hears 503 until it is repaired.
        wait_until(pays, "the forgotten order is paid once the server repaired the ledger")
    assert set(tally.answers) <= {(503, "SALE_PAUSED"), (200, "")}, tally.answers
    assert tally.paused_without_retry_after == 0
    assert live.platform.orders.get(order_id).status.value == "PAID"
    assert_invariants(live)  # the refused attempts' charges were given back: the money nets


def running(pid: int) -> bool:
    """True while the process runs (a zombie waiting for its parent's wait() has stopped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def grant_lost_key_again(live: Live, user: str, key: str) -> str:
    """Grant `key` from a ledger client that knows no floor: a process that started before any mark
    reached PostgreSQL, or one on an older release. Return the new order id."""
    blind = redis_ledger_from_url(live.settings.redis_url, time.time)
    try:
        again = blind.reserve(item_id=live.item_id, user_id=user, qty=1, request_id=key)
    finally:
        blind.close()
    assert again.hold is not None and not again.replayed
    return again.hold.hold_id


def test_a_key_granted_twice_by_a_stale_redis_is_caught_by_the_order_writer_and_reported(
    live: Live, tmp_path: Path
) -> None:
    with live.http() as http:
        copy_aof(live, tmp_path / "stale")
        first = buy(live, http, "twice", "k-twice")
        assert first.status_code == 201
        order_writer_for(live.platform).drain()
        stale_restart(live, tmp_path / "stale")
        second = grant_lost_key_again(live, "twice", "k-twice")
        assert second != first.json()["id"]  # the ledger answered another order id for one key

        # The server's writer meets a second order at the sequence of PostgreSQL's mark: it repairs.
        reports = tmp_path / "serve"
        wait_until(lambda: any(reports.glob("lost-writes-*.csv")), "the server reports the repair")
        with next(reports.glob("lost-writes-*.csv")).open() as rows:
            affected = {(r["order_id"], r["user_id"], r["what"]) for r in csv.DictReader(rows)}
        assert affected == {(second, "twice", "dropped"), (first.json()["id"], "twice", "restored")}
        replay = buy(live, http, "twice", "k-twice")
        assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
    assert_invariants(live)


def test_reconcile_lists_a_key_granted_twice_and_exits_3(live: Live, tmp_path: Path) -> None:
    os.kill(live.served.pid, signal.SIGTERM)  # no server: its writer would repair before the command
    wait_until(lambda: not running(live.served.pid), "the server stops (SIGTERM is not instant)")
    orders = live.platform.orders
    copy_aof(live, tmp_path / "stale")
    first = orders.buy(Buy("twice", live.item_id, 1, "k-twice")).order.id
    order_writer_for(live.platform).drain()
    stale_restart(live, tmp_path / "stale")
    second = grant_lost_key_again(live, "twice", "k-twice")
    order_writer_for(live.platform).drain()  # the database keeps the first order of the key

    code, out = live.run("reconcile", "--report", str(tmp_path / "report.csv"), "--format", "csv")
    assert code == 3, out
    assert f"order {second} (user twice, item {live.item_id}): dropped" in out, out
    with (tmp_path / "report.csv").open() as rows:
        affected = {(r["order_id"], r["user_id"], r["what"]) for r in csv.DictReader(rows)}
    assert affected == {(second, "twice", "dropped"), (first, "twice", "restored")}
    replay = orders.buy(Buy("twice", live.item_id, 1, "k-twice"))
    assert replay.replayed and replay.order.id == first
    assert all(d.clean for d in Reconciler(orders).inspect())
