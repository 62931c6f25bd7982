"""The promotions' section of a campaign review: coupons and shop promotions kept and given back, what
they took off against their budgets, and the free orders won; with promotions.json beside."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from html import escape

import matplotlib.pyplot as plt

from flashsale.reports.review import Section, figure
from flashsale.services.promotion_review import PromotionsReview


def promotions_section(promotions: PromotionsReview) -> Section | None:
    """Coupons, 满减 and free orders of the campaign, or None when it ran none of them."""
    if promotions.empty:
        return None
    parts = []
    if promotions.coupons:
        parts += [
            "<h3>Coupons and shop promotions at checkout</h3>",
            _coupons_table(promotions),
            _chart_discounts(promotions),
        ]
    if promotions.free_orders:
        parts += ["<h3>Free orders (免单)</h3>", _free_orders_table(promotions)]
    data = {
        "coupons": [asdict(c) for c in promotions.coupons],
        "free_orders": [asdict(w) for w in promotions.free_orders],
        "discount_cents": promotions.discount_cents,
        "rebate_cents": promotions.rebate_cents,
    }
    return Section(
        "promotions",
        "Promotions",
        "\n".join(parts),
        files={"promotions.json": json.dumps(data, indent=2, ensure_ascii=False)},
    )


def _money(cents: int | None) -> str:
    return "no limit" if cents is None else f"¥{cents / 100:,.2f}"


def _table(table_id: str, head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    ths = "".join(f"<th>{escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table id='{table_id}'><thead><tr>{ths}</tr></thead><tbody>{trs}</tbody></table>"


def _coupons_table(promotions: PromotionsReview) -> str:
    rows = [
        (
            c.name,
            "shop promotion" if c.promotion else "coupon",
            f"{c.kept:,}",
            f"{c.given_back:,}",
            _money(c.discount_cents),
            _money(c.budget_cents),
        )
        for c in promotions.coupons
    ]
    rows.append(("total", "", "", "", _money(promotions.discount_cents), ""))
    head = ("template", "kind", "kept", "given back", "taken off (kept)", "budget")
    return _table("promotion-coupons", head, rows)


def _free_orders_table(promotions: PromotionsReview) -> str:
    rows = [
        (w.rule, f"#{w.slot}", w.user_id, w.order_id, _money(w.rebate_cents), w.status)
        for w in promotions.free_orders
    ]
    rows.append(("total", "", "", "", _money(promotions.rebate_cents), ""))
    return _table("free-orders", ("rule", "rank", "shopper", "order", "rebate", "status"), rows)


def _chart_discounts(promotions: PromotionsReview) -> str:
    """What each template took off, against its budget where it has one."""
    fig, ax = plt.subplots(figsize=(8, 3))
    # Labelled by id and kind, not by name: names may be in any script, and the chart font has few.
    names = [f"#{c.template_id} {'promotion' if c.promotion else 'coupon'}" for c in promotions.coupons]
    ax.barh(names, [c.discount_cents / 100 for c in promotions.coupons], label="taken off")
    budgets = [
        (n, c.budget_cents / 100) for n, c in zip(names, promotions.coupons, strict=True) if c.budget_cents
    ]
    if budgets:
        ax.scatter(
            [b for _, b in budgets], [n for n, _ in budgets], marker="|", s=400, color="black", label="budget"
        )
    ax.set_xlabel("yuan")
    ax.legend(fontsize="small")
    return figure(fig, "promotion-discounts")
