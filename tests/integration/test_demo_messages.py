"""The demo's 催付: every order left unpaid gets each reminder step in the file outbox (a checkout's
lines within the shopper's daily cap), and no other."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, select

from flashsale.demo import DemoOptions, run_demo
from flashsale.domain.cart import is_checkout_line
from flashsale.domain.orders import OrderStatus
from flashsale.messaging.channels.outbox import read_outbox
from flashsale.store.tables import OrderRow

SMALL = DemoOptions(seed=7, shoppers=600, concurrency=8, quota_scale=0.06)
STEPS = 3  # 5, 10 and 14 minutes: all before the 15-minute payment deadline


def test_the_demo_reminds_exactly_the_orders_left_unpaid_and_reports_the_counts(tmp_path: Path) -> None:
    report = run_demo(tmp_path, SMALL)
    engine = create_engine(f"sqlite:///{tmp_path / 'flashsale.db'}")
    try:
        with engine.connect() as db:
            expired = dict(
                db.execute(
                    select(OrderRow.id, OrderRow.request_id).where(OrderRow.status == OrderStatus.EXPIRED)
                ).all()
            )
    finally:
        engine.dispose()
    outbox = read_outbox(tmp_path / "outbox.jsonl")
    keys = [line["key"] for line in outbox]
    assert expired and len(keys) == len(set(keys))
    assert set(keys) <= {f"remind:{order}:{step}" for order in expired for step in range(1, STEPS + 1)}
    flash = {order for order, request_id in expired.items() if not is_checkout_line(request_id)}
    assert {k for k in keys if k.split(":")[1] in flash} == {
        f"remind:{order}:{step}" for order in flash for step in range(1, STEPS + 1)
    }
    # A walked-away checkout's lines are one shopper's orders: they share the daily cap, and each
    # line gets its first reminder before the cap bites (a basket has at most cap lines).
    lines = set(expired) - flash
    assert lines and all(f"remind:{order}:1" in keys for order in lines)
    assert report.messages["sent"] == len(keys)
    assert report.as_dict()["messages"] == report.messages
    assert all(line["channel"] == "im" and "¥" in line["body"] for line in outbox)
