"""Shopper routes: sessions, buy, a cart and checkouts, pay, cancel, group buys; the provider's callback."""

from fastapi import APIRouter

from flashsale.api.shop import cart, groups, orders, payments, purchases, referral, sessions

router = APIRouter()
for _module in (sessions, purchases, cart, orders, payments, groups, referral):
    router.include_router(_module.router)
