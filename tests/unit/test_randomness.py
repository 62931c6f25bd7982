"""Tokens drawn in blocks from the OS's CSPRNG: the right shape, never handed out twice."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

from flashsale.randomness import BLOCK_BYTES, token_hex


def test_tokens_are_hex_of_the_asked_size_and_unique_across_blocks_and_threads() -> None:
    count = 3 * BLOCK_BYTES // 8  # spans several blocks
    with ThreadPoolExecutor(8) as pool:
        tokens = list(pool.map(lambda _: token_hex(8), range(count)))
    assert all(re.fullmatch(r"[0-9a-f]{16}", t) for t in tokens)
    assert len(set(tokens)) == count
    assert len(token_hex(BLOCK_BYTES + 1)) == 2 * (BLOCK_BYTES + 1)  # larger than a block


def test_a_forked_child_does_not_hand_out_its_parents_next_bytes() -> None:
    token_hex(8)  # the block is drawn and partly used before the fork
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next token, to the parent
        os.write(write_end, token_hex(16).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    child = os.read(read_end, 64).decode()
    os.close(read_end)
    assert child != token_hex(16)
