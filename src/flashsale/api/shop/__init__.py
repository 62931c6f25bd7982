"""Shopper routes: browse sessions, buy, a cart and its checkouts, pay, cancel; the provider's callback."""

from fastapi import APIRouter

from flashsale.api.shop import cart, orders, payments, purchases, sessions

router = APIRouter()
for _module in (sessions, purchases, cart, orders, payments):
    router.include_router(_module.router)
