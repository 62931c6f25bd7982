"""A message sender run until it is killed: a child of test_messaging_crash.py.

Usage: python crash_messenger.py DATA_DIR SMTP_PORT START_EPOCH

Builds the platform on the SQLite file in DATA_DIR with a clock that starts at START_EPOCH and
runs at real speed, prints "ready", then runs the sender, printing each message key the SMTP
server took (before the sender records it as sent), one per line, flushed. It imports nothing
from the tests package, so it runs as a plain script.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from flashsale.bootstrap import build
from flashsale.config import Settings
from flashsale.messaging.channels.contract import Envelope
from flashsale.messaging.channels.smtp import SmtpChannel

SECRETS = {"jwt_secret": "crash-test-jwt-secret-0123456789", "admin_token": "a", "payment_secret": "p"}


def settings_for(data_dir: Path, smtp_port: int) -> Settings:
    """Return the settings parent and child share: the same SQLite file, secrets and SMTP server."""
    return Settings(
        data_dir=data_dir,
        messaging_smtp_url=f"smtp://127.0.0.1:{smtp_port}",
        messaging_smtp_sender="shop@example.com",
        **SECRETS,
    )


class TellingSmtp(SmtpChannel):
    """The real SMTP channel, saying on stdout each key the server accepted."""

    def send(self, envelope: Envelope) -> str:
        receipt = super().send(envelope)
        sys.stdout.write(f"{envelope.key}\n")
        sys.stdout.flush()
        return receipt


def main(data_dir: str, smtp_port: str, start: str) -> None:
    began = time.monotonic()
    platform = build(
        settings_for(Path(data_dir), int(smtp_port)), clock=lambda: float(start) + time.monotonic() - began
    )
    sender = platform.message_dispatcher()
    sender.channels = {"email": TellingSmtp("127.0.0.1", int(smtp_port), sender="shop@example.com")}
    print("ready", flush=True)
    sender.run_forever(threading.Event(), poll_s=0.05)


if __name__ == "__main__":
    main(*sys.argv[1:])
