"""Write a campaign review as files: `review.html` (self-contained: tables and inline SVG charts, no
script, no CDN), `review.json` (every figure) and `kpis.csv` (the KPI table, one row per KPI, a
column per campaign when compared with another).

Charts are drawn server-side with matplotlib (Agg, no display) to SVG text embedded in the page:
GMV per hour, each item's sell-out curve against its quota, and the orders by status.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never a display, whatever the environment says

import matplotlib.pyplot as plt

from flashsale.domain.review import CampaignReview


def _money(cents: int) -> str:
    return f"¥{cents / 100:,.2f}"


# (label, how to show it) for each KPI, in the order the table lists them.
KPI_ROWS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("gmv_cents", "GMV", _money),
    ("orders_paid", "orders paid", lambda v: f"{v:,}"),
    ("units_sold", "units sold", lambda v: f"{v:,}"),
    ("aov_cents", "average order value", _money),
    ("participants", "participants", lambda v: f"{v:,}"),
    ("buyers", "buyers", lambda v: f"{v:,}"),
    ("orders_placed", "orders placed", lambda v: f"{v:,}"),
    ("conversion", "conversion (paid / placed)", lambda v: f"{v:.1%}"),
    ("expired_share", "expired unpaid", lambda v: f"{v:.1%}"),
    ("cancelled_share", "cancelled", lambda v: f"{v:.1%}"),
    ("refunded_cents", "refunded", _money),
)


def write_review(review: CampaignReview, out_dir: Path, *, compare: CampaignReview | None = None) -> Path:
    """Write review.html, review.json and kpis.csv into `out_dir` (created); return the HTML's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    reviews = [review] + ([compare] if compare is not None else [])
    (out_dir / "review.json").write_text(
        json.dumps([_jsonable(asdict(r)) for r in reviews], indent=2, ensure_ascii=False), encoding="utf-8"
    )
    with (out_dir / "kpis.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["kpi", *(r.campaign.name for r in reviews)])
        for key, label, _ in KPI_ROWS:
            writer.writerow([label, *(getattr(r.kpis, key) for r in reviews)])
    page = out_dir / "review.html"
    page.write_text(render_html(review, compare), encoding="utf-8")
    return page


def render_html(review: CampaignReview, compare: CampaignReview | None = None) -> str:
    """The whole report as one HTML document."""
    c = review.campaign
    parts = [
        f"<h1>{_e(c.name)} — campaign review</h1>",
        f"<p>{_e(c.theme)} · {_e(c.starts_at.isoformat())} to {_e(c.ends_at.isoformat())}</p>",
        "<h2>KPIs</h2>",
        _kpi_table(review, compare),
        "<h2>Sessions</h2>",
        _sessions_table(review),
        "<h2>Sales per hour</h2>",
        _chart_sales(review),
        "<h2>Sell-out curves</h2>",
        _chart_curves(review),
        "<h2>Orders by status</h2>",
        _chart_statuses(review),
    ]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(c.name)} review</title><style>{STYLE}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )


STYLE = (
    "body{font:15px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222;max-width:60rem}"
    "table{border-collapse:collapse;margin:.5rem 0}th,td{padding:.25rem .7rem;text-align:right}"
    "th:first-child,td:first-child{text-align:left}tr:nth-child(even){background:#fafafa}"
    "figure{margin:.5rem 0}svg{max-width:100%;height:auto}"
)


def _kpi_table(review: CampaignReview, compare: CampaignReview | None) -> str:
    head = f"<th>KPI</th><th>{_e(review.campaign.name)}</th>"
    if compare is not None:
        head += f"<th>{_e(compare.campaign.name)}</th><th>change</th>"
    rows = []
    for key, label, show in KPI_ROWS:
        value = getattr(review.kpis, key)
        cells = f"<td>{_e(label)}</td><td>{_e(show(value))}</td>"
        if compare is not None:
            before = getattr(compare.kpis, key)
            change = f"{(value - before) / before:+.1%}" if before else "—"
            cells += f"<td>{_e(show(before))}</td><td>{change}</td>"
        rows.append(f"<tr data-kpi='{key}'>{cells}</tr>")
    return f"<table id='kpis'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _sessions_table(review: CampaignReview) -> str:
    head = "<th>session / item</th><th>quota</th><th>sold</th><th>GMV</th><th>buyers</th><th>sold out at</th>"
    rows = []
    for s in review.sessions:
        k = s.kpis
        rows.append(
            f"<tr><td><strong>{_e(s.session.name)}</strong></td><td></td><td>{k.units_sold:,}</td>"
            f"<td>{_money(k.gmv_cents)}</td><td>{k.buyers:,}</td><td></td></tr>"
        )
        for i in s.items:
            when = i.sold_out_at.strftime("%H:%M:%S") if i.sold_out_at else "—"
            rows.append(
                f"<tr><td>&nbsp;&nbsp;{_e(i.name)}</td><td>{i.item.quota:,}</td><td>{i.kpis.units_sold:,}</td>"
                f"<td>{_money(i.kpis.gmv_cents)}</td><td>{i.kpis.buyers:,}</td><td>{when}</td></tr>"
            )
    return f"<table id='sessions'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _chart_sales(review: CampaignReview) -> str:
    fig, ax = plt.subplots(figsize=(8, 3))
    hours = [h for h, _ in review.sales_by_hour]
    ax.bar([h.strftime("%m-%d %H:00") for h in hours], [v / 100 for _, v in review.sales_by_hour])
    ax.set_ylabel("GMV (¥)")
    ax.tick_params(axis="x", labelrotation=45)
    return _figure(fig, "sales")


def _chart_curves(review: CampaignReview) -> str:
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for session in review.sessions:
        for item in session.items:
            if item.curve:
                times: Any = [t for t, _ in item.curve]  # matplotlib plots datetimes as dates
                ax.step(times, [u / item.item.quota for _, u in item.curve], where="post", label=item.name)
    ax.axhline(1.0, color="#999", linewidth=0.8, linestyle="--")
    ax.set_ylabel("share of quota taken")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    fig.autofmt_xdate()
    return _figure(fig, "curves")


def _chart_statuses(review: CampaignReview) -> str:
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.barh(list(review.orders_by_status), list(review.orders_by_status.values()))
    ax.set_xlabel("orders")
    return _figure(fig, "statuses")


def _figure(fig: Any, name: str) -> str:
    buffer = io.StringIO()
    fig.tight_layout()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    svg = buffer.getvalue()
    return f"<figure data-chart='{name}'>{svg[svg.index('<svg'):]}</figure>"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
