"""The one interface every channel implements, and the guarantees the dispatcher relies on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message ready to go: `key` is unique per message and is sent along for de-duplication."""

    key: str
    channel: str
    address: str
    subject: str
    body: str


class SendFailed(Exception):
    """The channel did not take the message; `transient` says whether a retry may succeed."""

    def __init__(self, detail: str, *, transient: bool) -> None:
        super().__init__(detail)
        self.transient = transient


class Channel(Protocol):
    def send(self, envelope: Envelope) -> str:
        """Hand the message to the channel; return a receipt (what the far side said) once it took it.

        Raise SendFailed when it did not take it. A return means the far side accepted the
        message; a crash before the return leaves that unknown, so the dispatcher may send the
        same envelope again: every channel passes `envelope.key` on (Message-ID, Idempotency-Key,
        the outbox line) so the far side can tell a repeat, and the file outbox drops repeats itself.
        """
        ...
