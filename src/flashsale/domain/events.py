"""Events raised on every state change of an order, written to the outbox (`order_events`) with the change."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class Event:
    order_id: str
    item_id: int
    user_id: str
    qty: int
    at: float

    @property
    def kind(self) -> str:
        return type(self).__name__

    def payload(self) -> dict[str, object]:
        """The event's fields by name. Every field is a plain value, so no deep copy (`asdict`) is needed."""
        return {name: getattr(self, name) for name in _field_names(type(self))}


_FIELD_NAMES: dict[type[Event], tuple[str, ...]] = {}


def _field_names(kind: type[Event]) -> tuple[str, ...]:
    """An event class's field names, looked up once: `fields()` costs more than the payload itself."""
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(kind))
    return names


@dataclass(frozen=True, slots=True)
class HoldPlaced(Event):
    expires_at: float
    total_cents: int


@dataclass(frozen=True, slots=True)
class OrderPaid(Event):
    payment_ref: str
    amount_cents: int


@dataclass(frozen=True, slots=True)
class OrderCancelled(Event):
    pass


@dataclass(frozen=True, slots=True)
class OrderExpired(Event):
    pass


@dataclass(frozen=True, slots=True)
class OrderRefunded(Event):
    amount_cents: int


@dataclass(frozen=True, slots=True)
class FreeOrderWon(Event):
    """The paid order took a winning rank of a free-order rule (domain/free_orders.py): rebate decided."""

    rule_id: int
    slot: int
    rebate_cents: int


@dataclass(frozen=True, slots=True)
class OrderRebated(Event):
    """A free order's rebate reached the provider."""

    rule_id: int
    slot: int
    amount_cents: int
