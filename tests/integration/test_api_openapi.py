"""The OpenAPI document states what the server does: required headers, bounds, allowed methods; and a
refusal of a malformed request stays small however much the request got wrong."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from flashsale.api.errors import MAX_DETAILS, MAX_TEXT
from flashsale.bootstrap import build
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.domain.sale import MAX_QUANTITY_PER_REQUEST
from tests.conftest import Sale, make_sale
from tests.integration.api_support import Api, assert_refused, open_api

HTTP_METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")
# The body cap (64 KiB by default) stops most of a flood before validation; these tests raise it
# because a 422 must stay small on its own, whatever cap a deployment chooses.
NO_BODY_CAP = 16 * 2**20


@pytest.fixture
def api(settings: Settings, clock: ManualClock) -> Iterator[Api]:
    platform = build(settings.model_copy(update={"max_body_bytes": NO_BODY_CAP}), clock=clock)
    try:
        with open_api(platform, clock) as api:
            yield api
    finally:
        platform.close()


@pytest.fixture
def sale(api: Api) -> Sale:
    return make_sale(api.platform)


@pytest.fixture
def doc(api: Api) -> dict[str, Any]:
    document: dict[str, Any] = api.client.get("/openapi.json").json()
    return document


def _component(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    schema: dict[str, Any] = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return schema


def _purchase_body_schema(doc: dict[str, Any]) -> dict[str, Any]:
    body = doc["paths"]["/purchases"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return _component(doc, body["$ref"])


def test_the_idempotency_key_is_a_required_header_of_a_purchase(doc: dict[str, Any]) -> None:
    operation = doc["paths"]["/purchases"]["post"]
    [key] = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
    assert (key["in"], key["required"]) == ("header", True)
    assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 255)
    refusal = operation["responses"]["400"]["content"]["application/json"]["schema"]
    assert refusal["$ref"].endswith("/ErrorOut")


@pytest.mark.parametrize("key", [None, ""], ids=["missing", "empty"])
def test_a_purchase_without_a_key_is_refused_400_before_its_body_is_judged(
    api: Api, sale: Sale, key: str | None
) -> None:
    headers = api.shopper("alice") | ({} if key is None else {"Idempotency-Key": key})
    for body in ({"item_id": sale.phone_id, "quantity": 1}, {"quantity": "many", "price": 1}):
        refused = api.client.post("/purchases", json=body, headers=headers)
        assert_refused(refused, 400, "IDEMPOTENCY_KEY_REQUIRED")
        assert "Idempotency-Key" in refused.json()["message"]


def test_the_document_bounds_the_quantity_as_the_ledger_does(doc: dict[str, Any]) -> None:
    quantity = _purchase_body_schema(doc)["properties"]["quantity"]
    assert quantity["type"] == "integer"
    assert (quantity["minimum"], quantity["maximum"]) == (1, MAX_QUANTITY_PER_REQUEST)


def test_a_quantity_just_outside_the_documented_bounds_is_invalid_and_just_inside_is_bought(
    api: Api, sale: Sale, doc: dict[str, Any]
) -> None:
    quantity = _purchase_body_schema(doc)["properties"]["quantity"]
    lowest, highest = int(quantity["minimum"]), int(quantity["maximum"])  # FastAPI writes them as 1.0
    for outside in (lowest - 1, highest + 1):
        assert_refused(api.buy("alice", sale.earbuds_id, outside), 422, "INVALID_QUANTITY")
    assert api.buy("alice", sale.earbuds_id, lowest).status_code == 201


def _documented_methods(doc: dict[str, Any]) -> dict[str, set[str]]:
    return {
        path: {method.upper() for method in operations if method.upper() in HTTP_METHODS}
        for path, operations in doc["paths"].items()
    }


def test_a_405_allows_every_method_the_document_lists_for_the_path(api: Api, doc: dict[str, Any]) -> None:
    for template, methods in _documented_methods(doc).items():
        path = template.format_map(_Ids())
        unsupported = next(m for m in HTTP_METHODS if m not in methods)
        refused = api.client.request(unsupported, path, headers=api.admin)
        assert_refused(refused, 405, "METHOD_NOT_ALLOWED")
        allowed = {m.strip() for m in refused.headers["Allow"].split(",")}
        assert allowed == methods, (unsupported, path)


def test_a_405_on_a_path_with_a_read_and_a_write_names_both(api: Api) -> None:
    refused = api.client.delete("/admin/products", headers=api.admin)
    assert_refused(refused, 405, "METHOD_NOT_ALLOWED")
    assert refused.headers["Allow"] == "GET, POST"


class _Ids(dict[str, str]):
    def __missing__(self, name: str) -> str:
        return "1"


def _unknown_keys(count: int) -> bytes:
    return json.dumps({f"k{i}": 0 for i in range(count)}, separators=(",", ":")).encode()


def test_ten_thousand_unknown_keys_in_a_purchase_get_a_422_of_a_few_hundred_bytes(api: Api) -> None:
    headers = {**api.shopper("alice"), "Idempotency-Key": "k", "Content-Type": "application/json"}
    refused = api.client.post("/purchases", content=_unknown_keys(10_000), headers=headers)
    assert_refused(refused, 422, "VALIDATION_ERROR")
    assert len(refused.content) < 1024
    [detail] = refused.json()["details"]
    assert (detail["loc"], detail["type"]) == (["body"], "extra_forbidden")
    assert "10000 unknown fields" in detail["msg"]  # one error standing for all, not ten thousand


def test_ten_thousand_unknown_keys_anywhere_get_a_422_of_a_few_kilobytes(api: Api) -> None:
    refused = api.client.post(
        "/admin/products",
        content=_unknown_keys(10_000),
        headers={**api.admin, "Content-Type": "application/json"},
    )
    assert_refused(refused, 422, "VALIDATION_ERROR")
    assert len(refused.content) < 4096
    assert len(refused.json()["details"]) <= MAX_DETAILS


def test_many_bad_query_values_are_listed_up_to_the_cap_and_counted_beyond(api: Api) -> None:
    refused = api.client.get("/sessions", params=[("state", "nope")] * 5000)
    assert_refused(refused, 422, "VALIDATION_ERROR")
    answer = refused.json()
    assert len(answer["details"]) == MAX_DETAILS
    assert answer["details_omitted"] == 5000 - MAX_DETAILS
    assert len(refused.content) < 4096


def test_a_huge_unknown_key_is_not_echoed_back(api: Api) -> None:
    refused = api.client.post("/admin/products", json={"k" * 50_000: 1}, headers=api.admin)
    assert_refused(refused, 422, "VALIDATION_ERROR")
    assert len(refused.content) < 4096
    locs = [part for detail in refused.json()["details"] for part in detail["loc"]]
    assert max(len(part) for part in locs) <= MAX_TEXT
