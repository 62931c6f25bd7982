"""Prometheus metrics: `GET /metrics` in the text format, from one registry per app.

Counted as things happen (cheap, on the request path):
- `flashsale_purchases_total{outcome}`: purchase decisions; outcome `created`, `replayed`, the
  refusal's code (`SOLD_OUT`, `LIMIT_EXCEEDED`, …), `error` (the store or the ledger failed) or
  `cancelled` (the server stopped before the answer came).
- `flashsale_purchase_decision_seconds`: how long the route waited for its decision (batching, the
  ledger, and on the embedded default the group commit).
- `flashsale_http_request_duration_seconds{method,route}` and `flashsale_http_responses_total{method,
  route,status}`, by route template (`/orders/{order_id}`), never by raw path; a method outside
  HTTP's own is counted as `other`.
Read at scrape time, in a thread of the registry's own (so a slow store or Redis blocks neither the
event loop nor the buy path's threads, and concurrent scrapes take turns):
- `flashsale_stock_{quota,available,sold}{item_id}` and `flashsale_holds_live{item_id}` (units
  held, unpaid) from the ledger, for every item of the catalogue; `flashsale_ledger_conserved`
  is 0 for an item whose counters do not add up to its quota (drift for `flashsale reconcile`);
  `flashsale_sale_paused_seconds{item_id}`: what is left of a pause lease (a repair under way,
  shoppers hear 503), 0 when the item is on sale;
- `flashsale_orders_expired_total`: orders the store has marked EXPIRED;
- Redis ledger only: `flashsale_order_writer_lag` (purchases no order writer has read) and
  `flashsale_order_writer_pending` (read, not yet committed);
- `flashsale_scrape_source_up{source}`: 0 when a source could not be read, whose metrics are then
  missing from this scrape rather than wrong.
With `flashsale serve --workers N` every worker counts into files under PROMETHEUS_MULTIPROC_DIR
(prometheus-client's multi-process mode, set up by `serve`), and a scrape, whichever worker answers
it, adds up every worker's counters and histograms.
Reported by whoever runs a reconciliation in this process: `flashsale_reconcile_drift{kind}` and
`flashsale_reconcile_pauses_total`. `flashsale reconcile` runs in a process of its own today, which
prints its report instead, so on `flashsale serve` these have no samples (drift) or stay 0 (pauses).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from flashsale.api.health import writer_backlog
from flashsale.bootstrap import Platform
from flashsale.domain.orders import OrderStatus
from flashsale.logs import fields
from flashsale.services.order_search import OrderFilter
from flashsale.services.reconcile import ReconcileReport

log = logging.getLogger(__name__)

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus-client when it is first imported

# From a fast-path read (~15 µs) to a purchase queued behind a slow commit.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The app's registry and the metrics its routes and middleware record into."""

    def __init__(self, platform: Platform) -> None:
        # One registry per app: tests build many apps in one process, and each counts its own.
        self.registry = CollectorRegistry()
        r = self.registry
        self.purchases = Counter(
            "flashsale_purchases", "Purchase decisions by outcome", ["outcome"], registry=r
        )
        self.decision_seconds = Histogram(
            "flashsale_purchase_decision_seconds",
            "Time from a purchase request's arrival at the route to its decision",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.request_seconds = Histogram(
            "flashsale_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.responses = Counter(
            "flashsale_http_responses",
            "HTTP responses by route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.reconcile_drift = Gauge(
            "flashsale_reconcile_drift",
            "Drift the last reconciliation found, by kind",
            ["kind"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.reconcile_pauses = Counter(
            "flashsale_reconcile_pauses",
            "Sale pauses by reconciliations reported to this process",
            registry=r,
        )
        # Labelled children by label values: `labels()` costs more than the observation itself,
        # and these run on every request.
        self._by_outcome: dict[str, Counter] = {}
        self._by_request: dict[tuple[str, str, int], tuple[Histogram, Counter]] = {}
        self.exposition = _exposition(r)
        self.exposition.register(PlatformCollector(platform))
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flashsale-metrics")

    def record_purchase(self, outcome: str, seconds: float) -> None:
        """Count one purchase decision and how long the route waited for it."""
        counter = self._by_outcome.get(outcome)
        if counter is None:
            counter = self._by_outcome[outcome] = self.purchases.labels(outcome)
        counter.inc()
        self.decision_seconds.observe(seconds)

    def observe_request(self, *, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered HTTP request; a method outside HTTP's own is counted as `other`."""
        key = (method, route, status)
        children = self._by_request.get(key)
        if children is None:
            # A client may send any method token: unchecked, each new one would be a new series.
            shown = method if method in HTTP_METHODS else "other"
            children = self._by_request[key] = (
                self.request_seconds.labels(shown, route),
                self.responses.labels(shown, route, str(status)),
            )
        duration, answered = children
        duration.observe(seconds)
        answered.inc()

    def record_reconcile(self, report: ReconcileReport) -> None:
        """Publish a reconciliation's findings (a repairing run paused the sale once)."""
        for kind, count in report.kinds().items():
            self.reconcile_drift.labels(kind).set(count)
        if report.repaired:
            self.reconcile_pauses.inc()

    def render(self) -> bytes:
        """Return every metric in the Prometheus text format (blocks on the scrape-time reads)."""
        return generate_latest(self.exposition)

    async def render_async(self) -> bytes:
        """Render in the registry's own thread, without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self.render)

    def close(self) -> None:
        """Let the scrape thread go (a scrape in progress finishes on its own)."""
        self._thread.shutdown(wait=False, cancel_futures=True)


def _exposition(own: CollectorRegistry) -> CollectorRegistry:
    """Return the registry a scrape reads: this process's own, or every worker's (multi-process mode)."""
    if not os.environ.get(MULTIPROC_DIR):
        return own
    workers = CollectorRegistry()
    MultiProcessCollector(workers)  # reads every worker's files, this process's included
    return workers


class PlatformCollector(Collector):
    """Scrape-time reads of the ledger, the store and the purchase stream."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def collect(self) -> Iterator[Metric]:
        """Read each source; a source that fails is reported down and its metrics left out."""
        up = GaugeMetricFamily(
            "flashsale_scrape_source_up", "1 when the source could be read", labels=["source"]
        )
        sources: list[tuple[str, Callable[[], list[Metric]]]] = [
            ("ledger", self._stock),
            ("store", self._expired),
        ]
        if self.platform.ledger.purchase_stream() is not None:
            sources.append(("order_writer", self._writer))
        for name, read in sources:
            try:
                metrics = read()
            except Exception as exc:  # a scrape must still answer, and say what it could not read
                log.warning(
                    "metrics source failed", extra=fields(source=name, error=f"{type(exc).__name__}: {exc}")
                )
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from metrics
        yield up

    def _stock(self) -> list[Metric]:
        families = {
            name: GaugeMetricFamily(f"flashsale_{name}", text, labels=["item_id"])
            for name, text in (
                ("stock_quota", "Units the item sells in all"),
                ("stock_available", "Units on sale now"),
                ("holds_live", "Units held by unpaid orders within their payment window"),
                ("stock_sold", "Units paid for"),
                ("ledger_conserved", "1 when available + held + sold == quota, no term negative"),
                ("sale_paused_seconds", "Seconds left of the item's pause lease (a repair); 0 when on sale"),
            )
        }
        pauses, now = self.platform.ledger.pauses(), self.platform.deps.clock()
        for item_id in self._item_ids():
            level = self.platform.ledger.stock(item_id)
            label = [str(item_id)]
            families["stock_quota"].add_metric(label, level.quota)
            families["stock_available"].add_metric(label, level.available)
            families["holds_live"].add_metric(label, level.held)
            families["stock_sold"].add_metric(label, level.sold)
            families["ledger_conserved"].add_metric(label, int(level.conserved))
            left = 0.0 if item_id not in pauses else max(0.0, pauses[item_id].until - now)
            families["sale_paused_seconds"].add_metric(label, left)
        return list(families.values())

    def _item_ids(self) -> Iterable[int]:
        # The catalogue as the shop window knows it (refreshed at most every second); the levels
        # are read fresh, since the window stops reading those of closed sessions.
        snapshot = self.platform.showcase.snapshot()
        return [view.item.id for _, views in snapshot.sessions for view in views]

    def _expired(self) -> list[Metric]:
        page = self.platform.order_search.orders(OrderFilter(status=OrderStatus.EXPIRED), limit=0, offset=0)
        expired = CounterMetricFamily("flashsale_orders_expired", "Orders the store has marked EXPIRED")
        expired.add_metric([], page.total)
        return [expired]

    def _writer(self) -> list[Metric]:
        stream = self.platform.ledger.purchase_stream()
        assert stream is not None  # only read for an engine with a stream
        backlog = writer_backlog(stream)
        return [
            GaugeMetricFamily(
                "flashsale_order_writer_lag", "Purchases no order writer has read", value=backlog.lag
            ),
            GaugeMetricFamily(
                "flashsale_order_writer_pending",
                "Purchases an order writer read but has not committed and acknowledged",
                value=backlog.pending,
            ),
        ]


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Answer every metric in the Prometheus text format (see the module docstring)."""
    registry: Metrics = request.app.state.metrics
    body = await registry.render_async()
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
