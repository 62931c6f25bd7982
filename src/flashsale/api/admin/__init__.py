"""Operator routes under /admin; every one needs the admin bearer token (a shopper token gets 403)."""

from fastapi import APIRouter

from flashsale.api.admin import (
    admission,
    campaigns,
    coupons,
    draws,
    free_orders,
    groups,
    items,
    margin,
    messages,
    orders,
    plans,
    products,
    sessions,
    shoppers,
)
from flashsale.api.deps import AdminDep
from flashsale.api.errors import error_responses

router = APIRouter(prefix="/admin", dependencies=[AdminDep], responses=error_responses(401, 403, 422))
_MODULES = (
    campaigns,
    sessions,
    products,
    items,
    orders,
    draws,
    coupons,
    margin,
    plans,
    messages,
    admission,
    groups,
    free_orders,
    shoppers,
)
for _module in _MODULES:
    router.include_router(_module.router)
