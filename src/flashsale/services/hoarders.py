"""Hoarder control: shoppers who let holds expire again and again get fewer units, then none.

An unpaid hold locks a unit for the whole payment window; a shopper who holds and never pays, over
and over, or cancels and buys again to keep a unit locked, keeps units from those who would pay.
Each expiry the sweeper writes down and each cancellation is counted per (campaign, shopper); the
campaign's `HoarderPolicy` (domain/admission.py) turns the counts into a throttle (at most
`throttled_limit` units of an item) or a block, checked before the ledger decides. A throttled
shopper's new holds may also get a shorter payment window (`payment_window_s`: the ledger brings
the hold's deadline forward, `Ledger.shorten`), so a unit they will not pay for is back on sale
sooner. Counts live where every worker sees them: the ledger's Redis in scale-out (one HINCRBY per
shopper per closing), a dict in process on the embedded default, where they are rebuilt from the
stored EXPIRED and CANCELLED orders at start-up, as the ledger is.
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

EXPIRED, CANCELLED = OrderStatus.EXPIRED.value, OrderStatus.CANCELLED.value
Key = tuple[int, str, str]  # (campaign id, shopper, EXPIRED | CANCELLED)


class HoardCounts(Protocol):
    """How many holds each shopper let expire, and cancelled, per campaign."""

    def add(self, counts: Mapping[Key, int]) -> None:
        """Add closings by (campaign id, shopper, EXPIRED or CANCELLED)."""
        ...

    def count(self, campaign_id: int, shopper: str) -> tuple[int, int]:
        """The shopper's (expiries, cancellations) in the campaign."""
        ...


class MemoryHoardCounts:
    """Counts in process (the embedded default)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[Key] = Counter()

    def add(self, counts: Mapping[Key, int]) -> None:
        with self._lock:
            self._counts.update(counts)

    def count(self, campaign_id: int, shopper: str) -> tuple[int, int]:
        get = self._counts.get
        return get((campaign_id, shopper, EXPIRED), 0), get((campaign_id, shopper, CANCELLED), 0)


class RedisHoardCounts:
    """Counts in the ledger's Redis: a hash per campaign, a field per `STATUS:shopper`; every worker."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = f"{prefix}:hoard:"

    def add(self, counts: Mapping[Key, int]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for (campaign_id, shopper, status), n in counts.items():
            pipe.hincrby(f"{self._prefix}{campaign_id}", f"{status}:{shopper}", n)
        pipe.execute()

    def count(self, campaign_id: int, shopper: str) -> tuple[int, int]:
        fields = (f"{EXPIRED}:{shopper}", f"{CANCELLED}:{shopper}")
        expired, cancelled = self._client.hmget(f"{self._prefix}{campaign_id}", fields)
        return int(expired or 0), int(cancelled or 0)


def stored_closings(db: Session) -> dict[Key, int]:
    """Count the stored EXPIRED and CANCELLED orders by (campaign, shopper, status): the counts a restart
    starts from."""
    rows = db.execute(
        select(SessionRow.campaign_id, OrderRow.user_id, OrderRow.status, func.count())
        .join(ItemRow, OrderRow.item_id == ItemRow.id)
        .join(SessionRow, ItemRow.session_id == SessionRow.id)
        .where(OrderRow.status.in_((EXPIRED, CANCELLED)))
        .group_by(SessionRow.campaign_id, OrderRow.user_id, OrderRow.status)
    )
    return {(campaign_id, user_id, status): n for campaign_id, user_id, status, n in rows}


class HoarderControl:
    """Count closings (an `OrderService` closed-order listener) and refuse hoarders as their campaign says."""

    def __init__(self, counts: HoardCounts, policies: AdmissionPolicies, ledger: Ledger) -> None:
        self.counts = counts
        self._policies = policies
        self._ledger = ledger

    def closed(self, orders: list[Order]) -> None:
        """Count the orders just written EXPIRED or CANCELLED against their shoppers."""
        counts: Counter[Key] = Counter()
        for order in orders:
            policy = self._policies.policy(order.item_id)
            if policy is not None and order.status.value in (EXPIRED, CANCELLED):
                counts[(policy.campaign_id, order.user_id, order.status.value)] += 1
        if counts:
            self.counts.add(counts)

    def check(self, policy: ItemAdmission, shopper: str, qty: int) -> int | None:
        """Refuse with HOARDER_BLOCKED or HOARDER_THROTTLED if the campaign's policy says so; else return
        the shorter payment window a throttled shopper's new hold gets, if the policy names one.

        A throttled shopper's units are counted by the ledger (held + sold of the item); two
        purchases of one throttled shopper racing each other may both pass this check, so the
        throttle is a soft cap where the item's per-user limit, kept by the ledger, is the hard one.
        """
        hoarder = policy.hoarder
        if not hoarder.active:
            return None
        expiries, cancels = self.counts.count(policy.campaign_id, shopper)
        if expiries == 0 and cancels == 0:
            return None
        used = self._ledger.used_by(policy.item_id, shopper)
        code = hoarder.verdict(expiries=expiries, cancels=cancels, used=used, qty=qty)
        if code is not None:
            raise FlashSaleError(
                code, f"in this campaign {expiries} of your holds expired unpaid and you cancelled {cancels}"
            )
        return hoarder.hold_ttl_s(expiries)
