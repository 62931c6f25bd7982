"""Money rules: what an order's payments must net to, and how long a payment attempt may run.

Pure: the services read the journal and the attempts, these functions judge them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from flashsale.domain.orders import OrderStatus

# A pay request that has not finished this long after it started is taken to have died (a
# process killed mid-charge); another request may then take over the order's single charge slot.
ATTEMPT_LEASE_S = 60.0


class AttemptStatus(StrEnum):
    PENDING = "pending"  # charging now: no other attempt may charge the same order
    DONE = "done"  # the charge settled the order (or found it paid)
    FAILED = "failed"  # refused with a stable code; a replay of its key refuses the same way
    ABANDONED = "abandoned"  # died or hit a transient error; its key may be retried


def attempt_is_stale(started_at: float, now: float, lease_s: float = ATTEMPT_LEASE_S) -> bool:
    """True when a pending attempt has outlived its lease and may be taken over."""
    return now - started_at >= lease_s


def expected_net_cents(status: OrderStatus, total_cents: int, rebate_cents: int = 0) -> int:
    """What charges − refunds − rebates must come to for an order in `status`.

    A paid order keeps its price less the rebate it won (a free order, domain/free_orders.py);
    any other order keeps nothing.
    """
    return total_cents - rebate_cents if status is OrderStatus.PAID else 0


@dataclass(frozen=True, slots=True)
class OrderMoney:
    """One order's journal summed up: done charges, refunds and rebates, those decided but not yet sent,
    and the rebate the order won (what its rebates must come to)."""

    order_id: str
    status: OrderStatus
    total_cents: int
    charged_cents: int
    refunded_cents: int
    pending_refund_cents: int = 0
    rebated_cents: int = 0
    pending_rebate_cents: int = 0
    won_rebate_cents: int = 0

    @property
    def net_cents(self) -> int:
        return self.charged_cents - self.refunded_cents - self.rebated_cents

    @property
    def expected_cents(self) -> int:
        return expected_net_cents(self.status, self.total_cents, self.won_rebate_cents)

    def problem(self) -> str | None:
        """Say what is wrong with this order's money, or None when it nets to what its status says."""
        if self.pending_refund_cents:
            return f"refund of {self.pending_refund_cents} decided but not sent"
        if self.pending_rebate_cents:
            return f"rebate of {self.pending_rebate_cents} decided but not sent"
        if self.rebated_cents != self.won_rebate_cents:
            return f"rebated {self.rebated_cents}, the order won {self.won_rebate_cents}"
        if self.net_cents != self.expected_cents:
            return f"journal nets {self.net_cents}, a {self.status} order needs {self.expected_cents}"
        return None


@dataclass(frozen=True, slots=True)
class Payment:
    """One journal entry: a charge, or the refund of one (`provider_ref` names the charge either way)."""

    id: int
    order_id: str
    provider: str
    provider_ref: str
    amount_cents: int
    kind: str  # charge | refund | rebate (a free order's money back, part or all of the charge)
    status: str  # done | pending (a refund or rebate decided, not yet sent)
    refund_ref: str | None
    created_at: datetime
