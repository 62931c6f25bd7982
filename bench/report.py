"""Results, their side-by-side table (Rich for the terminal, Markdown for BENCHMARKS.md), and ratios."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table

from bench.workload import Check, Run, percentile_ms

BASELINE_A = "baseline A"


@dataclass(frozen=True)
class Result:
    """One benchmark on one scenario: the figures, and whether the final state was right."""

    engine: str  # e.g. "baseline A: PG UPDATE…WHERE n>=q + INSERT"
    scenario: str  # Shape.label, or "HTTP floor"
    unit: str  # "decisions/s" or "req/s"
    run: Run
    check: Check
    how: str = ""  # concurrency, batch size: what the reader needs to repeat it
    target: float | None = None  # the throughput we promised, reported beside the figure

    @property
    def rate(self) -> float:
        return self.run.decisions / self.run.seconds if self.run.seconds else 0.0

    @property
    def p50_ms(self) -> float | None:
        return percentile_ms(self.run.latencies_ns, 0.50)

    @property
    def p99_ms(self) -> float | None:
        return percentile_ms(self.run.latencies_ns, 0.99)


@dataclass(frozen=True)
class Skipped:
    engine: str
    reason: str


def _latency(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 0.1:
        return f"{ms * 1000:.1f} µs"
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.0f} ms"


def ratio_to_baseline(result: Result, results: Sequence[Result]) -> float | None:
    """Return result.rate / baseline A's rate on the same scenario in this run, if A ran."""
    for other in results:
        if other.engine.startswith(BASELINE_A) and other.scenario == result.scenario:
            return result.rate / other.rate if other.rate else None
    return None


def _row(result: Result, results: Sequence[Result]) -> list[str]:
    ratio = ratio_to_baseline(result, results)
    target = "" if result.target is None else f" (target ≥ {result.target:,.0f})"
    return [
        result.engine,
        result.scenario,
        result.how,
        f"{result.run.decisions:,}",
        f"{len(result.run.granted):,}",
        f"{result.rate:,.0f} {result.unit}{target}",
        _latency(result.p50_ms),
        _latency(result.p99_ms),
        "—" if ratio is None else f"{ratio:,.1f}×",
        "OK" if result.check.ok else "FAILED",
    ]


HEADERS = [
    "engine",
    "scenario",
    "how",
    "decisions",
    "granted",
    "throughput",
    "p50",
    "p99",
    "× A",
    "check",
]


def by_scenario(results: Sequence[Result]) -> list[Result]:
    """Order rows so every engine's hot-item run stands together, then the 100-item runs, then the rest."""
    return sorted(results, key=lambda r: r.scenario)  # stable: run order within a scenario


def rich_table(results: Sequence[Result]) -> Table:
    """Build the terminal table of every result."""
    table = Table(title="Side by side (ratios against baseline A measured in this run)", show_lines=False)
    for header in HEADERS:
        numeric = header in {"decisions", "granted", "throughput", "p50", "p99", "× A"}
        table.add_column(header, justify="right" if numeric else "left", overflow="fold")
    for result in by_scenario(results):
        table.add_row(*_row(result, results), style=None if result.check.ok else "bold red")
    return table


def markdown_table(results: Sequence[Result]) -> str:
    """Render every result as a GitHub Markdown table."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join("---" for _ in HEADERS) + "|"]
    lines += ["| " + " | ".join(_row(r, results)) + " |" for r in by_scenario(results)]
    return "\n".join(lines) + "\n"
