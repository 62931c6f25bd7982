"""Hoarder control: shoppers who let holds expire again and again get fewer units, then none.

An unpaid hold locks a unit for the whole payment window; a shopper who holds and never pays, over
and over, keeps units from those who would pay. Each expiry the sweeper writes down is counted per
(campaign, shopper); the campaign's `HoarderPolicy` (domain/admission.py) turns the count into a
throttle (at most `throttled_limit` units of an item) or a block, checked before the ledger decides.
Counts live where every worker sees them: the ledger's Redis in scale-out (one HINCRBY per shopper
per sweep), a dict in process on the embedded default, where they are rebuilt from the stored
EXPIRED orders at start-up, as the ledger is.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import Protocol

from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flashsale.domain.admission import ItemAdmission
from flashsale.domain.errors import FlashSaleError
from flashsale.domain.orders import Order, OrderStatus
from flashsale.ledger.contract import Ledger
from flashsale.services.admission_policy import AdmissionPolicies
from flashsale.store.tables import ItemRow, OrderRow, SessionRow


class ExpiryCounts(Protocol):
    """How many holds each shopper let expire, per campaign."""

    def add(self, counts: Mapping[tuple[int, str], int]) -> None:
        """Add expiries by (campaign id, shopper)."""
        ...

    def count(self, campaign_id: int, shopper: str) -> int:
        """The shopper's expiries in the campaign."""
        ...


class MemoryExpiryCounts:
    """Counts in process (the embedded default)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[int, str]] = Counter()

    def add(self, counts: Mapping[tuple[int, str], int]) -> None:
        with self._lock:
            self._counts.update(counts)

    def count(self, campaign_id: int, shopper: str) -> int:
        return self._counts.get((campaign_id, shopper), 0)


class RedisExpiryCounts:
    """Counts in the ledger's Redis, one hash per campaign, shared by every worker."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = f"{prefix}:expiries:"

    def add(self, counts: Mapping[tuple[int, str], int]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for (campaign_id, shopper), n in counts.items():
            pipe.hincrby(f"{self._prefix}{campaign_id}", shopper, n)
        pipe.execute()

    def count(self, campaign_id: int, shopper: str) -> int:
        return int(self._client.hget(f"{self._prefix}{campaign_id}", shopper) or 0)


def stored_expiries(db: Session) -> dict[tuple[int, str], int]:
    """Count the stored EXPIRED orders by (campaign, shopper): what the counts were before a restart."""
    rows = db.execute(
        select(SessionRow.campaign_id, OrderRow.user_id, func.count())
        .join(ItemRow, OrderRow.item_id == ItemRow.id)
        .join(SessionRow, ItemRow.session_id == SessionRow.id)
        .where(OrderRow.status == OrderStatus.EXPIRED.value)
        .group_by(SessionRow.campaign_id, OrderRow.user_id)
    )
    return {(campaign_id, user_id): n for campaign_id, user_id, n in rows}


class HoarderControl:
    """Count expiries (an `OrderService` expiry listener) and refuse hoarders as their campaign says."""

    def __init__(self, counts: ExpiryCounts, policies: AdmissionPolicies, ledger: Ledger) -> None:
        self.counts = counts
        self._policies = policies
        self._ledger = ledger

    def expired(self, orders: list[Order]) -> None:
        """Count the orders the sweeper just wrote EXPIRED against their shoppers."""
        counts: Counter[tuple[int, str]] = Counter()
        for order in orders:
            policy = self._policies.policy(order.item_id)
            if policy is not None:
                counts[(policy.campaign_id, order.user_id)] += 1
        if counts:
            self.counts.add(counts)

    def check(self, policy: ItemAdmission, shopper: str, qty: int) -> None:
        """Refuse with HOARDER_BLOCKED or HOARDER_THROTTLED if the campaign's policy says so.

        A throttled shopper's units are counted by the ledger (held + sold of the item); two
        purchases of one throttled shopper racing each other may both pass this check, so the
        throttle is a soft cap where the item's per-user limit, kept by the ledger, is the hard one.
        """
        hoarder = policy.hoarder
        if not hoarder.active:
            return
        expiries = self.counts.count(policy.campaign_id, shopper)
        if expiries == 0:
            return
        used = self._ledger.used_by(policy.item_id, shopper)
        code = hoarder.verdict(expiries=expiries, used=used, qty=qty)
        if code is not None:
            raise FlashSaleError(code, f"{expiries} of your holds in this campaign expired unpaid")
