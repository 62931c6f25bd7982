"""The margin check (活动价格计算): product costs, and each item's worst-case price and margin."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.orm import sessionmaker

from flashsale.api.deps import PathId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import AdminIn, Cents, domain_value
from flashsale.domain.margin import BASIS_POINTS, UnitCosts
from flashsale.services.margin import ItemMargin, campaign_margins, set_costs

router = APIRouter(tags=["admin: margin"], responses=error_responses(404))


class CostsIn(AdminIn):
    cost_cents: Cents = Field(description="What one unit costs the shop")
    shipping_cost_cents: Cents = 0
    platform_fee_bp: Annotated[
        int, Field(ge=0, le=BASIS_POINTS, description="The platform's fee in basis points (250 = 2.5 %)")
    ] = 0


class CostsOut(BaseModel):
    product_id: int
    cost_cents: int
    shipping_cost_cents: int
    platform_fee_bp: int


class ItemMarginOut(BaseModel):
    item_id: int
    session_id: int
    product_id: int
    sku: str
    product_name: str
    flash_price_cents: int
    worst_price_cents: int = Field(description="The lowest unit price every stackable coupon can reach")
    offers: list[str] = Field(description="The coupons that reach it")
    cost_cents: int
    shipping_cost_cents: int
    platform_fee_cents: int
    margin_cents: int
    loss: bool

    @classmethod
    def of(cls, item: ItemMargin) -> ItemMarginOut:
        m = item.margin
        return cls(
            item_id=m.item.item_id,
            session_id=item.session_id,
            product_id=m.item.product_id,
            sku=m.item.sku,
            product_name=item.product_name,
            flash_price_cents=m.item.flash_price_cents,
            worst_price_cents=m.worst_price_cents,
            offers=list(m.offers),
            cost_cents=m.item.costs.cost_cents,
            shipping_cost_cents=m.item.costs.shipping_cost_cents,
            platform_fee_cents=m.fee_cents,
            margin_cents=m.margin_cents,
            loss=m.loss,
        )


class MarginReportOut(BaseModel):
    campaign_id: int
    loss_makers: int
    items: list[ItemMarginOut]


@router.put("/products/{product_id}/costs")
def put_costs(product_id: PathId, body: CostsIn, platform: PlatformDep) -> CostsOut:
    """Set what one unit of a product costs: goods, shipping, and the platform's fee rate."""
    costs = set_costs(
        platform.deps,
        product_id,
        domain_value(lambda: UnitCosts(body.cost_cents, body.shipping_cost_cents, body.platform_fee_bp)),
    )
    return CostsOut(
        product_id=product_id,
        cost_cents=costs.cost_cents,
        shipping_cost_cents=costs.shipping_cost_cents,
        platform_fee_bp=costs.platform_fee_bp,
    )


@router.get("/campaigns/{campaign_id}/margin")
def margin(campaign_id: PathId, platform: PlatformDep) -> MarginReportOut:
    """Each flash item of the campaign at its worst-case price after every stackable coupon, its margin
    per unit, and whether it loses money. Reads the store only."""
    items = [ItemMarginOut.of(m) for m in campaign_margins(sessionmaker(platform.read_engine), campaign_id)]
    return MarginReportOut(campaign_id=campaign_id, loss_makers=sum(i.loss for i in items), items=items)
