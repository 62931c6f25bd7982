"""The operator's side of a rehearsal, through the admin API: read the forecast, make the throwaway
copy, and afterwards read each copied item's ledger counters and stored orders."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from flashsale.domain.orders import OrderStatus

PAGE = 200  # the admin order search's largest page
COUNTED = (OrderStatus.PAID.value, OrderStatus.UNPAID.value)


class RehearsalRefused(RuntimeError):
    """The deployment refused a step of the rehearsal (the message says which, and why)."""


@dataclass(frozen=True, slots=True)
class ItemBooks:
    """One item after the rehearsal: the ledger's counters beside the stored orders."""

    item_id: int
    quota: int
    per_user_limit: int
    available: int
    held: int
    sold: int
    db_sold: int  # units of PAID orders
    db_held: int  # units of UNPAID orders
    over_limit: int  # units of shoppers beyond the per-user limit (PAID + UNPAID)

    @property
    def agrees(self) -> bool:
        return self.sold == self.db_sold and self.held == self.db_held


class Operator:
    """Admin API calls with the operator's bearer token."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if not response.is_success:
            raise RehearsalRefused(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    def forecast(self, campaign_id: int, *, from_campaign: int | None = None) -> list[dict[str, Any]]:
        """The campaign's sessions with their forecast (entered, or read off `from_campaign`)."""
        params = {} if from_campaign is None else {"from_campaign": from_campaign}
        result: list[dict[str, Any]] = self._call(
            "GET", f"/admin/campaigns/{campaign_id}/forecast", params=params
        )
        return result

    def copy(self, campaign_id: int, windows: list[tuple[int, float, float]]) -> dict[str, Any]:
        """Copy the campaign for the rehearsal: (source session id, opens, closes in epoch seconds)."""
        body = {
            "sessions": [
                {"session_id": sid, "starts_at": _iso(opens), "ends_at": _iso(closes)}
                for sid, opens, closes in windows
            ]
        }
        result: dict[str, Any] = self._call("POST", f"/admin/campaigns/{campaign_id}/rehearsals", json=body)
        return result

    def books(self, item_id: int, per_user_limit: int) -> ItemBooks:
        """Read an item's ledger counters and its orders (every page, for the per-user check)."""
        stats = self._call("GET", f"/admin/items/{item_id}/stats")
        units: Counter[str] = Counter()
        offset = 0
        while True:
            page = self._call(
                "GET", "/admin/orders", params={"item_id": item_id, "limit": PAGE, "offset": offset}
            )
            for order in page["items"]:
                if order["status"] in COUNTED:
                    units[order["user_id"]] += order["qty"]
            offset += PAGE
            if offset >= page["total"]:
                break
        stock, by_status = stats["stock"], stats["units_by_status"]
        return ItemBooks(
            item_id=item_id,
            quota=stock["quota"],
            per_user_limit=per_user_limit,
            available=stock["available"],
            held=stock["held"],
            sold=stock["sold"],
            db_sold=by_status.get(OrderStatus.PAID.value, 0),
            db_held=by_status.get(OrderStatus.UNPAID.value, 0),
            over_limit=sum(max(0, n - per_user_limit) for n in units.values()),
        )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()
