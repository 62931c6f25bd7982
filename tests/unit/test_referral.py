"""Referral rules: no self-referral, no loops, one key per pair either way, codes that read aloud."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.referral import (
    CODE_ALPHABET,
    CODE_LENGTH,
    check_binding,
    new_code,
    normalised,
    pair_key,
)

users = st.text(alphabet="abcdefgh", min_size=1, max_size=4)


def refusal(invitee: str, inviter: str, line: list[str]) -> ErrorCode | None:
    try:
        check_binding(invitee, inviter, line)
    except FlashSaleError as exc:
        return exc.code
    return None


def test_a_shopper_cannot_use_their_own_code_nor_close_a_loop() -> None:
    assert refusal("ann", "ann", []) is ErrorCode.SELF_REFERRAL
    assert refusal("ann", "bob", ["ann"]) is ErrorCode.REFERRAL_LOOP  # ann invited bob: bob cannot invite ann
    assert refusal("ann", "cat", ["bob", "ann"]) is ErrorCode.REFERRAL_LOOP  # up the line too
    assert refusal("ann", "bob", ["cat"]) is None


@given(users, users, st.lists(users, max_size=5))
def test_a_binding_is_refused_exactly_when_it_points_back_at_the_invitee(
    invitee: str, inviter: str, line: list[str]
) -> None:
    refused = refusal(invitee, inviter, line)
    assert (refused is not None) == (invitee == inviter or invitee in line)


@given(users, users)
def test_a_pair_has_one_key_whichever_way_it_is_bound(a: str, b: str) -> None:
    assert pair_key(a, b) == pair_key(b, a)
    assert (pair_key(a, b) == pair_key(a, a)) == (a == b)


def test_codes_use_an_alphabet_without_look_alikes_and_are_read_case_blind() -> None:
    code = new_code()
    assert len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET)
    assert normalised(f"  {code.lower()} ") == code


@pytest.mark.parametrize("a,b", [("a", "ab"), ("ab", "a")])
def test_pairs_of_different_shoppers_do_not_collide(a: str, b: str) -> None:
    assert pair_key(a, b) != pair_key(a + "x", b)
