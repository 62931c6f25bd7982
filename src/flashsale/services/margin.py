"""The margin check of a campaign (活动价格计算), and the product costs it needs.

Reads the store only (safe while a sale runs, no ledger): every flash item of the campaign's
sessions, its product's costs, and every coupon template whose validity overlaps the item's session
(any of them may be stacked on the item if it allows coupons). The worst case itself is
`flashsale.domain.margin.worst_case`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from flashsale.domain.coupons import CouponTemplate
from flashsale.domain.margin import ItemOnSale, Margin, UnitCosts, worst_case
from flashsale.services.deps import Deps
from flashsale.store import coupon_repository as coupons_repo
from flashsale.store import repositories as repo
from flashsale.store.tables import ItemRow, ProductRow, SessionRow


@dataclass(frozen=True, slots=True)
class ItemMargin:
    """One item's margin, with the session it sells in and its product's name."""

    session_id: int
    product_name: str
    margin: Margin


def campaign_margins(sessions: sessionmaker[Session], campaign_id: int) -> list[ItemMargin]:
    """Every flash item of the campaign at its worst-case price, in session then item order.

    Unknown campaign: NOT_FOUND.
    """
    with sessions() as db:
        repo.load_campaign(db, campaign_id)
        rows = db.execute(
            select(ItemRow, SessionRow, ProductRow)
            .join(SessionRow, ItemRow.session_id == SessionRow.id)
            .join(ProductRow, ItemRow.product_id == ProductRow.id)
            .where(SessionRow.campaign_id == campaign_id)
            .order_by(SessionRow.starts_at, ItemRow.id)
        ).all()
        templates = [coupons_repo.template_of(t) for t in coupons_repo.all_templates(db)]
    margins = []
    for item, session, product in rows:
        on_sale = ItemOnSale(
            item_id=item.id,
            product_id=product.id,
            sku=product.sku,
            list_price_cents=product.list_price_cents,
            flash_price_cents=item.flash_price_cents,
            coupons_allowed=item.coupons_allowed,
            costs=UnitCosts(product.cost_cents, product.shipping_cost_cents, product.platform_fee_bp),
        )
        offers = [
            t.to_offer(f"#{t.id} {t.name}")
            for t in templates
            if _overlaps(t, session.starts_at, session.ends_at)
        ]
        margins.append(ItemMargin(session.id, product.name, worst_case(on_sale, offers)))
    return margins


def _overlaps(template: CouponTemplate, starts_at: datetime, ends_at: datetime) -> bool:
    return template.valid_from < ends_at and starts_at < template.valid_until


def set_costs(deps: Deps, product_id: int, costs: UnitCosts) -> UnitCosts:
    """Record what one unit of a product costs the shop (for the margin check). Unknown: NOT_FOUND."""
    with deps.uow() as uow:
        row = repo.get_row(uow.db, ProductRow, product_id, "product")
        row.cost_cents = costs.cost_cents
        row.shipping_cost_cents = costs.shipping_cost_cents
        row.platform_fee_bp = costs.platform_fee_bp
        uow.commit()
    return costs
