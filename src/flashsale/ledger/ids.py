"""Hold ids, which are also order ids: unguessable, so that an id says nothing about sales volume.

An id is 18 bytes (144 bits) from the operating system's CSPRNG (`os.urandom`, which `secrets`
draws from too), written as URL-safe base64: 24 characters of `A-Z a-z 0-9 - _`, without padding
since 18 bytes are a whole number of base64 groups. That fits `orders.id` (VARCHAR(40)), a URL
path, and the `|`-separated arguments of the Redis scripts. With 144 random bits, ids are unique
without coordination between processes or restarts (a collision among 10^12 ids has a chance of
about 10^-20); and unlike a prefix plus a counter, two order ids do not let anyone count the orders
placed between them.

Randomness is drawn in bulk, since one system call costs several times what encoding one id does:
`new_hold_ids` encodes a whole batch from one draw, and `HoldIdPool` hands single ids out of such a
batch.
"""

from __future__ import annotations

import os
from base64 import urlsafe_b64encode

HOLD_ID_BYTES = 18
HOLD_ID_LENGTH = HOLD_ID_BYTES * 4 // 3  # 24 characters
HOLD_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def new_hold_ids(count: int) -> list[str]:
    """Return `count` fresh hold ids from one draw of the OS's randomness."""
    # 18-byte groups encode to exactly 24 characters each, so one encode of the whole draw slices
    # cleanly into ids: a base64 character never straddles two ids.
    text = urlsafe_b64encode(os.urandom(HOLD_ID_BYTES * count)).decode("ascii")
    return [text[at : at + HOLD_ID_LENGTH] for at in range(0, len(text), HOLD_ID_LENGTH)]


class HoldIdPool:
    """Hand out hold ids one at a time from batches of `new_hold_ids`; callable, like a factory.

    Not thread-safe: the in-process ledger draws under its own lock. A pool belongs to one ledger
    in one process (the in-process engine refuses a second process); an engine shared by forked
    workers (Redis) draws per call with `new_hold_ids` instead, so a child can never replay ids
    buffered before the fork.
    """

    __slots__ = ("_batch", "_ids")

    def __init__(self, batch: int = 256) -> None:
        if batch < 1:
            raise ValueError("a pool draws at least one id at a time")
        self._batch = batch
        self._ids: list[str] = []

    def __call__(self) -> str:
        """Return a fresh hold id."""
        if not self._ids:
            self._ids = new_hold_ids(self._batch)
        return self._ids.pop()
