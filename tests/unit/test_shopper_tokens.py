"""The remembered-token check: exactly as strict as verifying every token from scratch."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import jwt
import pytest

from flashsale.auth import IAT_LEEWAY_S, ShopperTokens, mint_shopper_token, verify_shopper_token
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


def _signed(claims: dict[str, object]) -> str:
    return jwt.encode(claims, SECRET, algorithm="HS256")


def test_a_token_issued_beyond_the_leeway_is_refused_until_the_callers_clock_reaches_it() -> None:
    tokens = ShopperTokens(SECRET)
    future = mint_shopper_token(SECRET, "alice", 3600, now=1_000.0 + IAT_LEEWAY_S + 1)
    assert [refusal(tokens, future, 1_000.0) for _ in range(2)] == ["token issued in the future"] * 2
    assert tokens.verify(future, now=1_001.0) == "alice"


def test_a_token_issued_within_the_leeway_is_accepted() -> None:
    tokens = ShopperTokens(SECRET)
    skewed = mint_shopper_token(SECRET, "alice", 3600, now=1_000.0 + IAT_LEEWAY_S)
    assert tokens.verify(skewed, now=1_000.0) == "alice"


def test_a_remembered_token_is_checked_against_the_callers_clock_on_every_call() -> None:
    tokens = ShopperTokens(SECRET)
    token = mint_shopper_token(SECRET, "alice", 3600, now=5_000.0)
    assert tokens.verify(token, now=5_000.0) == "alice"
    # The same (now remembered) token seen by a caller whose clock is an hour behind.
    assert refusal(tokens, token, 5_000.0 - 3600) == "token issued in the future"
    with pytest.raises(FlashSaleError, match="issued in the future"):
        verify_shopper_token(SECRET, token, now=5_000.0 - 3600)


def test_a_token_without_iat_is_accepted_because_exp_still_bounds_it() -> None:
    tokens = ShopperTokens(SECRET)
    no_iat = _signed({"sub": "alice", "exp": 2_000, "role": "shopper"})
    assert tokens.verify(no_iat, now=1_000.0) == "alice"
    assert refusal(tokens, no_iat, 2_000.0) == "token expired"


@pytest.mark.parametrize(
    "claims",
    [
        {"iat": "yesterday"},
        {"iat": True},
        {"iat": None},
        {"iat": float("nan")},
        {"exp": float("nan")},
        {"exp": float("inf")},
        {"iat": float("-inf")},
    ],
    ids=str,
)
def test_a_token_whose_times_are_not_finite_numbers_is_invalid(claims: dict[str, object]) -> None:
    tokens = ShopperTokens(SECRET)
    token = _signed({"sub": "alice", "iat": 1_000, "exp": 2_000, "role": "shopper", **claims})
    assert [refusal(tokens, token, 1_000.0) for _ in range(2)] == ["invalid token"] * 2


# -- the minted-token check without PyJWT: it takes only what PyJWT takes ---------------------------
def _segments(token: str) -> list[str]:
    return token.split(".")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _sign(header: str, payload: str) -> str:
    digest = hmac.new(SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(digest)}"


def test_a_minted_token_is_checked_without_pyjwt(monkeypatch: pytest.MonkeyPatch) -> None:
    token = mint_shopper_token(SECRET, "alice", 60, now=1_000.0)

    def unused(*_: object, **__: object) -> object:
        raise AssertionError("a minted token went through PyJWT")

    monkeypatch.setattr(jwt, "decode", unused)
    assert verify_shopper_token(SECRET, token, now=1_000.0) == "alice"


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _other_spelling(segment: str) -> str:
    """The same bytes with a set unused bit in the last character: an encoding PyJWT refuses."""
    spelled = segment[:-1] + _ALPHABET[_ALPHABET.index(segment[-1]) ^ 1]
    padding = "=" * (-len(segment) % 4)
    assert base64.urlsafe_b64decode(spelled + padding) == base64.urlsafe_b64decode(segment + padding)
    return spelled


def test_a_signature_in_a_non_canonical_encoding_is_refused() -> None:
    header, payload, signature = _segments(mint_shopper_token(SECRET, "alice", 60, now=1_000.0))
    # 32 bytes take 43 characters: the last one carries 2 unused bits, which a forger may set.
    tampered = f"{header}.{payload}.{_other_spelling(signature)}"
    assert refusal(ShopperTokens(SECRET), tampered, 1_000.0) == "invalid token"


def test_a_payload_in_a_non_canonical_encoding_is_refused_even_when_signed() -> None:
    header = _segments(mint_shopper_token(SECRET, "alice", 60, now=1_000.0))[0]
    claims = {"sub": "alice", "iat": 1_000, "exp": 2_000, "role": "shopper"}
    raw = json.dumps(claims, separators=(",", ":")).encode()
    raw += b" " * ((1 - len(raw)) % 3)  # one byte past a group of three: its last character has spare bits
    spelled = _other_spelling(_b64(raw))
    assert ShopperTokens(SECRET).verify(_sign(header, _b64(raw)), now=1_000.0) == "alice"
    assert refusal(ShopperTokens(SECRET), _sign(header, spelled), 1_000.0) == "invalid token"


def test_an_unsigned_token_is_refused() -> None:
    unsigned = jwt.encode({"sub": "alice", "exp": 2_000, "role": "shopper"}, None, algorithm="none")
    assert refusal(ShopperTokens(SECRET), unsigned, 1_000.0) == "invalid token"


@pytest.mark.parametrize(
    ("extra", "accepted"),
    [
        ({"aud": "elsewhere"}, False),
        ({"nbf": 4_000_000_000}, False),
        ({"nbf": 1}, True),
        ({"jti": "x"}, True),
    ],
    ids=str,
)
def test_a_token_with_claims_beyond_the_minted_ones_is_judged_by_pyjwt(
    extra: dict[str, object], accepted: bool
) -> None:
    token = _signed({"sub": "alice", "iat": 1_000, "exp": 2_000_000_000, "role": "shopper", **extra})
    tokens = ShopperTokens(SECRET)
    if accepted:
        assert tokens.verify(token, now=1_000.0) == "alice"
    else:
        assert refusal(tokens, token, 1_000.0) == "invalid token"


def test_a_token_with_another_header_is_judged_by_pyjwt() -> None:
    token = jwt.encode(
        {"sub": "alice", "exp": 2_000, "role": "shopper"}, SECRET, algorithm="HS256", headers={"kid": "k1"}
    )
    assert ShopperTokens(SECRET).verify(token, now=1_000.0) == "alice"
