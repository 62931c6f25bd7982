"""The admin messaging routes: templates and previews, members and opt-outs, waves, dry-run, the log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.store.tables import MessageRow, TemplateRow, WaveRow
from tests.conftest import T0, Sale
from tests.integration.api_support import Api, assert_refused, open_api


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def count(platform: Platform, table: type) -> int:
    with platform.messaging.sessions() as db:
        return int(db.scalar(select(func.count()).select_from(table)) or 0)


def test_an_operator_writes_a_template_and_previews_it_in_the_shoppers_zone(api: Api) -> None:
    body = {"subject": "订单 {order_id}", "body": "{name}：{item} 应付 {amount}，{deadline} 前有效"}
    stored = api.client.put("/admin/messages/templates/remind_soft/zh-CN", json=body, headers=api.admin)
    assert stored.status_code == 200, stored.text
    shown = api.client.get(
        "/admin/messages/templates/remind_soft/zh-CN/preview",
        params={"tz": "Asia/Shanghai"},
        headers=api.admin,
    ).json()
    assert shown["subject"] == "订单 O-SAMPLE"
    assert shown["body"] == "张三：Phone X 应付 ¥3999.00，2026-11-11 18:15 前有效"  # T0 + 15 min, Shanghai
    names = {
        (t["name"], t["locale"])
        for t in api.client.get("/admin/messages/templates", headers=api.admin).json()
    }
    assert {("remind_soft", "zh-CN"), ("order_reminder", "en")} <= names


def test_bad_input_is_refused_with_a_code_and_changes_nothing(api: Api, sale: Sale) -> None:
    put = api.client.put
    assert_refused(
        put("/admin/messages/templates/x/zh-CN", json={"body": "{price}"}, headers=api.admin),
        422,
        "VALIDATION_ERROR",
    )
    assert_refused(
        put("/admin/messages/members/u1", json={"name": "A", "tz": "Mars/Base"}, headers=api.admin),
        422,
        "VALIDATION_ERROR",
    )
    wave = {
        "name": "w",
        "template": "order_reminder",
        "channel": "sms",
        "segment": "all",
        "send_at": T0.isoformat(),
    }
    assert_refused(
        api.client.post("/admin/messages/waves", json=wave, headers=api.admin), 422, "VALIDATION_ERROR"
    )
    future = {**wave, "send_at": "2026-11-11T20:00:00+08:00"}  # the 催付 text needs an order: not for a wave
    assert_refused(
        api.client.post("/admin/messages/waves", json=future, headers=api.admin), 422, "VALIDATION_ERROR"
    )
    missing = {**future, "template": "nothing_here"}
    assert_refused(
        api.client.post("/admin/messages/waves", json=missing, headers=api.admin), 404, "NOT_FOUND"
    )
    assert_refused(api.client.get("/admin/messages/waves/9/dry-run", headers=api.admin), 404, "NOT_FOUND")
    assert_refused(api.client.get("/admin/messages/waves", headers=api.shopper("u1")), 403, "FORBIDDEN")
    assert (count(api.platform, TemplateRow), count(api.platform, WaveRow)) == (0, 0)


def test_a_wave_is_scheduled_dry_run_cancelled_and_the_log_is_read(api: Api, sale: Sale) -> None:
    admin = api.admin
    api.client.put("/admin/messages/templates/launch/zh-CN", json={"body": "{name}，今晚开抢"}, headers=admin)
    for user_id in ("u1", "u2"):
        api.client.put(f"/admin/messages/members/{user_id}", json={"name": user_id.upper()}, headers=admin)
    assert api.client.put("/admin/messages/members/u2/opt-outs/im", headers=admin).status_code == 204
    body = {
        "name": "w",
        "template": "launch",
        "channel": "im",
        "segment": "all",
        "send_at": "2026-11-11T20:00+08:00",
    }
    wave = api.client.post("/admin/messages/waves", json=body, headers=admin).json()
    plan = api.client.get(f"/admin/messages/waves/{wave['id']}/dry-run", headers=admin).json()
    assert [(p["user_id"], p["outcome"], p["reason"]) for p in plan] == [
        ("u1", "send", None),
        ("u2", "drop", "opted_out"),
    ]
    assert plan[0]["body"] == "U1，今晚开抢"
    assert (
        api.client.post(f"/admin/messages/waves/{wave['id']}/cancel", headers=admin).json()["status"]
        == "cancelled"
    )
    assert_refused(
        api.client.post(f"/admin/messages/waves/{wave['id']}/cancel", headers=admin), 409, "CONFLICT"
    )
    api.clock.advance(3600)
    api.platform.message_dispatcher().run_once()
    assert count(api.platform, MessageRow) == 0  # a cancelled wave sends nothing
    again = api.client.post(
        "/admin/messages/waves", json={**body, "send_at": "2026-11-11T19:30+08:00"}, headers=admin
    )
    api.clock.advance(3600)
    api.platform.message_dispatcher().run_once()
    log = api.client.get("/admin/messages/log", params={"wave_id": again.json()["id"]}, headers=admin).json()
    assert log["counts"] == {"sent": 1, "suppressed:opted_out": 1}
    assert sorted((e["user_id"], e["outcome"]) for e in log["entries"]) == [
        ("u1", "sent"),
        ("u1", "started"),
        ("u2", "suppressed"),
    ]
