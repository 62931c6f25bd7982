"""Shopper routes: browse sessions, buy, pay, cancel; and the payment provider's callback."""

from fastapi import APIRouter

from flashsale.api.shop import admission, orders, payments, purchases, sessions

router = APIRouter()
for _module in (sessions, purchases, orders, payments, admission):
    router.include_router(_module.router)
