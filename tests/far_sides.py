"""Real far sides for the messaging channels: an SMTP server (aiosmtpd) and a webhook receiver
(http.server), each on a free local port, keeping what they accepted."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Mail:
    message_id: str
    to: str
    subject: str
    body: str


@dataclass
class Sink:
    """What the server accepted, in order; `port` is where it listens on 127.0.0.1."""

    port: int
    mails: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: list[str] = field(default_factory=list)  # replies to give instead of accepting, in turn

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # the name aiosmtpd calls
        with self.lock:
            if self.answers:
                return self.answers.pop(0)
        mail = message_from_bytes(envelope.content, policy=policy.default)
        body = mail.get_body(("plain",))
        text = body.get_content().strip() if body is not None else ""
        with self.lock:
            self.mails.append(Mail(str(mail["Message-ID"]), str(mail["To"]), str(mail["Subject"]), text))
        return "250 OK"

    def to(self, address: str) -> list[Mail]:
        with self.lock:
            return [m for m in self.mails if m.to == address]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_sink() -> Iterator[Sink]:
    """Run an SMTP server for the duration of the block."""
    sink = Sink(free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@dataclass
class Receiver:
    """What the webhook receiver took: (Idempotency-Key, JSON body) per POST, in order."""

    url: str
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give instead of 204, in turn


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """Run a webhook receiver for the duration of the block."""
    receiver = Receiver("")

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the name http.server calls
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            receiver.seen.append((self.headers["Idempotency-Key"], body))
            self.send_response(receiver.statuses.pop(0) if receiver.statuses else 204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
