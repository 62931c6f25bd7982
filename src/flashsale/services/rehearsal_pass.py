"""Rehearsal passes: what lets a load rehearsal's crowd, and only it, buy the rehearsal's copy.

A copy made for a rehearsal (services/rehearsal_copy.py) is hidden from the shop window, and its
items are sold only to purchases that carry its pass: an HMAC of the copy's campaign id under the
admission key, derived under a label of its own (so a pass is never a sale token or a queue ticket,
nor one of those a pass). The operator gets it with the copy (`POST /admin/campaigns/ID/rehearsals`)
and `flashsale rehearse` sends it as `rehearsal_pass` with each purchase; the admission gate checks
it from memory, so a rehearsal costs the buy path no read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


class RehearsalPasses:
    """Issue and check the passes of rehearsal copies."""

    def __init__(self, key: bytes) -> None:
        self._key = hmac.new(key, b"flashsale rehearsal passes", hashlib.sha256).digest()

    def issue(self, campaign_id: int) -> str:
        """The pass of the rehearsal copy `campaign_id` (the same every time it is asked for)."""
        mac = hmac.new(self._key, f"rehearsal|{campaign_id}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def admits(self, campaign_id: int, presented: str | None) -> bool:
        """Whether `presented` is the pass of copy `campaign_id` (compared in constant time)."""
        return presented is not None and hmac.compare_digest(self.issue(campaign_id), presented)
