"""The rehearsals' section of a campaign review: each `flashsale rehearse` run found beside the report
(rehearsal-COPY.json), one row each: load, traffic, latency from intended send, errors, the books."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from flashsale.reports.review import Section, figure

PATTERN = "rehearsal-*.json"


def load_rehearsals(folder: Path) -> list[dict[str, Any]]:
    """Every rehearsal result written into `folder`, oldest first."""
    results = [json.loads(path.read_text(encoding="utf-8")) for path in folder.glob(PATTERN)]
    return sorted(results, key=lambda r: str(r["started_at"]))


def rehearsal_section(results: list[dict[str, Any]]) -> Section | None:
    """A table of the rehearsals, or None when there was none."""
    if not results:
        return None
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "started (UTC)",
            "load",
            "shoppers",
            "requests",
            "answers/s",
            "p50",
            "p99",
            "errors by code",
            "faults",
            "oversell",
            "undersell",
            "held",
        )
    )
    rows = []
    for r in results:
        errors = ", ".join(f"{code} {n:,}" for code, n in r["errors"].items()) or "none"
        cells = (
            str(r["started_at"])[:19].replace("T", " "),
            f"{r['load']:g}x",
            f"{r['shoppers']:,}",
            f"{r['requests']:,}",
            f"{r['throughput_rps']:,.1f}",
            f"{r['latency']['p50_s'] * 1000:,.1f} ms",
            f"{r['latency']['p99_s'] * 1000:,.1f} ms",
            errors,
            f"{r['faults']:,}",
            f"{r['oversell']:,}",
            f"{r['undersell']:,}",
            "yes" if r["held"] else "NO",
        )
        tds = "".join(f"<td>{escape(c)}</td>" for c in cells)
        rows.append(f"<tr data-copy='{int(r['copy_campaign_id'])}'>{tds}</tr>")
    note = (
        "<p>Each run replayed the forecast traffic at the load shown against a copy of this campaign,"
        " open loop; latency is measured from each request's intended send time.</p>"
    )
    table = f"<table id='rehearsals'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return Section("rehearsals", "Load rehearsals", note + table + _chart_timeline(results))


def _chart_timeline(results: list[dict[str, Any]]) -> str:
    """p99 latency per second of each rehearsal: a line that climbs is a queue that grows."""
    fig, ax = plt.subplots(figsize=(8, 3))
    for r in results:
        line = r["timeline"]
        label = f"{str(r['started_at'])[:16].replace('T', ' ')} at {r['load']:g}x"
        ax.plot([p["second"] for p in line], [p["p99_s"] * 1000 for p in line], label=label)
    ax.set_xlabel("second of the rehearsal (intended send time)")
    ax.set_ylabel("p99 latency (ms)")
    ax.legend(fontsize="small")
    return figure(fig, "rehearsal-latency")
