"""A file outbox for SMS and IM in development: one JSON line per message, each key written once."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path

from flashsale.messaging.channels.contract import Envelope, SendFailed


class FileOutbox:
    """Append messages to a JSON-lines file (fsynced); a key already in the file is not written again.

    So, unlike SMTP, this channel is exactly-once even when the dispatcher resends after a crash:
    the file itself is the record of what went out. An exclusive lock on the file makes the check
    and the append one step across threads and processes; the keys already read are kept, so each
    send reads only what other writers appended since.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: set[str] = set()
        self._read_to = 0  # bytes of the file whose keys are in _keys
        self._lock = threading.Lock()  # flock is per open file, not per thread

    def send(self, envelope: Envelope) -> str:
        """Append the message unless its key is already in the outbox; return where it is."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, open(self.path, "a+b") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                fh.seek(self._read_to)
                appended = fh.read()
                self._keys.update(json.loads(line)["key"] for line in appended.splitlines() if line.strip())
                self._read_to += len(appended)
                if envelope.key in self._keys:
                    return f"already in {self.path}"
                line = (json.dumps(_line(envelope), ensure_ascii=False) + "\n").encode()
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
                self._keys.add(envelope.key)
                self._read_to += len(line)
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
