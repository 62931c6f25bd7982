"""Referral rewards as rules without storage.

A shopper has one invite code. An invitee binds one code, once, before their first order; not
their own (SELF_REFERRAL), and not one that would close a loop (REFERRAL_LOOP: B, invited by A,
cannot invite A, nor can anyone up A's line). When the invitee's first paid order has stayed paid
through the settle period (the refund window), both sides get the configured reward, once. A first
paid order refunded before that voids the referral: no reward, then or later. Granting after the
settle period rather than revoking on refund means a reward is never taken back after it may have
been spent (points redeemed, a coupon used); a refund after the period leaves the reward standing.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from flashsale.domain.errors import ErrorCode, FlashSaleError

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: codes are read aloud and typed
CODE_LENGTH = 8
MAX_CHAIN = 64  # how far up an inviter's line the loop check looks


class BindingStatus(StrEnum):
    BOUND = "BOUND"  # waiting for the invitee's first paid order
    QUALIFIED = "QUALIFIED"  # first paid order known; waiting out the settle period
    REWARDED = "REWARDED"  # both sides rewarded
    VOID = "VOID"  # no reward: the first paid order was refunded in time, or an order came before binding


class Side(StrEnum):
    INVITER = "inviter"
    INVITEE = "invitee"


@dataclass(frozen=True, slots=True)
class RewardTerms:
    """What each side gets, and how long the first paid order must stay paid first."""

    inviter_points: int
    invitee_points: int
    coupon_template: str | None
    settle_s: int

    def points(self, side: Side) -> int:
        return self.inviter_points if side is Side.INVITER else self.invitee_points


def new_code() -> str:
    """A fresh invite code (random: codes are not guessable from user ids)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalised(code: str) -> str:
    """The code as stored: upper case, without spaces around it."""
    return code.strip().upper()


def check_binding(invitee_id: str, inviter_id: str, inviter_line: Sequence[str]) -> None:
    """Refuse a self-referral or a loop; `inviter_line` is who invited the inviter, then who invited them…"""
    if invitee_id == inviter_id:
        raise FlashSaleError(ErrorCode.SELF_REFERRAL, "a shopper cannot use their own invite code")
    if invitee_id in inviter_line:
        raise FlashSaleError(ErrorCode.REFERRAL_LOOP, "this code's owner was invited by this shopper")


def pair_key(a: str, b: str) -> str:
    """One key for A inviting B and B inviting A: stored UNIQUE, it refuses the second of a racing pair."""
    low, high = sorted((a, b))
    return f"{len(low)}:{low}|{high}"  # the length keeps ("a|b", "c") apart from ("a", "b|c")


def reward_source(invitee_id: str, side: Side) -> str:
    """What a reward entry is for; stored UNIQUE, so each side of a referral is rewarded once."""
    return f"referral:{invitee_id}:{side.value}"
