"""Payment providers. The sandbox signs its callbacks exactly as a real provider would, and
every confirmation — sandbox or real — enters through `PaymentDesk.handle_callback`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Protocol

from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import Order
from flashsale.randomness import token_hex


@dataclass(frozen=True, slots=True)
class Callback:
    """A verified provider notification."""

    order_id: str
    provider_ref: str
    amount_cents: int
    status: str  # "succeeded" | "failed"


@dataclass(frozen=True, slots=True)
class SignedCallback:
    body: bytes
    signature: str


class PaymentProvider(Protocol):
    name: str

    def charge(self, order: Order) -> SignedCallback | None:
        """Start a charge; a provider that answers at once (the sandbox) returns its signed callback."""
        ...

    def verify(self, body: bytes, signature: str) -> Callback:
        """Check the signature of a callback body and parse it, or raise INVALID_SIGNATURE."""
        ...

    def refund(self, *, order_id: str, charge_ref: str, amount_cents: int, key: str | None = None) -> str:
        """Refund (part of) a charge and return the refund's reference.

        `key` (default: `charge_ref`) makes a repeat a no-op; a charge refunded in two parts (a free
        order's rebate, then the rest) gives each part its own key.
        """
        ...


class SandboxProvider:
    """Always succeeds (unless told to decline); HMAC-SHA256 signs its callbacks."""

    name = "sandbox"

    def __init__(self, secret: str, *, decline: bool = False) -> None:
        self._key = secret.encode()
        self.decline = decline

    def _sign(self, body: bytes) -> str:
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()

    def charge(self, order: Order) -> SignedCallback:
        payload = {
            "order_id": order.id,
            "provider_ref": f"sbx_{token_hex(8)}",
            "amount_cents": order.total_cents,
            "status": "failed" if self.decline else "succeeded",
        }
        body = json.dumps(payload, sort_keys=True).encode()
        return SignedCallback(body, self._sign(body))

    def verify(self, body: bytes, signature: str) -> Callback:
        if not hmac.compare_digest(self._sign(body), signature or ""):
            raise FlashSaleError(ErrorCode.INVALID_SIGNATURE, "callback signature does not match")
        try:
            data = json.loads(body)
            return Callback(
                order_id=str(data["order_id"]),
                provider_ref=str(data["provider_ref"]),
                amount_cents=int(data["amount_cents"]),
                status=str(data["status"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise FlashSaleError(ErrorCode.VALIDATION_ERROR, "malformed callback body") from exc

    def refund(self, *, order_id: str, charge_ref: str, amount_cents: int, key: str | None = None) -> str:
        return f"sbx_rf_{key or charge_ref}"
