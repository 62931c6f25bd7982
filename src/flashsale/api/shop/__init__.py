"""Shopper routes: sessions, purchases, a cart and checkouts, orders, payments, coupons, draws,
admission (sale tokens, waiting rooms), group buys and referrals; the provider's callback."""

from fastapi import APIRouter

from flashsale.api.shop import (
    admission,
    cart,
    coupons,
    draws,
    groups,
    orders,
    payments,
    purchases,
    referral,
    sessions,
)

router = APIRouter()
for _module in (sessions, purchases, cart, orders, payments, coupons, draws, admission, groups, referral):
    router.include_router(_module.router)
