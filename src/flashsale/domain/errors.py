"""Stable error codes shared by every edge (HTTP, CLI, jobs)."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Machine-readable reasons a request was refused; clients switch on these, so never rename one."""

    SESSION_NOT_OPEN = "SESSION_NOT_OPEN"
    SOLD_OUT = "SOLD_OUT"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    UNKNOWN_ITEM = "UNKNOWN_ITEM"
    UNKNOWN_HOLD = "UNKNOWN_HOLD"
    IDEMPOTENCY_MISMATCH = "IDEMPOTENCY_MISMATCH"
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    ORDER_EXPIRED = "ORDER_EXPIRED"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    PAYMENT_MISMATCH = "PAYMENT_MISMATCH"
    PAYMENT_IN_PROGRESS = "PAYMENT_IN_PROGRESS"
    INVALID_SIGNATURE = "INVALID_SIGNATURE"
    QUOTA_BELOW_COMMITTED = "QUOTA_BELOW_COMMITTED"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    IDEMPOTENCY_KEY_REQUIRED = "IDEMPOTENCY_KEY_REQUIRED"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    RATE_LIMITED = "RATE_LIMITED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    SALE_PAUSED = "SALE_PAUSED"  # the item's ledger is paused (reconcile, rebuild): retry after the lease
    COUPON_EXPIRED = "COUPON_EXPIRED"  # an applied coupon outside its validity window
    COUPON_NOT_APPLICABLE = "COUPON_NOT_APPLICABLE"  # out of scope, minimum spend not met, or does not stack
    # The ledger's sequence of the item is below what this process or the database saw acknowledged:
    # it lost writes (Redis restarted on a stale AOF, or failed over to a lagging replica). Shoppers
    # hear SALE_PAUSED while it is repaired; the code itself reaches only the ledger's callers.
    LEDGER_BEHIND = "LEDGER_BEHIND"
    # The ledger forgot some of this shopper's finished holds and their keys (retention), so an
    # unknown key may name a stored order: the caller asks the store, then reserves again `checked`.
    # Reaches only the ledger's callers (services/retention.py answers it).
    REQUEST_FORGOTTEN = "REQUEST_FORGOTTEN"
    CART_EMPTY = "CART_EMPTY"  # a checkout of a cart with no lines
    CART_FULL = "CART_FULL"  # a cart already holds its most lines
    # Draws (lottery, scratch card, golden egg): see flashsale.draws.contract.
    NO_ENTITLEMENT = "NO_ENTITLEMENT"  # the shopper has no draw left in the pool
    PRIZE_GONE = "PRIZE_GONE"  # every prize of the pool is out of stock or at today's cap; no draw spent
    UNKNOWN_POOL = "UNKNOWN_POOL"  # no prize pool with that id
    GRANT_LIMIT_REACHED = "GRANT_LIMIT_REACHED"  # today's grants from that source are used up
    ALREADY_CHECKED_IN = "ALREADY_CHECKED_IN"  # the shopper checked in to the pool today already
    ALREADY_REDEEMED = "ALREADY_REDEEMED"  # the award was redeemed before
    PRIZE_NOT_STOCKED = "PRIZE_NOT_STOCKED"  # a goods prize's product has no regular item on sale now
    # Coupons (flashsale.coupons): claiming a wave, redeeming a coupon, a template's budget.
    COUPON_NOT_STARTED = "COUPON_NOT_STARTED"  # the wave hands out nothing before its start time
    COUPON_CLAIM_CLOSED = "COUPON_CLAIM_CLOSED"  # the wave's end time has passed
    COUPON_LIMIT = "COUPON_LIMIT"  # the shopper claimed as many coupons of this wave as it allows
    COUPON_ISSUE_EXHAUSTED = "COUPON_ISSUE_EXHAUSTED"  # every coupon of the wave is claimed
    COUPON_USED = "COUPON_USED"  # redeemed by another order, or a single-use code already claimed
    UNKNOWN_COUPON = "UNKNOWN_COUPON"  # no such coupon, wave or code (or not the shopper's)
    BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"  # the template's budget cannot cover this discount
    # Admission (services/admission_gate.py): the hidden path, the waiting room, hoarder control.
    SALE_TOKEN_REQUIRED = "SALE_TOKEN_REQUIRED"  # the item is bought only with a sale token
    SALE_TOKEN_INVALID = "SALE_TOKEN_INVALID"  # forged, expired, spent, or for another item or shopper
    IN_QUEUE = "IN_QUEUE"  # the item's waiting room has not admitted this shopper (or the window ended)
    QUEUE_TICKET_INVALID = "QUEUE_TICKET_INVALID"  # a waiting-room ticket that is not ours
    HOARDER_BLOCKED = "HOARDER_BLOCKED"  # too many expired holds in this campaign: no more holds
    HOARDER_THROTTLED = "HOARDER_THROTTLED"  # expired holds: fewer units of an item than others may hold
    HOLDS_CAPPED = "HOLDS_CAPPED"  # this address or device has the campaign's cap of live holds (any account)
    QUIZ_FAILED = "QUIZ_FAILED"  # no answer, a wrong one, or still waiting out a wrong one's delay
    GROUP_FULL = "GROUP_FULL"  # every seat of the group is taken
    GROUP_CLOSED = "GROUP_CLOSED"  # the group filled, failed or is past its deadline
    ALREADY_BOUND = "ALREADY_BOUND"  # an invitee binds one invite code, once
    SELF_REFERRAL = "SELF_REFERRAL"  # a shopper's own invite code
    REFERRAL_LOOP = "REFERRAL_LOOP"  # binding would make the inviter an invitee of their invitee
    NOT_FIRST_ORDER = "NOT_FIRST_ORDER"  # an invite code bound after the shopper's first order


class FlashSaleError(Exception):
    """A refusal with a stable code; raising it must leave no partial write behind."""

    def __init__(
        self, code: ErrorCode, message: str | None = None, *, retry_after_s: float | None = None
    ) -> None:
        self.code = code
        self.message = message or code.value.replace("_", " ").lower()
        # For a temporary refusal (SALE_PAUSED): how long until a retry may succeed; edges say Retry-After.
        self.retry_after_s = retry_after_s
        super().__init__(f"{code.value}: {self.message}")
