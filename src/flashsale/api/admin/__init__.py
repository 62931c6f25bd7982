"""Operator routes under /admin; every one needs the admin bearer token (a shopper token gets 403)."""

from fastapi import APIRouter

from flashsale.api.admin import campaigns, groups, items, orders, products, sessions
from flashsale.api.deps import AdminDep
from flashsale.api.errors import error_responses

router = APIRouter(prefix="/admin", dependencies=[AdminDep], responses=error_responses(401, 403, 422))
for _module in (campaigns, sessions, products, items, orders, groups):
    router.include_router(_module.router)
