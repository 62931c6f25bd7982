"""Randomness for draws: the operating system's CSPRNG in production, a seeded generator in tests."""

from __future__ import annotations

import secrets
from typing import Protocol


class Rng(Protocol):
    """What draws need of a random source; `secrets.SystemRandom` and `random.Random(seed)` both fit."""

    def getrandbits(self, k: int, /) -> int: ...


def system_rng() -> Rng:
    """The production source: `secrets` (os.urandom), unpredictable and not seedable."""
    return secrets.SystemRandom()


def new_seed(rng: Rng) -> str:
    """A 256-bit seed as 64 hex digits, for a scheduled draw's record."""
    return f"{rng.getrandbits(256):064x}"
