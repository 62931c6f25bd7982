"""Operator routes for messages: templates and previews, member contacts and opt-outs, waves, dry-runs,
the delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from flashsale.api.deps import PathId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import Category, Moment, ZoneName
from flashsale.messaging.service import Member
from flashsale.messaging.store import Segment
from flashsale.messaging.templates import Template

router = APIRouter(prefix="/messages", tags=["admin: messages"])

TemplateName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
Locale = Annotated[str, Field(min_length=2, max_length=16, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]
MemberId = Annotated[str, Path(min_length=1, max_length=64)]
Channel = Literal["email", "sms", "im", "webhook"]


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: Annotated[str, Field(max_length=200)] = ""
    body: Annotated[str, Field(min_length=1, max_length=4000)]


class TemplateOut(Out):
    name: str
    locale: str
    subject: str
    body: str


class PreviewOut(Out):
    subject: str
    body: str


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200)]
    email: Annotated[str | None, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")] = None
    phone: Annotated[str | None, Field(max_length=32, pattern=r"^\+?[0-9 -]{3,31}$")] = None
    locale: Locale = "zh-CN"
    tz: ZoneName = "Asia/Shanghai"


class MemberOut(MemberIn):
    model_config = ConfigDict(from_attributes=True)
    user_id: str


class WaveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200)]
    template: TemplateName
    channel: Channel
    segment: Segment
    item_id: Annotated[int | None, Field(ge=1, le=2**31 - 1)] = None  # item_buyers
    category: Category | None = None  # category_buyers
    coupon_template_id: Annotated[int | None, Field(ge=1, le=2**31 - 1)] = None  # coupon_holders
    send_at: Moment


class WaveOut(Out):
    id: int
    name: str
    template: str
    channel: str
    segment: str
    item_id: int | None
    category: str | None
    coupon_template_id: int | None
    send_at: datetime
    expires_at: datetime
    status: str


class PlannedOut(Out):
    user_id: str
    channel: str
    outcome: str
    at: datetime | None
    reason: str | None
    address: str | None
    subject: str | None
    body: str | None


class DeliveryOut(Out):
    message_id: int
    key: str
    user_id: str
    channel: str
    status: str
    attempt: int
    at: datetime
    outcome: str
    detail: str


class LogOut(BaseModel):
    counts: dict[str, int]
    entries: list[DeliveryOut]


@router.get("/templates")
def list_templates(platform: PlatformDep) -> list[TemplateOut]:
    """List every template text, the built-in 催付 ones included."""
    return [TemplateOut.model_validate(t) for t in platform.messaging.templates()]


@router.put("/templates/{name}/{locale}")
def put_template(name: TemplateName, locale: Locale, body: TemplateIn, platform: PlatformDep) -> TemplateOut:
    """Store the text of a template in one locale; unknown placeholders are refused (422)."""
    stored = platform.messaging.put_template(Template(name, locale, body.subject, body.body))
    return TemplateOut.model_validate(stored)


@router.get("/templates/{name}/{locale}/preview", responses=error_responses(404))
def preview_template(
    name: TemplateName,
    locale: Locale,
    platform: PlatformDep,
    tz: Annotated[ZoneName | None, Query()] = None,
) -> PreviewOut:
    """Render a template with sample facts as a shopper in `locale` and `tz` would read it."""
    return PreviewOut.model_validate(platform.messaging.preview(name, locale, tz))


@router.put("/members/{user_id}")
def put_member(user_id: MemberId, body: MemberIn, platform: PlatformDep) -> MemberOut:
    """Store how to reach a member; their time zone decides their quiet hours."""
    stored = platform.messaging.put_member(
        Member(user_id, body.name, body.email, body.phone, body.locale, body.tz)
    )
    return MemberOut.model_validate(stored)


@router.put("/members/{user_id}/opt-outs/{channel}", status_code=204)
def opt_out(user_id: MemberId, channel: Channel, platform: PlatformDep) -> None:
    """Opt a member out of a channel; no message goes to them on it from the next one on."""
    platform.messaging.opt_out(user_id, channel)


@router.delete("/members/{user_id}/opt-outs/{channel}", status_code=204)
def opt_in(user_id: MemberId, channel: Channel, platform: PlatformDep) -> None:
    """Withdraw a member's opt-out of a channel."""
    platform.messaging.opt_out(user_id, channel, out=False)


@router.post("/waves", status_code=201, responses=error_responses(404))
def schedule_wave(body: WaveIn, platform: PlatformDep) -> WaveOut:
    """Schedule a wave of a template to a segment on a channel, at a future time.

    The segment's target goes with it: `item_id` for item_buyers, `category` for category_buyers
    (buyers of any item of a product in that category), `coupon_template_id` for coupon_holders
    (members holding a coupon of that template they have not used). Members are taken at release.
    """
    wave = platform.messaging.schedule_wave(
        name=body.name,
        template=body.template,
        channel=body.channel,
        segment=body.segment,
        send_at=body.send_at,
        item_id=body.item_id,
        category=body.category,
        coupon_template_id=body.coupon_template_id,
    )
    return WaveOut.model_validate(wave)


@router.get("/waves")
def list_waves(platform: PlatformDep) -> list[WaveOut]:
    """List the waves, by send time."""
    return [WaveOut.model_validate(w) for w in platform.messaging.waves()]


@router.post("/waves/{wave_id}/cancel", responses=error_responses(404, 409))
def cancel_wave(wave_id: PathId, platform: PlatformDep) -> WaveOut:
    """Cancel a wave that has not gone out yet."""
    return WaveOut.model_validate(platform.messaging.cancel_wave(wave_id))


@router.get("/waves/{wave_id}/dry-run", responses=error_responses(404))
def dry_run(wave_id: PathId, platform: PlatformDep) -> list[PlannedOut]:
    """Who the wave would reach, with what text, and when, or why not; sends nothing."""
    return [PlannedOut.model_validate(p) for p in platform.messaging.dry_run(wave_id)]


@router.get("/log")
def delivery_log(
    platform: PlatformDep,
    user_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    order_id: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    wave_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> LogOut:
    """The delivery log, newest first, of a member, an order or a wave; and messages counted by outcome."""
    entries = platform.messaging.deliveries(user_id=user_id, order_id=order_id, wave_id=wave_id, limit=limit)
    return LogOut(
        counts=platform.messaging.counts(), entries=[DeliveryOut.model_validate(d) for d in entries]
    )
