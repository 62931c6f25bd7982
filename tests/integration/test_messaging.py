"""催付 and waves through a real SMTP server: quiet hours, caps, opt-outs, paid orders, the dry-run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_of_hypothesis
from hypothesis import strategies as st
from sqlalchemy import select

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.messaging.dispatch import Dispatcher
from flashsale.messaging.service import Member
from flashsale.messaging.store import MessageStatus, Segment
from flashsale.messaging.templates import Template
from flashsale.services.orders import Buy
from flashsale.store.tables import MessageRow
from tests.conftest import T0, Sale
from tests.engines import POSTGRES, SQLITE
from tests.far_sides import Sink, smtp_sink
from tests.integration.coupon_support import open_wave

pytestmark = pytest.mark.engines(SQLITE, POSTGRES)

SHANGHAI = "Asia/Shanghai"  # T0 is 18:00 there: outside the rest hours
NEW_YORK = "America/New_York"  # T0 is 05:00 there: inside the 00:00–09:00 rest


@pytest.fixture
def sink() -> Iterator[Sink]:
    with smtp_sink() as running:
        yield running


@pytest.fixture
def settings(tmp_path, sink: Sink) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(
        data_dir=tmp_path,
        jwt_secret="test-jwt-secret-0123456789abcdef",
        admin_token="test-admin-token",
        payment_secret="test-payment-secret",
        messaging_smtp_url=f"smtp://127.0.0.1:{sink.port}",
        messaging_reminder_channel="email",
        messaging_reminder_steps="5,10",
        messaging_cap_per_day=2,
    )


@pytest.fixture
def sender(platform: Platform) -> Dispatcher:
    return platform.message_dispatcher()


def member(platform: Platform, user_id: str, tz: str = SHANGHAI, locale: str = "zh-CN") -> str:
    """Register a member reachable by email at <user_id>@example.com; return the address."""
    email = f"{user_id}@example.com"
    platform.messaging.put_member(Member(user_id, user_id.title(), email, None, locale, tz))
    return email


def buy(platform: Platform, user_id: str, item_id: int, key: str = "k1") -> str:
    return platform.orders.buy(Buy(user_id, item_id, 1, f"{user_id}-{key}")).order.id


def at_minute(clock: ManualClock, sender: Dispatcher, minutes: float) -> None:
    """Move the clock to T0 + `minutes` and run one sender pass."""
    clock.set(T0.timestamp() + minutes * 60)
    sender.run_once()


def statuses(platform: Platform) -> dict[str, tuple[str, str | None]]:
    with platform.messaging.sessions() as db:
        return {m.key: (m.status, m.reason) for m in db.scalars(select(MessageRow))}


def test_reminders_arrive_at_their_steps_and_stop_once_the_order_is_paid(
    platform: Platform, sale: Sale, clock: ManualClock, sender: Dispatcher, sink: Sink
) -> None:
    address = member(platform, "ann")
    order_id = buy(platform, "ann", sale.phone_id)
    at_minute(clock, sender, 4.9)
    assert sink.mails == []
    at_minute(clock, sender, 5)
    [mail] = sink.to(address)
    assert order_id in mail.subject
    assert "Phone X" in mail.body and "¥3999.00" in mail.body and "18:15" in mail.body  # deadline, local
    platform.orders.pay(order_id, "ann")
    at_minute(clock, sender, 10)
    assert len(sink.mails) == 1
    assert statuses(platform)[f"remind:{order_id}:2"] == (MessageStatus.CANCELLED, "OrderPaid")


def test_a_reminder_due_in_quiet_hours_that_would_land_after_expiry_is_dropped(
    platform: Platform, sale: Sale, clock: ManualClock, sender: Dispatcher, sink: Sink
) -> None:
    member(platform, "bob", tz=NEW_YORK)
    order_id = buy(platform, "bob", sale.phone_id)
    for minute in (5, 10, 20, 600):  # 09:00 in New York is 14:00 UTC, long after the order expired
        at_minute(clock, sender, minute)
    assert sink.mails == []
    assert statuses(platform)[f"remind:{order_id}:1"] == (MessageStatus.SUPPRESSED, "quiet_hours")


def test_no_member_gets_more_than_the_cap_across_orders(
    platform: Platform, sale: Sale, clock: ManualClock, sender: Dispatcher, sink: Sink
) -> None:
    address = member(platform, "cat")
    orders = [buy(platform, "cat", sale.phone_id), *(buy(platform, "cat", sale.earbuds_id, k) for k in "ab")]
    for minute in (5, 10, 15):
        at_minute(clock, sender, minute)
    assert len(sink.to(address)) == 2  # the cap; six reminders were due
    reasons = [s for k, s in statuses(platform).items() if k.split(":")[1] in orders]
    assert reasons.count((MessageStatus.SUPPRESSED, "cap")) == 4


def test_an_opted_out_member_gets_nothing_from_the_next_message_on(
    platform: Platform, sale: Sale, clock: ManualClock, sender: Dispatcher, sink: Sink
) -> None:
    never, later = member(platform, "dan"), member(platform, "eve")
    platform.messaging.opt_out("dan", "email")
    buy(platform, "dan", sale.phone_id)
    buy(platform, "eve", sale.phone_id)
    at_minute(clock, sender, 5)
    assert len(sink.to(later)) == 1
    platform.messaging.opt_out("eve", "email")
    at_minute(clock, sender, 10)
    assert sink.to(never) == [] and len(sink.to(later)) == 1
    assert sum(1 for s in statuses(platform).values() if s == (MessageStatus.SUPPRESSED, "opted_out")) == 3


def test_a_wave_reaches_exactly_its_segment_as_its_dry_run_said(
    platform: Platform, sale: Sale, clock: ManualClock, sender: Dispatcher, sink: Sink
) -> None:
    platform.messaging.put_template(
        Template("restock", "zh-CN", "{item} 补货", "{name}，您买过的 {item} 又开抢了")
    )
    for user_id, tz in (("fay", SHANGHAI), ("gus", NEW_YORK), ("hal", SHANGHAI), ("ivy", SHANGHAI)):
        member(platform, user_id, tz=tz)
    for user_id in ("fay", "gus", "hal"):
        platform.orders.pay(buy(platform, user_id, sale.phone_id), user_id)
    platform.orders.pay(buy(platform, "ivy", sale.earbuds_id), "ivy")  # bought something else
    platform.messaging.opt_out("hal", "email")
    wave = platform.messaging.schedule_wave(
        name="phone restock",
        template="restock",
        channel="email",
        segment=Segment.ITEM_BUYERS,
        item_id=sale.phone_id,
        send_at=T0 + timedelta(hours=1),  # 19:00 in Shanghai; 06:00 in New York: gus waits until 09:00
    )
    plan = {p.user_id: p for p in platform.messaging.dry_run(wave.id)}
    assert set(plan) == {"fay", "gus", "hal"}
    assert plan["hal"].outcome == "drop" and plan["hal"].reason == "opted_out"
    assert plan["gus"].at == T0 + timedelta(hours=4)
    clock.set((T0 + timedelta(hours=1)).timestamp())
    while sender.run_once().sent or clock() < (T0 + timedelta(hours=5)).timestamp():
        clock.advance(15 * 60)
    sent = {(m.to, m.subject, m.body) for m in sink.mails if "补货" in m.subject}
    assert sent == {(p.address, p.subject, p.body) for p in plan.values() if p.outcome == "send"}
    log = platform.messaging.deliveries(wave_id=wave.id)
    started = {d.user_id: d.at for d in log if d.outcome == "started"}
    assert started == {u: p.at for u, p in plan.items() if p.outcome == "send"}


WAVES, MEMBERS, SENDERS = 6, 10, 8


def test_senders_racing_on_one_queue_send_each_message_once_and_never_pass_the_cap(
    platform: Platform, clock: ManualClock, sink: Sink
) -> None:
    for n in range(WAVES):
        platform.messaging.put_template(Template(f"news{n}", "zh-CN", f"news {n}", "{name}，上新了"))
        platform.messaging.schedule_wave(
            name=f"news {n}",
            template=f"news{n}",
            channel="email",
            segment=Segment.ALL,
            send_at=T0 + timedelta(minutes=1),
        )
    addresses = [member(platform, f"m{n}") for n in range(MEMBERS)]
    clock.set((T0 + timedelta(minutes=1)).timestamp())

    def send_until_idle(n: int) -> None:
        sender = platform.message_dispatcher()
        sender.policy = replace(sender.policy, claim_batch=1 + n % 4)  # batches of 1 to 4 messages
        while sender.run_once().sent:
            pass

    with ThreadPoolExecutor(SENDERS) as pool:
        list(pool.map(send_until_idle, range(SENDERS)))
    per_address = Counter(m.to for m in sink.mails)
    assert per_address == {address: 2 for address in addresses}  # the cap, for every member
    assert len({m.message_id for m in sink.mails}) == len(sink.mails)  # no message twice
    final = Counter(status for status in statuses(platform).values())
    assert final == {
        (MessageStatus.SENT, None): 2 * MEMBERS,
        (MessageStatus.SUPPRESSED, "cap"): (WAVES - 2) * MEMBERS,
    }


def test_a_mail_the_server_defers_is_retried_after_its_backoff_and_every_step_is_logged(
    platform: Platform, sale: Sale, clock: ManualClock, sender: Dispatcher, sink: Sink
) -> None:
    address = member(platform, "joe")
    order_id = buy(platform, "joe", sale.phone_id)
    sink.answers.append("451 4.3.0 busy, try later")
    at_minute(clock, sender, 5)
    at_minute(clock, sender, 5.4)  # the retry waits 30 s
    assert sink.mails == []
    at_minute(clock, sender, 5.5)
    assert len(sink.to(address)) == 1
    log = platform.messaging.deliveries(order_id=order_id)
    assert [(d.attempt, d.outcome) for d in reversed(log)] == [
        (1, "started"),
        (1, "retry"),
        (2, "started"),
        (2, "sent"),
    ]


ZONES = ["Asia/Shanghai", "America/New_York", "Europe/London", "Asia/Kolkata", "Pacific/Auckland"]
PEOPLE = st.lists(st.tuples(st.sampled_from(ZONES), st.booleans(), st.booleans()), min_size=1, max_size=4)


@pytest.mark.engines(SQLITE)
@settings_of_hypothesis(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(people=PEOPLE, minute_of_day=st.integers(0, 24 * 60 - 1))
def test_whoever_a_wave_reaches_and_when_is_what_its_dry_run_said(
    platform: Platform,
    clock: ManualClock,
    sink: Sink,
    people: list[tuple[str, bool, bool]],
    minute_of_day: int,
) -> None:
    # Each example a day later than the last: the cap of one day never carries over.
    day = clock() - clock() % 86400 + 2 * 86400
    clock.set(day)
    tag = int(day // 86400)
    platform.messaging.put_template(Template(f"day{tag}", "zh-CN", f"day {tag}", "{name}，早上好"))
    for n, (tz, opted_out, has_email) in enumerate(people):
        user_id = f"d{tag}p{n}"
        email = f"{user_id}@example.com" if has_email else None
        platform.messaging.put_member(Member(user_id, user_id, email, None, "zh-CN", tz))
        if opted_out:
            platform.messaging.opt_out(user_id, "email")
    send_at = datetime.fromtimestamp(day + 60 + minute_of_day * 60, UTC)
    wave = platform.messaging.schedule_wave(
        name="morning", template=f"day{tag}", channel="email", segment=Segment.ALL, send_at=send_at
    )
    plan = platform.messaging.dry_run(wave.id)
    sender = platform.message_dispatcher()
    # Passes at the wave's time and at every time the plan names: the sender runs no later than due.
    for moment in sorted({send_at, *(p.at for p in plan if p.at is not None)}):
        clock.set(moment.timestamp())
        sender.run_once()
    sent = {(m.to, m.body) for m in sink.mails if m.subject == f"day {tag}"}
    assert sent == {(p.address, p.body) for p in plan if p.outcome == "send"}
    started = {
        d.user_id: d.at for d in platform.messaging.deliveries(wave_id=wave.id) if d.outcome == "started"
    }
    assert started == {p.user_id: p.at for p in plan if p.outcome == "send"}


def test_segments_are_every_member_or_the_members_who_paid(platform: Platform, sale: Sale) -> None:
    for user_id in ("kim", "lee", "max"):
        member(platform, user_id)
    platform.orders.pay(buy(platform, "kim", sale.phone_id), "kim")
    buy(platform, "lee", sale.earbuds_id)  # holds, never pays: not a buyer
    platform.messaging.put_template(Template("thanks", "zh-CN", "谢谢", "{name}，谢谢"))

    def reached(segment: Segment, item_id: int | None = None) -> set[str]:
        wave = platform.messaging.schedule_wave(
            name="w",
            template="thanks",
            channel="email",
            segment=segment,
            item_id=item_id,
            send_at=T0 + timedelta(hours=1),
        )
        return {p.user_id for p in platform.messaging.dry_run(wave.id)}

    assert reached(Segment.ALL) == {"kim", "lee", "max"}
    assert reached(Segment.BUYERS) == {"kim"}
    assert reached(Segment.ITEM_BUYERS, sale.earbuds_id) == set()


def test_category_buyers_and_unused_coupon_holders_get_the_wave_and_no_one_else(
    platform: Platform, sale: Sale, clock: ManualClock, sender: Dispatcher, sink: Sink
) -> None:
    """Buyers of a product category, and holders of a coupon they have not used, as the dry-run said."""
    products = {p.sku: p.id for p in platform.catalog_views.list_products()}
    platform.catalog.update_product(products["PHONE-X"], category="phones")
    platform.catalog.update_product(products["BUDS-2"], category="audio")
    assert {p.category for p in platform.catalog_views.list_products()} == {"phones", "audio"}
    for user_id in ("ann", "bo", "cy", "dee"):
        member(platform, user_id)
    platform.orders.pay(buy(platform, "ann", sale.phone_id), "ann")
    platform.orders.pay(buy(platform, "bo", sale.earbuds_id), "bo")
    buy(platform, "cy", sale.phone_id)  # holds a phone, never pays: not a buyer
    coupon_wave = open_wave(platform, total=10)
    wave_id = coupon_wave.wave.id
    held = {u: platform.coupons.claim(user_id=u, wave_id=wave_id, request_id="c1") for u in ("bo", "cy")}
    dee = platform.coupons.claim(user_id="dee", wave_id=wave_id, request_id="c1")
    used = dee.coupon.coupon_id
    platform.coupons.redeem(user_id="dee", coupon_id=used, order_id="o-dee", discount_cents=3_000)
    assert all(not c.replayed for c in held.values())
    platform.messaging.put_template(Template("nudge", "zh-CN", "别忘了", "{name}，来看看"))

    def wave(segment: Segment, **target: object) -> int:
        return platform.messaging.schedule_wave(
            name=segment.value, template="nudge", channel="email", segment=segment,
            send_at=T0 + timedelta(hours=1), **target,  # type: ignore[arg-type]
        ).id  # fmt: skip

    phones = wave(Segment.CATEGORY_BUYERS, category="phones")
    audio = wave(Segment.CATEGORY_BUYERS, category="audio")
    holders = wave(Segment.COUPON_HOLDERS, coupon_template_id=coupon_wave.wave.template_id)
    plans = {w: {p.user_id: p for p in platform.messaging.dry_run(w)} for w in (phones, audio, holders)}
    reached = {w: set(plan) for w, plan in plans.items()}
    assert reached == {phones: {"ann"}, audio: {"bo"}, holders: {"bo", "cy"}}
    clock.set((T0 + timedelta(hours=1)).timestamp())
    while sender.run_once().sent:
        clock.advance(60)
    sent = Counter(m.to for m in sink.mails if m.subject == "别忘了")
    planned = Counter(p.address for plan in plans.values() for p in plan.values() if p.outcome == "send")
    assert sent == planned and sum(sent.values()) == 4  # bo gets both of his waves (the cap is 2 a day)


@pytest.mark.parametrize(
    ("segment", "target"),
    [
        (Segment.CATEGORY_BUYERS, {}),
        (Segment.COUPON_HOLDERS, {"category": "phones"}),
        (Segment.ALL, {"coupon_template_id": 1}),
        (Segment.ITEM_BUYERS, {"item_id": 1, "category": "phones"}),
    ],
)
def test_a_wave_without_its_segments_target_or_with_another_is_refused(
    platform: Platform, segment: Segment, target: dict[str, object]
) -> None:
    platform.messaging.put_template(Template("nudge", "zh-CN", "别忘了", "{name}，来看看"))
    with pytest.raises(FlashSaleError) as refused:
        platform.messaging.schedule_wave(
            name="w", template="nudge", channel="email", segment=segment,
            send_at=T0 + timedelta(hours=1), **target,  # type: ignore[arg-type]
        )  # fmt: skip
    assert refused.value.code is ErrorCode.VALIDATION_ERROR
    assert platform.messaging.waves() == []
