"""The waiting room over HTTP (services/waiting_room.py) on the in-process and Redis engines: shoppers
who come before the open are put in line in the order the recorded seed gives, later ones queue
behind; admitted shoppers buy within their window, the others hear IN_QUEUE; polls show the place and
an ETA from the measured rate; a refresh keeps one's place; tickets cannot be forged; the room closes
for everyone once the item is sold out; a ticket polling faster than its `poll_after_s` hears 429, once
even under a burst; a retry of a purchase after its window ended replays the order."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flashsale.api.main import create_app
from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.domain.admission import arrival_order
from flashsale.domain.errors import FlashSaleError
from tests.conftest import T0
from tests.engines import POSTGRES_REDIS, SQLITE
from tests.factories import open_sale, release_together
from tests.integration.api_support import Api, assert_refused, open_api

pytestmark = pytest.mark.engines(SQLITE, POSTGRES_REDIS)

OPENS_AT = T0 + timedelta(minutes=1)
QUOTA, WINDOW_S = 3, 30


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


@pytest.fixture
def item(api: Api, platform: Platform) -> int:
    """Three units on sale from OPENS_AT (a minute after now), one each, behind a room with K = 1."""
    item_id = open_sale(platform, opens_at=OPENS_AT, quota=QUOTA, per_user_limit=1, payment_window_s=900)
    answer = api.client.patch(
        f"/admin/items/{item_id}/admission",
        json={"waiting_room_k": 1, "buy_window_s": WINDOW_S},
        headers=api.admin,
    )
    assert answer.status_code == 200, answer.text
    return item_id


def join(api: Api, item: int, shopper: str) -> dict[str, Any]:
    answer = api.client.post(f"/items/{item}/queue", headers=api.shopper(shopper))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def poll(api: Api, item: int, ticket: str) -> dict[str, Any]:
    answer = api.client.get(f"/items/{item}/queue", headers={"Queue-Ticket": ticket})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_early_shoppers_are_admitted_in_the_recorded_order_then_later_ones_in_turn(
    api: Api, clock: ManualClock, item: int
) -> None:
    early = [f"early{n}" for n in range(8)]
    tickets = {s: join(api, item, s)["ticket"] for s in early}
    early_polls = [poll(api, item, t) for t in tickets.values()]
    assert {p["state"] for p in early_polls} == {"before_open"}
    assert {p["poll_after_s"] for p in early_polls} == {60.0}  # ask again when the session opens
    clock.set(OPENS_AT.timestamp() + 1)
    later = ["late0", "late1"]
    tickets |= {s: join(api, item, s)["ticket"] for s in later}

    record = api.client.get(f"/admin/items/{item}/waiting-room", headers=api.admin).json()
    assert record["early"] == arrival_order(early, record["seed"])
    assert record["line"] == record["early"] + later
    line = record["line"]
    states = {s: poll(api, item, tickets[s]) for s in line}
    assert [states[s]["state"] for s in line] == ["admitted"] * QUOTA + ["waiting"] * (len(line) - QUOTA)
    assert [states[s]["ahead"] for s in line[QUOTA:]] == list(range(len(line) - QUOTA))
    assert states[line[QUOTA]]["eta_s"] is None  # all three were admitted this instant: no rate yet
    assert states[line[QUOTA]]["poll_after_s"] == 5.0
    assert states[line[0]]["poll_after_s"] is None  # admitted: nothing to wait for

    clock.advance(10)  # three admitted in ten seconds: the next in line is ~3.3 s away
    next_in_line = poll(api, item, tickets[line[QUOTA]])
    assert next_in_line["eta_s"] == pytest.approx(10 / 3)
    assert next_in_line["poll_after_s"] == 1.0  # a quarter of the ETA, at least a second
    waiting = line[QUOTA]
    before = api.snapshot(item)
    assert_refused(api.buy(waiting, item), 409, "IN_QUEUE")
    assert_refused(
        api.client.post(f"/items/{item}/sale-token", headers=api.shopper(waiting)), 409, "IN_QUEUE"
    )
    assert_refused(api.buy("never-joined", item), 409, "IN_QUEUE")
    assert api.snapshot(item) == before
    assert join(api, item, waiting)["ahead"] == 0  # a refresh keeps one's place

    first = line[0]
    assert api.buy(first, item).status_code == 201  # admitted: buys within the window
    clock.advance(WINDOW_S)  # every window ended: the next are admitted for the stock left
    assert poll(api, item, tickets[first])["state"] == "window_ended"
    assert poll(api, item, tickets[waiting])["state"] == "admitted"
    assert api.buy(waiting, item).status_code == 201


def test_forged_tickets_are_refused(api: Api, clock: ManualClock, item: int) -> None:
    clock.set(OPENS_AT.timestamp())
    ticket = join(api, item, "ann")["ticket"]
    prefix, who, signature = ticket.split(".")
    for forged in (
        f"{prefix}.{who}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
        f"{prefix}.Ym9i.{signature}",  # "bob" with ann's signature
        f"{int(prefix) + 1}.{who}.{signature}",
        "nonsense",
        "1.%%%.x",
    ):
        answer = api.client.get(f"/items/{item}/queue", headers={"Queue-Ticket": forged})
        assert_refused(answer, 403, "QUEUE_TICKET_INVALID")
    other = api.client.get(f"/items/{item + 1}/queue", headers={"Queue-Ticket": ticket})
    assert other.status_code == 404  # no such item (and so no room)


def test_the_room_closes_for_everyone_once_the_item_is_sold_out(
    api: Api, clock: ManualClock, item: int
) -> None:
    clock.set(OPENS_AT.timestamp())
    tickets = {s: join(api, item, s)["ticket"] for s in [f"s{n}" for n in range(6)]}
    admitted = [s for s, t in tickets.items() if poll(api, item, t)["state"] == "admitted"]
    assert len(admitted) == QUOTA
    for shopper in admitted:
        order = api.buy(shopper, item).json()
        paid = api.client.post(f"/orders/{order['id']}/pay", headers=api.shopper(shopper))
        assert paid.status_code == 200, paid.text
    clock.advance(5)  # the waiting tickets' poll_after_s
    assert {poll(api, item, t)["state"] for t in tickets.values()} == {"closed"}
    assert join(api, item, "latecomer")["state"] == "closed"


def test_the_poll_fast_path_answers_as_the_route_does(
    api: Api, platform: Platform, clock: ManualClock, item: int
) -> None:
    clock.set(OPENS_AT.timestamp())
    tickets = [join(api, item, f"s{n}")["ticket"] for n in range(5)]
    slow_app = create_app(platform, start_jobs=False, fast_paths=False)
    cases = [
        (f"/items/{item}/queue", {"Queue-Ticket": tickets[0]}),  # admitted (no pace: polled by both)
        (f"/items/{item}/queue", {"Queue-Ticket": tickets[4]}),  # waiting, then paced: 429 from both
        (f"/items/{item}/queue", {"Queue-Ticket": tickets[4] + "x"}),  # forged
        (f"/items/{item + 1}/queue", {"Queue-Ticket": tickets[0]}),  # no such item
        (f"/items/{item}/queue", {}),  # no ticket: the route's 422
        ("/items/99999999999/queue", {"Queue-Ticket": tickets[0]}),  # beyond an id: the route's 422
    ]
    with TestClient(slow_app) as slow:
        # A waiting ticket may poll once per poll_after_s: the two paths answer two waiting tickets
        # of the same instant alike, but for their place in line.
        fast_waiting = api.client.get(f"/items/{item}/queue", headers={"Queue-Ticket": tickets[3]}).json()
        slow_waiting = slow.get(f"/items/{item}/queue", headers={"Queue-Ticket": tickets[4]}).json()
        assert fast_waiting.pop("ahead") + 1 == slow_waiting.pop("ahead")
        assert fast_waiting.pop("ticket") == tickets[3] and slow_waiting.pop("ticket") == tickets[4]
        assert fast_waiting == slow_waiting and fast_waiting["state"] == "waiting"
        for path, headers in cases:
            fast_answer, slow_answer = api.client.get(path, headers=headers), slow.get(path, headers=headers)
            assert fast_answer.status_code == slow_answer.status_code, (path, fast_answer.text)
            assert fast_answer.json() == slow_answer.json(), path


def test_a_replay_after_the_buy_window_ended_returns_the_original_order(
    api: Api, clock: ManualClock, item: int
) -> None:
    clock.set(OPENS_AT.timestamp())
    assert join(api, item, "buyer")["state"] == "admitted"
    first = api.buy("buyer", item, key="retry-me")
    assert first.status_code == 201, first.text
    clock.advance(WINDOW_S)  # the window ended; the client retries what it never heard back
    before = api.snapshot(item)
    replay = api.buy("buyer", item, key="retry-me")
    assert replay.status_code == 200, replay.text
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    assert api.snapshot(item) == before  # nothing new held
    assert_refused(api.buy("buyer", item), 409, "IN_QUEUE")  # a new purchase still needs a window


def test_a_ticket_polling_before_its_poll_after_s_hears_429_with_the_wait(
    api: Api, clock: ManualClock, item: int
) -> None:
    clock.set(OPENS_AT.timestamp())
    tickets = [join(api, item, f"s{n}")["ticket"] for n in range(5)]  # a join sets no pace
    waiting = poll(api, item, tickets[4])
    assert waiting["state"] == "waiting" and waiting["poll_after_s"] == 5.0
    too_soon = api.client.get(f"/items/{item}/queue", headers={"Queue-Ticket": tickets[4]})
    assert_refused(too_soon, 429, "RATE_LIMITED")
    assert too_soon.headers["Retry-After"] == "5"
    clock.advance(4)
    again = api.client.get(f"/items/{item}/queue", headers={"Queue-Ticket": tickets[4]})
    assert_refused(again, 429, "RATE_LIMITED")
    assert again.headers["Retry-After"] == "1"
    assert api.buy("s0", item).status_code == 201  # the buy path does not feel the pace
    clock.advance(1)
    assert poll(api, item, tickets[4])["state"] == "waiting"  # on time: answered
    assert [poll(api, item, tickets[1])["state"] for _ in range(3)] == ["admitted"] * 3  # no pace named
    forged = api.client.get(f"/items/{item}/queue", headers={"Queue-Ticket": tickets[3] + "x"})
    assert_refused(forged, 403, "QUEUE_TICKET_INVALID")  # the ticket is checked before its pace
    assert poll(api, item, tickets[3])["state"] == "waiting"  # so a forgery spends nobody's poll


def test_a_burst_of_polls_of_one_ticket_is_answered_once(
    api: Api, platform: Platform, clock: ManualClock, item: int
) -> None:
    clock.set(OPENS_AT.timestamp())
    ticket = [join(api, item, f"s{n}")["ticket"] for n in range(5)][4]
    gate = api.client.app.state.gate  # type: ignore[attr-defined]

    def poll_once() -> str:
        try:
            return str(gate.room_status(ticket, item).state)
        except FlashSaleError as exc:
            return exc.code.value

    answers = Counter(release_together([poll_once] * 30))
    assert answers == {"waiting": 1, "RATE_LIMITED": 29}
