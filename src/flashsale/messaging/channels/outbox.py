"""A file outbox for SMS and IM in development: one JSON line per message, each key written once."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from flashsale.messaging.channels.contract import Envelope, SendFailed


class FileOutbox:
    """Append messages to a JSON-lines file (fsynced); a key already in the file is not written again.

    So, unlike SMTP, this channel is exactly-once even when the dispatcher resends after a crash:
    the file itself is the record of what went out. An exclusive lock on the file makes the check
    and the append one step across threads and processes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, envelope: Envelope) -> str:
        """Append the message unless its key is already in the outbox; return where it is."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a+", encoding="utf-8") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                fh.seek(0)
                if any(json.loads(line).get("key") == envelope.key for line in fh if line.strip()):
                    return f"already in {self.path}"
                fh.write(json.dumps(_line(envelope), ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise SendFailed(f"outbox not writable: {exc}", transient=True) from None
        return f"written to {self.path}"


def _line(envelope: Envelope) -> dict[str, str]:
    return {
        "key": envelope.key,
        "channel": envelope.channel,
        "to": envelope.address,
        "subject": envelope.subject,
        "body": envelope.body,
    }


def read_outbox(path: Path) -> list[dict[str, str]]:
    """Return the outbox's messages in the order written (empty if there is no file yet)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
