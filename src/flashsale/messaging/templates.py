"""Message templates: per-locale text with named placeholders, rendered from a message's facts. Pure."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flashsale.domain.errors import ErrorCode, FlashSaleError

DEFAULT_LOCALE = "zh-CN"
REMINDER = "order_reminder"  # the template 催付 reminders use
ORDER_FACTS = frozenset({"name", "order_id", "item", "amount", "deadline"})
MEMBER_FACTS = frozenset({"name"})  # what a wave to a segment knows of each member
MAX_TEXT = 4000


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    locale: str
    subject: str
    body: str

    def placeholders(self) -> frozenset[str]:
        """Return the names used as `{name}` in the subject and body."""
        return placeholders_of(self.subject) | placeholders_of(self.body)


@dataclass(frozen=True, slots=True)
class Facts:
    """What a message says about its shopper and order; None where the message has no order."""

    name: str
    tz: ZoneInfo
    order_id: str | None = None
    item: str | None = None
    amount_cents: int | None = None
    deadline: float | None = None  # epoch seconds the order can be paid until

    def values(self) -> dict[str, str]:
        """Return the placeholders this message can fill (money in yuan, times in the shopper's zone)."""
        values = {"name": self.name}
        if self.order_id is not None:
            values["order_id"] = self.order_id
        if self.item is not None:
            values["item"] = self.item
        if self.amount_cents is not None:
            values["amount"] = yuan(self.amount_cents)
        if self.deadline is not None:
            values["deadline"] = datetime.fromtimestamp(self.deadline, self.tz).strftime("%Y-%m-%d %H:%M")
        return values


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    body: str


def yuan(cents: int) -> str:
    """Format integer cents as yuan: 399900 -> "¥3999.00"."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}¥{whole}.{part:02d}"


def placeholders_of(text: str) -> frozenset[str]:
    """Return the `{name}` fields of `text`; refuse a malformed or positional/formatted field."""
    try:
        fields = [
            (name, spec, conv) for _, name, spec, conv in string.Formatter().parse(text) if name is not None
        ]
    except ValueError as exc:
        raise FlashSaleError(ErrorCode.VALIDATION_ERROR, f"bad template text: {exc}") from None
    for name, spec, conv in fields:
        if not name.isidentifier() or spec or conv:
            raise FlashSaleError(ErrorCode.VALIDATION_ERROR, f"placeholder {{{name}}} must be a plain name")
    return frozenset(name for name, _, _ in fields)


def check_template(template: Template, allowed: frozenset[str] = ORDER_FACTS) -> Template:
    """Return `template` if its text is well formed and uses only `allowed` placeholders, else refuse."""
    if not template.body.strip() or len(template.body) > MAX_TEXT or len(template.subject) > 200:
        raise FlashSaleError(
            ErrorCode.VALIDATION_ERROR, "a template needs a body (≤ 4000) and a subject ≤ 200"
        )
    unknown = template.placeholders() - allowed
    if unknown:
        names = ", ".join(sorted(unknown))
        raise FlashSaleError(
            ErrorCode.VALIDATION_ERROR,
            f"unknown placeholders: {names}; allowed: {', '.join(sorted(allowed))}",
        )
    return template


def render(template: Template, facts: Facts) -> Rendered:
    """Fill the template's placeholders from `facts`; refuse one the message has no value for."""
    values = facts.values()
    missing = template.placeholders() - values.keys()
    if missing:
        raise FlashSaleError(
            ErrorCode.VALIDATION_ERROR, f"template {template.name} needs {', '.join(sorted(missing))}"
        )
    return Rendered(template.subject.format_map(values), template.body.format_map(values))


def pick(by_locale: Mapping[str, Template], locale: str) -> Template | None:
    """Choose the text for `locale`: exact, then same language, then the default locale, then any."""
    if locale in by_locale:
        return by_locale[locale]
    language = locale.split("-")[0]
    same = sorted(k for k in by_locale if k.split("-")[0] == language)
    for key in (*same, DEFAULT_LOCALE):
        if key in by_locale:
            return by_locale[key]
    return next(iter(sorted(by_locale.items())), (None, None))[1]


BUILT_IN: tuple[Template, ...] = (
    Template(
        REMINDER,
        "zh-CN",
        "订单 {order_id} 待支付",
        "{name}，您抢到的「{item}」还未付款，应付 {amount}，请在 {deadline} 前完成支付，逾期订单自动取消。",
    ),
    Template(
        REMINDER,
        "en",
        "Order {order_id} is waiting for payment",
        "{name}, your {item} is reserved: pay {amount} before {deadline} or the order is cancelled.",
    ),
)
