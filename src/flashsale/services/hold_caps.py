"""Live-hold caps across accounts: one client address, or one device, holds at most N units' slots.

A scalper with fifty accounts behind one address (or one device fingerprint, the `Device-Id` header)
passes every per-shopper rule fifty times. The campaign's `HoldCaps` (domain/admission.py) bound the
holds such a source may have live at once in the campaign. A purchase claims a slot in each capped
source before the ledger decides (refused with HOLDS_CAPPED when one is full), and settles it after:
a grant keeps the slot until the hold's payment deadline, a refusal gives it back. A slot is named
by the purchase's (shopper, Idempotency-Key), so a retry of it takes no second slot.

Claims are atomic across the sources of one purchase, so a crowd of accounts racing from one
address never gets more than the cap: a dict under a lock in process, one script per claim in the
ledger's Redis (one sorted set per source, scored by deadline, all of a campaign in one slot).
A claim not settled (the process died in between) lapses after `CLAIM_S`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from redis import Redis

from flashsale.domain.admission import ItemAdmission
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import is_due

CLAIM_S = 60.0  # a claim's deadline until its decision settles it
KEY_TTL_S = 2 * 86_400  # a quiet source's set is dropped after this (wall clock), whatever it held

Source = tuple[str, str, int]  # (kind: "client" | "device", who, cap)


@dataclass(frozen=True, slots=True)
class HoldClaim:
    """The slots one purchase took; settle it once the ledger decided."""

    campaign_id: int
    sources: tuple[Source, ...]
    member: str
    fresh: bool  # False: a retry of a purchase that held its slots already


class HoldSlots(Protocol):
    """Slots per (campaign, source); every method is atomic for the campaign."""

    def claim(self, campaign_id: int, sources: tuple[Source, ...], member: str, now: float) -> int | bool:
        """Take a slot in every source, or none: the index of the first full source, else whether fresh."""
        ...

    def settle(self, claim: HoldClaim, deadline: float | None) -> None:
        """Keep the slots until `deadline` (a grant), or give fresh ones back (None: refused)."""
        ...


class MemoryHoldSlots:
    """Slots in process (the embedded default): one dict of deadlines per source, under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[tuple[int, str, str], dict[str, float]] = {}

    def claim(self, campaign_id: int, sources: tuple[Source, ...], member: str, now: float) -> int | bool:
        with self._lock:
            sets = [self._slots.setdefault((campaign_id, kind, who), {}) for kind, who, _ in sources]
            for at, (held, (_, _, cap)) in enumerate(zip(sets, sources, strict=True)):
                for gone in [m for m, deadline in held.items() if is_due(deadline, now)]:
                    del held[gone]
                if member not in held and len(held) >= cap:
                    return at
            fresh = any(member not in held for held in sets)
            for held in sets:
                held.setdefault(member, now + CLAIM_S)
            return fresh

    def settle(self, claim: HoldClaim, deadline: float | None) -> None:
        with self._lock:
            for kind, who, _ in claim.sources:
                held = self._slots.get((claim.campaign_id, kind, who), {})
                if deadline is not None:
                    held[claim.member] = deadline
                elif claim.fresh:
                    held.pop(claim.member, None)


# KEYS: the sources' sets; ARGV: member, now, claim deadline, key TTL (s), then each source's cap.
# A slot whose deadline has come is gone (`domain.holds.is_due`: now >= deadline).
_CLAIM = """
local member, now = ARGV[1], tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if not redis.call('ZSCORE', key, member) and redis.call('ZCARD', key) >= tonumber(ARGV[4 + i]) then
    return i - 1
  end
end
local fresh = 0
for _, key in ipairs(KEYS) do
  fresh = fresh + redis.call('ZADD', key, 'NX', ARGV[3], member)
  redis.call('EXPIRE', key, ARGV[4])
end
return fresh > 0 and -1 or -2
"""


class RedisHoldSlots:
    """Slots in the ledger's Redis: a sorted set per (campaign, source), member → deadline; every worker."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._claim = client.register_script(_CLAIM)

    def _key(self, campaign_id: int, kind: str, who: str) -> str:
        return f"{self._prefix}:{{caps:{campaign_id}}}:{kind}:{who}"  # one slot per campaign

    def claim(self, campaign_id: int, sources: tuple[Source, ...], member: str, now: float) -> int | bool:
        keys = [self._key(campaign_id, kind, who) for kind, who, _ in sources]
        args: list[str | int] = [member, repr(now), repr(now + CLAIM_S), KEY_TTL_S]
        args += [cap for _, _, cap in sources]
        verdict = int(self._claim(keys=keys, args=args))
        return verdict if verdict >= 0 else verdict == -1

    def settle(self, claim: HoldClaim, deadline: float | None) -> None:
        keys = [self._key(claim.campaign_id, kind, who) for kind, who, _ in claim.sources]
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            if deadline is not None:
                pipe.zadd(key, {claim.member: deadline}, xx=True)
            elif claim.fresh:
                pipe.zrem(key, claim.member)
        pipe.execute()


class HoldCapControl:
    """Claim slots for a purchase from its address and device, as its campaign's caps say."""

    def __init__(self, slots: HoldSlots) -> None:
        self.slots = slots

    def claim(
        self,
        policy: ItemAdmission,
        *,
        shopper: str,
        request_id: str,
        client: str | None,
        device: str | None,
        now: float,
    ) -> HoldClaim | None:
        """Take the purchase's slots (None: nothing capped), or refuse with HOLDS_CAPPED."""
        caps = policy.hold_caps
        sources: list[Source] = []
        if caps.per_client is not None and client is not None:
            sources.append(("client", client, caps.per_client))
        if caps.per_device is not None and device:
            sources.append(("device", device, caps.per_device))
        if not sources:
            return None
        member = f"{len(shopper)}|{shopper}{request_id}"  # shopper and key apart whatever they hold
        verdict = self.slots.claim(policy.campaign_id, tuple(sources), member, now)
        if isinstance(verdict, bool):
            return HoldClaim(policy.campaign_id, tuple(sources), member, verdict)
        kind, _, cap = sources[verdict]
        raise FlashSaleError(
            ErrorCode.HOLDS_CAPPED,
            f"this {'address' if kind == 'client' else 'device'} has {cap} live holds in this campaign",
        )

    def settle(self, claim: HoldClaim | None, deadline: float | None) -> None:
        """Keep the slots until the hold's deadline (a grant or a replay), or give them back."""
        if claim is not None:
            self.slots.settle(claim, deadline)
