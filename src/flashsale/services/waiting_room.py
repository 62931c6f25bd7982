"""The waiting room: when demand exceeds K× an item's remaining stock, shoppers wait their turn in line.

How a room runs (an item whose terms set `waiting_room_k`):
- Shoppers join (`POST /items/{id}/queue`) and get a signed ticket. Those who join before the
  session opens are a set, not a line: at the open they are put in line in an order shuffled by a
  seed the room records (`domain.admission.arrival_order`), so being first before the open gains
  nothing. Everyone who joins later queues behind them, first come first served.
- At most K × the remaining stock shoppers hold a buy window at once; each admission gives a
  time-boxed window (`buy_window_s`) in which the shopper may buy (and ask for a sale token). When
  windows end or stock comes back, the next in line are admitted. So while demand is below K× the
  stock, a shopper is admitted as soon as they join and the room costs nothing but the join.
- Polling (`GET /items/{id}/queue` with the ticket) shows the position, and an ETA from the rate
  the room has measurably admitted at. Joining again (a refresh) keeps one's place. A ticket that
  polls before the `poll_after_s` of its last answer hears 429 (services/room_pace.py).
- Once the item is sold out for good (nothing available, nothing held that could come back) the
  room closes, and every poll says so at once.

The line lives in one engine per ledger (one contract, `Line`): a dict under a lock in process (the
embedded default), or the ledger's Redis in scale-out, where each step is one Lua script so workers
never admit the same place twice. Admission is driven by the polls themselves (no background job):
each poll or join advances the line first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple, Protocol, cast

from redis import Redis

from flashsale.domain.admission import (
    MAX_POLL_S,
    MIN_POLL_S,
    ItemAdmission,
    admission_eta_s,
    arrival_order,
    poll_after_s,
)
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.ledger.contract import Ledger
from flashsale.services.room_pace import MemoryPollPace, PollPace, too_soon

MAX_TICKET_LENGTH = 300


class Spot(NamedTuple):
    """What the line knows of one shopper and of the room, read together."""

    place: int | None  # index in line (0 = first ever); None: not in line (yet)
    early: bool  # joined before the open, waiting for the shuffle
    window_ends_at: float | None  # the shopper's buy window, while it lasts
    head: int  # how many were admitted so far (places below it)
    opened_at: float | None
    first_admit_at: float | None
    closed: bool


class Record(NamedTuple):
    """What an operator may check afterwards: the seed the early crowd was shuffled by, and the line."""

    seed: int | None
    early: tuple[str, ...]  # who arrived before the open (in the shuffled order they were put in line)
    line: tuple[str, ...]


class Line(Protocol):
    """One waiting line per item; every method is atomic for the item."""

    def join(self, item_id: int, shopper: str, now: float, opens_at: float) -> bool:
        """Join (idempotent). False when the room must be opened first (`open`), then join again."""
        ...

    def open(self, item_id: int, now: float, seed: int) -> None:
        """Put the early arrivals in line shuffled by `seed`, once; later calls change nothing."""
        ...

    def advance(self, item_id: int, now: float, capacity: int, window_s: float) -> list[str]:
        """Admit from the head while fewer than `capacity` windows are live; return who, in order."""
        ...

    def spot(self, item_id: int, shopper: str, now: float) -> Spot:
        """The shopper's place, window and the room's counters."""
        ...

    def close(self, item_id: int) -> None:
        """Close the room (the item sold out): it admits nobody from now on."""
        ...

    def record(self, item_id: int) -> Record:
        """The seed and the line, for the operator (and the tests)."""
        ...


@dataclass
class _Room:
    early: set[str] = field(default_factory=set)
    line: list[str] = field(default_factory=list)
    places: dict[str, int] = field(default_factory=dict)
    windows: dict[str, float] = field(default_factory=dict)
    head: int = 0
    seed: int | None = None
    early_count: int = 0
    opened_at: float | None = None
    first_admit_at: float | None = None
    closed: bool = False


class MemoryLine:
    """The line in process (the embedded default): one lock, one `_Room` per item."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rooms: dict[int, _Room] = {}

    def _room(self, item_id: int) -> _Room:
        return self._rooms.setdefault(item_id, _Room())

    def join(self, item_id: int, shopper: str, now: float, opens_at: float) -> bool:
        with self._lock:
            room = self._room(item_id)
            if room.opened_at is None:
                if now < opens_at:
                    room.early.add(shopper)
                    return True
                return False
            if shopper not in room.places:
                room.places[shopper] = len(room.line)
                room.line.append(shopper)
            return True

    def open(self, item_id: int, now: float, seed: int) -> None:
        with self._lock:
            room = self._room(item_id)
            if room.opened_at is not None:
                return
            for shopper in arrival_order(room.early, seed):
                room.places[shopper] = len(room.line)
                room.line.append(shopper)
            room.early_count, room.early = len(room.early), set()
            room.seed, room.opened_at = seed, now

    def advance(self, item_id: int, now: float, capacity: int, window_s: float) -> list[str]:
        with self._lock:
            room = self._room(item_id)
            if room.opened_at is None or room.closed:
                return []
            room.windows = {s: ends for s, ends in room.windows.items() if ends > now}
            admit = min(capacity - len(room.windows), len(room.line) - room.head)
            if admit <= 0:
                return []
            admitted = room.line[room.head : room.head + admit]
            for shopper in admitted:
                room.windows[shopper] = now + window_s
            if room.head == 0:
                room.first_admit_at = now
            room.head += admit
            return admitted

    def spot(self, item_id: int, shopper: str, now: float) -> Spot:
        with self._lock:
            room = self._room(item_id)
            ends = room.windows.get(shopper)
            return Spot(
                room.places.get(shopper),
                shopper in room.early,
                ends if ends is not None and ends > now else None,
                room.head,
                room.opened_at,
                room.first_admit_at,
                room.closed,
            )

    def close(self, item_id: int) -> None:
        with self._lock:
            self._room(item_id).closed = True

    def record(self, item_id: int) -> Record:
        with self._lock:
            room = self._room(item_id)
            return Record(room.seed, tuple(room.line[: room.early_count]), tuple(room.line))


_JOIN = """
if redis.call('HEXISTS', KEYS[4], 'opened_at') == 0 then
  if tonumber(ARGV[2]) < tonumber(ARGV[3]) then
    redis.call('SADD', KEYS[1], ARGV[1])
    return 1
  end
  return 0
end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 then
  redis.call('HSET', KEYS[3], ARGV[1], redis.call('RPUSH', KEYS[2], ARGV[1]) - 1)
end
return 1
"""
# ARGV: now, seed, how many early arrivals the caller shuffled, then them in shuffled order. The set
# only grows until the open, so the same size means the same set; otherwise the caller reads again.
_OPEN = """
if redis.call('HEXISTS', KEYS[4], 'opened_at') == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) ~= tonumber(ARGV[3]) then return 0 end
for i = 4, #ARGV do
  redis.call('HSET', KEYS[3], ARGV[i], redis.call('RPUSH', KEYS[2], ARGV[i]) - 1)
end
redis.call('HSET', KEYS[4], 'opened_at', ARGV[1], 'seed', ARGV[2], 'head', 0, 'early', #ARGV - 3)
redis.call('DEL', KEYS[1])
return 1
"""
_ADVANCE = """
if redis.call('HEXISTS', KEYS[3], 'opened_at') == 0 or redis.call('HEXISTS', KEYS[3], 'closed') == 1 then
  return {}
end
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local head = tonumber(redis.call('HGET', KEYS[3], 'head'))
local admit = math.min(tonumber(ARGV[2]) - redis.call('ZCARD', KEYS[2]), redis.call('LLEN', KEYS[1]) - head)
if admit <= 0 then return {} end
local ends = now + tonumber(ARGV[3])
local admitted = redis.call('LRANGE', KEYS[1], head, head + admit - 1)
for _, shopper in ipairs(admitted) do
  redis.call('ZADD', KEYS[2], ends, shopper)
end
if head == 0 then redis.call('HSET', KEYS[3], 'first_admit_at', ARGV[1]) end
redis.call('HSET', KEYS[3], 'head', head + admit)
return admitted
"""


class RedisLine:
    """The line in the ledger's Redis (scale-out): every worker sees one line; one script per step."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._join = client.register_script(_JOIN)
        self._open = client.register_script(_OPEN)
        self._advance = client.register_script(_ADVANCE)

    def _keys(self, item_id: int) -> tuple[str, str, str, str, str]:
        base = f"{self._prefix}:{{wr:{item_id}}}"  # one hash slot per room
        return f"{base}:early", f"{base}:line", f"{base}:places", f"{base}:meta", f"{base}:windows"

    def join(self, item_id: int, shopper: str, now: float, opens_at: float) -> bool:
        early, line, places, meta, _ = self._keys(item_id)
        return bool(self._join(keys=[early, line, places, meta], args=[shopper, repr(now), repr(opens_at)]))

    def open(self, item_id: int, now: float, seed: int) -> None:
        early, line, places, meta, _ = self._keys(item_id)
        if self._client.hexists(meta, "opened_at"):  # the common case: asked at every poll
            return
        while True:  # retried only if someone joined early between the read and the script
            crowd = cast(set[str], self._client.smembers(early))  # the client decodes responses
            order = arrival_order(crowd, seed)
            if self._open(keys=[early, line, places, meta], args=[repr(now), seed, len(crowd), *order]):
                return

    def advance(self, item_id: int, now: float, capacity: int, window_s: float) -> list[str]:
        _, line, _, meta, windows = self._keys(item_id)
        return list(self._advance(keys=[line, windows, meta], args=[repr(now), capacity, repr(window_s)]))

    def spot(self, item_id: int, shopper: str, now: float) -> Spot:
        early, _, places, meta, windows = self._keys(item_id)
        pipe = self._client.pipeline(transaction=False)
        pipe.hget(places, shopper)
        pipe.sismember(early, shopper)
        pipe.zscore(windows, shopper)
        pipe.hgetall(meta)
        place, is_early, ends, info = pipe.execute()
        return Spot(
            None if place is None else int(place),
            bool(is_early),
            ends if ends is not None and ends > now else None,
            int(info.get("head", 0)),
            float(info["opened_at"]) if "opened_at" in info else None,
            float(info["first_admit_at"]) if "first_admit_at" in info else None,
            "closed" in info,
        )

    def close(self, item_id: int) -> None:
        self._client.hset(self._keys(item_id)[3], "closed", 1)

    def record(self, item_id: int) -> Record:
        _, line, _, meta, _ = self._keys(item_id)
        info = self._client.hgetall(meta)
        everyone = tuple(cast(list[str], self._client.lrange(line, 0, -1)))
        seed = int(info["seed"]) if "seed" in info else None
        return Record(seed, everyone[: int(info.get("early", 0))], everyone)


class RoomState(StrEnum):
    BEFORE_OPEN = "before_open"  # joined before the open: the line is drawn when the session opens
    WAITING = "waiting"
    ADMITTED = "admitted"  # a live buy window: buy (and ask for a sale token) before it ends
    WINDOW_ENDED = "window_ended"  # was admitted, did not buy in time: the place is spent
    CLOSED = "closed"  # the item sold out


@dataclass(frozen=True, slots=True)
class RoomStatus:
    item_id: int
    state: RoomState
    ahead: int | None  # shoppers admitted before you, from now on (waiting only)
    eta_s: float | None  # at the measured admission rate; None before anyone was admitted
    window_ends_at: float | None
    ticket: str
    poll_after_s: float | None = None  # while waiting: when to ask again (domain.admission.poll_after_s)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def room_ticket(key: bytes, item_id: int, shopper: str) -> str:
    """A signed ticket: it names the item and the shopper, and only the holder of `key` can make it."""
    mac = hmac.new(key, f"room\n{item_id}\n{shopper}".encode(), hashlib.sha256).digest()
    return f"{item_id}.{_b64(shopper.encode())}.{_b64(mac)}"


class WaitingRoom:
    """Join, poll and check admission of items' waiting rooms; see the module doc."""

    def __init__(
        self,
        line: Line,
        ledger: Ledger,
        key: bytes,
        *,
        pace: PollPace | None = None,
        seeds: Callable[[], int] = lambda: secrets.randbits(63),
    ) -> None:
        self.line = line
        self.pace = pace if pace is not None else MemoryPollPace()
        self._ledger = ledger
        self._key = key
        self._seeds = seeds  # tests pass a fixed seed; the one used is recorded either way

    def ticket(self, item_id: int, shopper: str) -> str:
        """The shopper's signed ticket for the item's room."""
        return room_ticket(self._key, item_id, shopper)

    def holder(self, ticket: str, item_id: int) -> str:
        """The shopper a ticket was issued to for this item, or QUEUE_TICKET_INVALID."""
        parts = ticket.split(".") if len(ticket) <= MAX_TICKET_LENGTH else []
        try:
            if len(parts) != 3 or parts[0] != str(item_id):
                raise ValueError("not this item's")
            shopper = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode()
        except ValueError as exc:  # bad base64 or UTF-8 too
            raise FlashSaleError(ErrorCode.QUEUE_TICKET_INVALID, "the queue ticket is not valid") from exc
        if not hmac.compare_digest(ticket, room_ticket(self._key, item_id, shopper)):
            raise FlashSaleError(ErrorCode.QUEUE_TICKET_INVALID, "the queue ticket is not valid")
        return shopper

    def join(self, policy: ItemAdmission, shopper: str, now: float) -> RoomStatus:
        """Join the item's line (a refresh keeps one's place) and say where one stands."""
        if not self.line.join(policy.item_id, shopper, now, policy.opens_at):
            self.line.open(policy.item_id, now, self._seeds())
            self.line.join(policy.item_id, shopper, now, policy.opens_at)
        return self.status(policy, shopper, now)

    def poll(self, policy: ItemAdmission, ticket: str, now: float) -> RoomStatus:
        """Where the ticket's holder stands; RATE_LIMITED if it polls before its last `poll_after_s`.

        The refusal costs the ticket's check and one look-up of its pace (services/room_pace.py):
        neither the line nor the ledger is read.
        """
        shopper = self.holder(ticket, policy.item_id)
        wait = self.pace.claim(policy.item_id, shopper, now)
        if wait is not None:
            raise too_soon(wait)
        answer = self.status(policy, shopper, now)
        self.pace.next_at(policy.item_id, shopper, now + (answer.poll_after_s or 0.0))
        return answer

    def status(self, policy: ItemAdmission, shopper: str, now: float) -> RoomStatus:
        """Advance the line, then say where the shopper stands: waiting (how many ahead, ETA), admitted…"""
        item_id = policy.item_id
        self._advance(policy, now)
        spot = self.line.spot(item_id, shopper, now)
        ticket = self.ticket(item_id, shopper)
        if spot.closed:
            return RoomStatus(item_id, RoomState.CLOSED, None, None, None, ticket)
        if spot.early:  # before the open: ask again when it comes, at most a minute from now
            wait = min(MAX_POLL_S, max(MIN_POLL_S, policy.opens_at - now))
            return RoomStatus(item_id, RoomState.BEFORE_OPEN, None, None, None, ticket, wait)
        if spot.window_ends_at is not None:
            return RoomStatus(item_id, RoomState.ADMITTED, 0, 0.0, spot.window_ends_at, ticket)
        if spot.place is None:
            raise FlashSaleError(ErrorCode.IN_QUEUE, "join the waiting room first")
        if spot.place < spot.head:
            return RoomStatus(item_id, RoomState.WINDOW_ENDED, None, None, None, ticket)
        ahead = spot.place - spot.head
        elapsed = now - spot.first_admit_at if spot.first_admit_at is not None else 0.0
        eta = admission_eta_s(ahead + 1, spot.head, elapsed)
        return RoomStatus(item_id, RoomState.WAITING, ahead, eta, None, ticket, poll_after_s(eta))

    def check_admitted(
        self, policy: ItemAdmission, shopper: str, now: float, *, replay: Callable[[], bool] | None = None
    ) -> None:
        """Refuse with IN_QUEUE unless the shopper holds a live buy window for the item.

        A shopper whose window has ended passes if `replay()` says the purchase is a retry of an
        order placed before (it is asked only then, so a crowd still waiting costs no lookup).
        """
        spot = self.line.spot(policy.item_id, shopper, now)
        window_ended = spot.place is not None and spot.place < spot.head
        if spot.window_ends_at is None and not (window_ended and replay is not None and replay()):
            raise FlashSaleError(
                ErrorCode.IN_QUEUE,
                "this item has a waiting room: join it and buy once admitted, within your window",
            )

    def _advance(self, policy: ItemAdmission, now: float) -> None:
        if now < policy.opens_at:
            return
        level = self._ledger.stock(policy.item_id)
        if level.available == 0 and level.held == 0:  # nothing left and nothing that could come back
            self.line.close(policy.item_id)
            return
        assert policy.waiting_room_k is not None
        self.line.open(policy.item_id, now, self._seeds())  # nobody joined since the open: open it now
        capacity = policy.waiting_room_k * level.available
        self.line.advance(policy.item_id, now, capacity, policy.buy_window_s)
