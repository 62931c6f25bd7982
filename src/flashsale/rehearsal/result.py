"""What a rehearsal found: latency from intended send times, errors by code, and the books afterwards."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from flashsale.demo.shop import Tally
from flashsale.domain.errors import ErrorCode
from flashsale.domain.stock_audit import oversold, undersold
from flashsale.rehearsal.openloop import OK, LatencySummary, Sample, outcomes, timeline
from flashsale.rehearsal.operator import ItemBooks

# Answers the platform gives on purpose (sold out, limits, rate limits, a paused sale) are errors
# by code; anything else that is not a success (a timeout, a reset, a 5xx) is a fault.
DELIBERATE = frozenset(code.value for code in ErrorCode) - {ErrorCode.INTERNAL_ERROR.value}

DEFINITIONS = {
    "latency": "from the request's intended send time (its shopper's scheduled arrival, or the moment"
    " the shopper acted on the previous answer) to its answer: queueing in the client, the network"
    " and the server all count",
    "throughput": "answers per second, from the first scheduled arrival to the last answer",
    "oversell": "Σ items max(0, sold + held − quota) in the ledger or the stored orders (the larger),"
    " plus units shoppers hold or bought beyond the per-user limit",
    "undersell": "Σ items of units the ledger lost: max(0, quota − available − held − sold). Units"
    " freed by cancellations after the last arrival may stay available: that is the traffic",
    "faults": "answers that are neither a success nor a refusal code of the platform's own"
    " (timeouts, resets, 5xx, INTERNAL_ERROR)",
}


@dataclass(frozen=True, slots=True)
class ItemResult:
    item_id: int
    source_item_id: int
    name: str
    books: ItemBooks
    oversell: int
    undersell: int

    @classmethod
    def of(cls, books: ItemBooks, *, source_item_id: int, name: str) -> ItemResult:
        """Judge one item's books."""
        return cls(
            item_id=books.item_id,
            source_item_id=source_item_id,
            name=name,
            books=books,
            oversell=oversold(
                quota=books.quota,
                sold=books.sold,
                held=books.held,
                db_sold=books.db_sold,
                db_held=books.db_held,
                over_limit=books.over_limit,
            ),
            undersell=undersold(
                quota=books.quota, available=books.available, held=books.held, sold=books.sold, unserved=0
            ),
        )


@dataclass(frozen=True, slots=True)
class RehearsalResult:
    campaign_id: int
    copy_campaign_id: int
    url: str
    load: float
    seed: int
    started_at: str  # ISO 8601, UTC: the first scheduled arrival
    shoppers: int
    duration_s: float  # first scheduled arrival to the last answer
    samples: tuple[Sample, ...]
    tally: Tally
    items: tuple[ItemResult, ...]

    @property
    def latency(self) -> LatencySummary:
        return LatencySummary.of(self.samples)

    @property
    def throughput_rps(self) -> float:
        return round(len(self.samples) / self.duration_s, 1) if self.duration_s > 0 else 0.0

    @property
    def errors(self) -> dict[str, int]:
        return {k: n for k, n in outcomes(self.samples).items() if k != OK}

    @property
    def faults(self) -> int:
        return sum(n for k, n in self.errors.items() if k not in DELIBERATE)

    @property
    def oversell(self) -> int:
        return sum(i.oversell for i in self.items)

    @property
    def undersell(self) -> int:
        return sum(i.undersell for i in self.items)

    @property
    def held(self) -> bool:
        """True when the sale held: no oversell or undersell, the books agree, no fault, every retry
        replayed and no double click made two orders."""
        return (
            self.oversell == 0
            and self.undersell == 0
            and all(i.books.agrees for i in self.items)
            and self.faults == 0
            and self.tally.duplicate_orders == 0
            and not self.tally.failures
        )

    def as_dict(self) -> dict[str, Any]:
        """The result as plain JSON-ready data (what `rehearsal-<copy>.json` holds)."""
        kinds = sorted({s.kind for s in self.samples})
        tally = self.tally
        return {
            "campaign_id": self.campaign_id,
            "copy_campaign_id": self.copy_campaign_id,
            "url": self.url,
            "load": self.load,
            "seed": self.seed,
            "started_at": self.started_at,
            "shoppers": self.shoppers,
            "requests": len(self.samples),
            "duration_s": round(self.duration_s, 3),
            "throughput_rps": self.throughput_rps,
            "latency": asdict(self.latency),
            "latency_by_kind": {
                k: asdict(LatencySummary.of([s for s in self.samples if s.kind == k])) for k in kinds
            },
            "timeline": timeline(self.samples),
            "errors": self.errors,
            "faults": self.faults,
            "orders": tally.new_orders,
            "replays": tally.replays,
            "payments": tally.payments,
            "cancellations": tally.cancellations,
            "duplicate_orders": tally.duplicate_orders,
            "failures": dict(sorted(tally.failures.items())),
            "items": [
                {
                    **asdict(i.books),
                    "source_item_id": i.source_item_id,
                    "name": i.name,
                    "ledger_agrees_with_db": i.books.agrees,
                    "oversell": i.oversell,
                    "undersell": i.undersell,
                }
                for i in self.items
            ],
            "oversell": self.oversell,
            "undersell": self.undersell,
            "held": self.held,
            "definitions": DEFINITIONS,
        }
