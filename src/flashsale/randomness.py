"""Random tokens from the operating system's CSPRNG, drawn in blocks: one system call serves many.

A system call costs far more than encoding a few bytes (tens of µs on a sandboxed kernel), and a
batch of pays drew two per payment (its automatic key and the sandbox's charge reference): about a
quarter of the batch's CPU in the demo. Tokens here are as unpredictable as `secrets.token_hex`'s,
since every byte still comes from `os.urandom` and is handed out once. Thread-safe; a forked child
starts with an empty block, so it never hands out bytes its parent also hands out.
"""

from __future__ import annotations

import os
import threading

BLOCK_BYTES = 4096

_lock = threading.Lock()
_block = b""
_at = 0


def token_hex(nbytes: int) -> str:
    """Return `nbytes` random bytes as 2 × `nbytes` hex digits, like `secrets.token_hex`."""
    global _block, _at
    with _lock:
        if _at + nbytes > len(_block):
            _block, _at = os.urandom(max(BLOCK_BYTES, nbytes)), 0
        chunk = _block[_at : _at + nbytes]
        _at += nbytes
    return chunk.hex()


def _forget_block() -> None:
    global _lock, _block, _at
    # A fresh lock too: the fork may have copied it held by a thread that does not exist in the child.
    _lock, _block, _at = threading.Lock(), b"", 0


os.register_at_fork(after_in_child=_forget_block)
