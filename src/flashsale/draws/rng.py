"""Randomness for draws: the operating system's CSPRNG in production, a seeded generator in tests."""

from __future__ import annotations

import os
import secrets
from typing import Protocol


class Rng(Protocol):
    """What draws need of a random source; `secrets.SystemRandom` and `random.Random(seed)` both fit."""

    def getrandbits(self, k: int, /) -> int: ...


def system_rng() -> Rng:
    """The production source: `secrets` (os.urandom), unpredictable and not seedable."""
    return secrets.SystemRandom()


class BufferedSystemRng:
    """The OS's CSPRNG drawn in blocks: one `os.urandom` call serves a few hundred rolls.

    A system call per roll cost the in-process draw ledger about 40 % of its throughput. Not
    thread-safe, and a block copied into a forked child would be replayed there: only the
    in-process draw ledger uses it, under its own lock, in the one process that owns it.
    """

    def __init__(self, block_bytes: int = 4096) -> None:
        self._block = block_bytes
        self._buffer = b""
        self._at = 0

    def getrandbits(self, k: int, /) -> int:
        """Return a uniform integer of `k` bits."""
        size = (k + 7) // 8
        if self._at + size > len(self._buffer):
            self._buffer, self._at = os.urandom(max(self._block, size)), 0
        chunk = self._buffer[self._at : self._at + size]
        self._at += size
        return int.from_bytes(chunk, "big") >> (size * 8 - k)


def new_seed(rng: Rng) -> str:
    """A 256-bit seed as 64 hex digits, for a scheduled draw's record."""
    return f"{rng.getrandbits(256):064x}"
