"""The quiz before a sale token (services/quiz.py) on the in-process and Redis engines: one fixed
question per shopper and item, the answer checked on the server (never sent out), a wrong answer costs
the configured wait (Retry-After) during which even the right one is refused, and only a right answer
gets the token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from tests.conftest import Sale
from tests.engines import POSTGRES_REDIS, SQLITE
from tests.integration.api_support import Api, assert_refused, open_api

pytestmark = pytest.mark.engines(SQLITE, POSTGRES_REDIS)

PENALTY_S = 30
BANK = [
    {"question": f"{n} + {n} = ?", "choices": [str(2 * n - 1), str(2 * n), str(2 * n + 1)], "answer": 1}
    for n in range(1, 6)
]


@pytest.fixture
def api(platform: Platform, clock: ManualClock, sale: Sale) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        answer = api.client.patch(
            f"/admin/items/{sale.earbuds_id}/admission",
            json={"requires_sale_token": True, "quiz": BANK, "quiz_penalty_s": PENALTY_S},
            headers=api.admin,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["quiz"] == BANK
        yield api


def token(api: Api, shopper: str, item: int, answer: int | None) -> Any:
    body = None if answer is None else {"answer": answer}
    return api.client.post(f"/items/{item}/sale-token", json=body, headers=api.shopper(shopper))


def asked(api: Api, shopper: str, item: int) -> dict[str, Any]:
    answer = api.client.get(f"/items/{item}/quiz", headers=api.shopper(shopper))
    assert answer.status_code == 200, answer.text
    question: dict[str, Any] = answer.json()
    return question


def right(question: dict[str, Any]) -> int:
    """The index of the right choice: the bank's questions are n + n."""
    n = int(question["question"].split(" ")[0])
    return int(question["choices"].index(str(2 * n)))


def test_the_right_answer_gets_the_token_and_the_question_is_fixed(api: Api, sale: Sale) -> None:
    question = asked(api, "ann", sale.earbuds_id)
    assert set(question) == {"question", "choices"}  # the answer stays on the server
    assert all(asked(api, "ann", sale.earbuds_id) == question for _ in range(3))
    assert len({asked(api, f"s{n}", sale.earbuds_id)["question"] for n in range(30)}) > 1  # a bank, not one
    refused = token(api, "ann", sale.earbuds_id, None)
    assert_refused(refused, 403, "QUIZ_FAILED")
    assert "Retry-After" not in refused.headers  # forgetting to answer costs nothing
    granted = token(api, "ann", sale.earbuds_id, right(question))
    assert granted.status_code == 201, granted.text
    bought = api.client.post(
        "/purchases",
        json={"item_id": sale.earbuds_id, "quantity": 1, "sale_token": granted.json()["token"]},
        headers={**api.shopper("ann"), "Idempotency-Key": "quiz-1"},
    )
    assert bought.status_code == 201, bought.text


def test_a_wrong_answer_costs_the_wait_even_for_the_right_one(
    api: Api, clock: ManualClock, sale: Sale
) -> None:
    question = asked(api, "bob", sale.earbuds_id)
    wrong = (right(question) + 1) % len(question["choices"])
    refused = token(api, "bob", sale.earbuds_id, wrong)
    assert_refused(refused, 403, "QUIZ_FAILED")
    assert refused.headers["Retry-After"] == str(PENALTY_S)
    clock.advance(PENALTY_S - 1)
    too_soon = token(api, "bob", sale.earbuds_id, right(question))
    assert_refused(too_soon, 403, "QUIZ_FAILED")
    assert too_soon.headers["Retry-After"] == "1"
    assert (
        token(api, "carol", sale.earbuds_id, right(asked(api, "carol", sale.earbuds_id))).status_code == 201
    )
    clock.advance(1)
    assert token(api, "bob", sale.earbuds_id, right(question)).status_code == 201


def test_no_quiz_before_the_open_or_on_items_without_one(api: Api, clock: ManualClock, sale: Sale) -> None:
    assert_refused(
        api.client.get(f"/items/{sale.phone_id}/quiz", headers=api.shopper("ann")), 404, "NOT_FOUND"
    )
    clock.advance(-1)
    assert_refused(
        api.client.get(f"/items/{sale.earbuds_id}/quiz", headers=api.shopper("ann")), 409, "SESSION_NOT_OPEN"
    )


def test_a_bad_bank_changes_nothing(api: Api, sale: Sale) -> None:
    url = f"/admin/items/{sale.earbuds_id}/admission"
    for bad in (
        [{"question": "?", "choices": ["a"], "answer": 0}],
        [{"question": "?", "choices": ["a", "b"], "answer": 2}],
        [{"question": "", "choices": ["a", "b"], "answer": 0}],
    ):
        assert_refused(api.client.patch(url, json={"quiz": bad}, headers=api.admin), 422, "VALIDATION_ERROR")
    assert api.client.get(url, headers=api.admin).json()["quiz"] == BANK
    cleared = api.client.patch(url, json={"quiz": []}, headers=api.admin).json()
    assert cleared["quiz"] == []
    assert token(api, "dan", sale.earbuds_id, None).status_code == 201  # no quiz: the token is issued
