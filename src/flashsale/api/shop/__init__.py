"""Shopper routes: sessions, purchases, a cart and its checkouts, orders, payments and draws."""

from fastapi import APIRouter

from flashsale.api.shop import admission, cart, coupons, draws, orders, payments, purchases, sessions

router = APIRouter()
for _module in (sessions, purchases, cart, orders, payments, coupons, draws, admission):
    router.include_router(_module.router)
