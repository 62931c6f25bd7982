"""Each channel against a real far side: retries with backoff on SMTP 4xx, a 5xx fails for good,
a webhook carries the key and is retried on 503, the file outbox writes a key once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from flashsale.messaging.channels.contract import Envelope, SendFailed
from flashsale.messaging.channels.outbox import FileOutbox, read_outbox
from flashsale.messaging.channels.smtp import SmtpChannel
from flashsale.messaging.channels.webhook import WebhookChannel
from flashsale.messaging.dispatch import retry_delay_s
from tests.integration.smtp_sink import Sink, free_port, smtp_sink

LETTER = Envelope("wave:1:ann", "email", "ann@example.com", "开售", "今晚八点")


@pytest.fixture
def sink() -> Iterator[Sink]:
    with smtp_sink() as running:
        yield running


def test_smtp_4xx_is_transient_5xx_is_final_and_the_key_is_the_message_id(sink: Sink) -> None:
    channel = SmtpChannel("127.0.0.1", sink.port, sender="shop@example.com")
    sink.answers.extend(["451 4.3.0 try again later", "554 5.7.1 rejected"])
    with pytest.raises(SendFailed) as busy:
        channel.send(LETTER)
    assert busy.value.transient
    with pytest.raises(SendFailed) as refused:
        channel.send(LETTER)
    assert not refused.value.transient
    channel.send(LETTER)
    [mail] = sink.mails
    assert mail.message_id == "<wave.1.ann@example.com>" and mail.body == "今晚八点"


def test_an_unreachable_smtp_server_is_transient() -> None:
    with pytest.raises(SendFailed) as down:
        SmtpChannel("127.0.0.1", free_port(), sender="s@example.com", timeout_s=2).send(LETTER)
    assert down.value.transient


def test_retries_back_off_from_thirty_seconds_to_an_hour() -> None:
    delays = [retry_delay_s(n) for n in range(1, 12)]
    assert delays[:3] == [30.0, 60.0, 120.0]
    assert delays == sorted(delays) and delays[-1] == 3600.0


class Hook(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []
    statuses: ClassVar[list[int]] = []

    def do_POST(self) -> None:  # the name http.server calls
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Hook.seen.append((self.headers["Idempotency-Key"], body))
        self.send_response(Hook.statuses.pop(0) if Hook.statuses else 204)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Hook)
    Hook.seen, Hook.statuses = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_a_webhook_carries_the_key_and_only_503_and_429_are_worth_a_retry(hook: str) -> None:
    channel = WebhookChannel(hook)
    Hook.statuses.extend([503, 429, 400])
    for transient in (True, True, False):
        with pytest.raises(SendFailed) as failed:
            channel.send(LETTER)
        assert failed.value.transient is transient
    assert channel.send(LETTER).startswith("HTTP 204")
    assert [key for key, _ in Hook.seen] == [LETTER.key] * 4
    assert Hook.seen[-1][1] == {
        "key": LETTER.key,
        "to": LETTER.address,
        "subject": "开售",
        "body": "今晚八点",
    }


def test_the_file_outbox_writes_each_key_once_even_when_resent(tmp_path: Path) -> None:
    outbox = FileOutbox(tmp_path / "out" / "outbox.jsonl")
    sms = Envelope("remind:O1:1", "sms", "+8613800000000", "", "请付款")
    outbox.send(sms)
    assert outbox.send(sms).startswith("already in")
    outbox.send(LETTER)
    assert [line["key"] for line in read_outbox(outbox.path)] == ["remind:O1:1", LETTER.key]
