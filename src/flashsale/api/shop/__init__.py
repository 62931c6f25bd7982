"""Shopper routes: browse sessions, buy, pay, cancel, draw; and the payment provider's callback."""

from fastapi import APIRouter

from flashsale.api.shop import draws, orders, payments, purchases, sessions

router = APIRouter()
for _module in (sessions, purchases, orders, payments, draws):
    router.include_router(_module.router)
