"""The remembered-token check: exactly as strict as verifying every token from scratch."""

from __future__ import annotations

import jwt
import pytest

from flashsale.auth import ShopperTokens, mint_shopper_token
from flashsale.domain.errors import ErrorCode, FlashSaleError

SECRET = "a-secret-of-at-least-thirty-two-bytes"
OTHER_SECRET = "another-secret-of-at-least-32-bytes!"


def refusal(tokens: ShopperTokens, token: str, now: float) -> str:
    """Return the message of the UNAUTHENTICATED refusal the token must get."""
    with pytest.raises(FlashSaleError) as refused:
        tokens.verify(token, now=now)
    assert refused.value.code is ErrorCode.UNAUTHENTICATED
    return refused.value.message


def test_a_remembered_token_still_expires_on_the_callers_clock() -> None:
    tokens = ShopperTokens(SECRET)
    token = mint_shopper_token(SECRET, "alice", 60, now=1_000.0)
    assert tokens.verify(token, now=1_000.0) == "alice"
    assert tokens.verify(token, now=1_059.0) == "alice"
    assert refusal(tokens, token, 1_060.0) == "token expired"


def test_a_token_signed_with_another_key_is_refused_every_time() -> None:
    tokens = ShopperTokens(SECRET)
    good = mint_shopper_token(SECRET, "alice", 60, now=1_000.0)
    forged = mint_shopper_token(OTHER_SECRET, "alice", 60, now=1_000.0)
    assert tokens.verify(good, now=1_000.0) == "alice"
    assert [refusal(tokens, forged, 1_000.0) for _ in range(2)] == ["invalid token"] * 2


def test_a_well_signed_token_with_the_wrong_role_is_refused_every_time() -> None:
    tokens = ShopperTokens(SECRET)
    admin = jwt.encode({"sub": "alice", "exp": 2_000, "role": "admin"}, SECRET, algorithm="HS256")
    assert [refusal(tokens, admin, 1_000.0) for _ in range(2)] == ["invalid token"] * 2


def test_more_shoppers_than_the_cache_holds_each_get_their_own_name() -> None:
    tokens = ShopperTokens(SECRET, size=2)
    minted = {f"u{n}": mint_shopper_token(SECRET, f"u{n}", 60, now=1_000.0) for n in range(5)}
    for _ in range(2):
        assert {user: tokens.verify(token, now=1_001.0) for user, token in minted.items()} == {
            user: user for user in minted
        }
