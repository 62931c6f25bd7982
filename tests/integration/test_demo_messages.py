"""The demo's 催付: every order left unpaid gets each reminder step in the file outbox, and no other."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, select

from flashsale.demo import DemoOptions, run_demo
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
            expired = set(db.scalars(select(OrderRow.id).where(OrderRow.status == OrderStatus.EXPIRED)))
    finally:
        engine.dispose()
    outbox = read_outbox(tmp_path / "outbox.jsonl")
    keys = [line["key"] for line in outbox]
    assert expired and len(keys) == len(set(keys))
    assert set(keys) == {f"remind:{order}:{step}" for order in expired for step in range(1, STEPS + 1)}
    assert report.messages["sent"] == len(keys)
    assert report.as_dict()["messages"] == report.messages
    assert all(line["channel"] == "im" and "¥" in line["body"] for line in outbox)
