"""The goals' section of a campaign review: each KPI against the operator's target, and budget
against spend and ROI per marketing channel; with targets.csv, channels.csv and goals.json beside."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict
from html import escape
from typing import Any

import matplotlib.pyplot as plt

from flashsale.domain.channels import Channel, ChannelsReview, review_channels
from flashsale.domain.review import CampaignReview
from flashsale.domain.targets import BASIS_POINTS, Target, TargetResult, Unit, judge_targets
from flashsale.reports.review import KPI_ROWS, Section, figure

LABELS = {key: label for key, label, _ in KPI_ROWS}


def goals_section(
    review: CampaignReview, targets: Sequence[Target], channels: Sequence[Channel]
) -> Section | None:
    """Targets and channels of the campaign as a section, or None when the operator entered neither."""
    if not targets and not channels:
        return None
    results = judge_targets(review.kpis, targets)
    spend = review_channels(review.kpis, channels)
    parts = []
    if results:
        parts += ["<h3>Targets</h3>", _targets_table(results)]
    if channels:
        parts += ["<h3>Channels: budget, spend, ROI</h3>", _channels_table(spend), _chart_channels(spend)]
    data = {
        "targets": [{**asdict(r.target), "unit": r.target.unit.value, **_result_fields(r)} for r in results],
        "channels": asdict(spend),
    }
    return Section(
        "goals",
        "Targets and channels",
        "\n".join(parts),
        files={
            "targets.csv": _targets_csv(results),
            "channels.csv": _channels_csv(spend),
            "goals.json": json.dumps(data, indent=2, ensure_ascii=False),
        },
    )


def _show(unit: Unit, value: int) -> str:
    if unit is Unit.CENTS:
        return _money(value)
    if unit is Unit.SHARE:
        return f"{value / BASIS_POINTS:.1%}"
    return f"{value:,}"


def _money(cents: int) -> str:
    return f"¥{cents / 100:,.2f}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _result_fields(r: TargetResult) -> dict[str, Any]:
    return {"achieved": r.achieved, "met": r.met, "attainment": r.attainment}


def _targets_table(results: Sequence[TargetResult]) -> str:
    rows = []
    for r in results:
        t = r.target
        direction = "at least" if t.higher_is_better else "at most"
        cells = (
            LABELS[t.kpi],
            f"{direction} {_show(t.unit, t.value)}",
            _show(t.unit, r.achieved),
            _share(r.attainment),
            "met" if r.met else "missed",
        )
        tds = "".join(f"<td>{escape(c)}</td>" for c in cells)
        rows.append(f"<tr data-kpi='{escape(t.kpi)}' data-met='{str(r.met).lower()}'>{tds}</tr>")
    head = "<th>KPI</th><th>target</th><th>achieved</th><th>of target</th><th></th>"
    return f"<table id='targets'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


CHANNEL_COLUMNS = (
    "channel",
    "budget",
    "spend",
    "over budget",
    "orders",
    "GMV",
    "share of GMV",
    "cost per order",
    "ROI",
)


def _channels_table(review: ChannelsReview) -> str:
    rows = []
    for r in review.channels:
        c = r.channel
        cells = (
            c.name,
            _money(c.budget_cents),
            _money(c.spend_cents),
            _money(r.over_budget_cents),
            f"{c.attributed_orders:,}",
            _money(c.attributed_gmv_cents),
            _share(r.gmv_share),
            "—" if r.cost_per_order_cents is None else _money(r.cost_per_order_cents),
            _share(r.roi),
        )
        tds = "".join(f"<td>{escape(x)}</td>" for x in cells)
        rows.append(f"<tr data-channel='{escape(c.name)}'>{tds}</tr>")
    total = (
        "all channels",
        _money(review.budget_cents),
        _money(review.spend_cents),
        _money(max(0, review.spend_cents - review.budget_cents)),
        f"{review.attributed_orders:,}",
        _money(review.attributed_gmv_cents),
        "",
        "",
        _share(review.roi),
    )
    rows.append(
        "<tr class='total'>" + "".join(f"<td><strong>{escape(x)}</strong></td>" for x in total) + "</tr>"
    )
    rows.append(
        f"<tr><td>unattributed</td><td></td><td></td><td></td><td>{review.unattributed_orders:,}</td>"
        f"<td>{_money(review.unattributed_gmv_cents)}</td><td></td><td></td><td></td></tr>"
    )
    head = "".join(f"<th>{c}</th>" for c in CHANNEL_COLUMNS)
    warning = (
        "<p class='warning'><strong>The channels claim more orders or GMV than the campaign made:"
        " check the attribution.</strong></p>"
        if review.over_attributed
        else ""
    )
    return (
        f"{warning}<table id='channels'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _chart_channels(review: ChannelsReview) -> str:
    fig, ax = plt.subplots(figsize=(8, 3))
    names = [r.channel.name for r in review.channels]
    at = list(range(len(names)))
    ax.bar(
        [x - 0.2 for x in at], [r.channel.budget_cents / 100 for r in review.channels], 0.4, label="budget"
    )
    ax.bar([x + 0.2 for x in at], [r.channel.spend_cents / 100 for r in review.channels], 0.4, label="spend")
    ax.set_xticks(at, names)
    ax.set_ylabel("¥")
    ax.legend(fontsize="small")
    return figure(fig, "channels")


def _targets_csv(results: Sequence[TargetResult]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["kpi", "unit", "target", "achieved", "attainment", "met"])
    for r in results:
        writer.writerow([r.target.kpi, r.target.unit.value, r.target.value, r.achieved, r.attainment, r.met])
    return out.getvalue()


def _channels_csv(review: ChannelsReview) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "channel",
            "budget_cents",
            "spend_cents",
            "over_budget_cents",
            "attributed_orders",
            "attributed_gmv_cents",
            "gmv_share",
            "cost_per_order_cents",
            "roi",
        ]
    )
    for r in review.channels:
        c = r.channel
        writer.writerow(
            [
                c.name,
                c.budget_cents,
                c.spend_cents,
                r.over_budget_cents,
                c.attributed_orders,
                c.attributed_gmv_cents,
                r.gmv_share,
                r.cost_per_order_cents,
                r.roi,
            ]
        )
    return out.getvalue()
