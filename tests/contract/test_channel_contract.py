"""The channel contract (flashsale.messaging.channels.contract), run on every channel against a real
far side: a returned send was taken with its key; a resend carries the same key; an unreachable
far side is a transient failure."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flashsale.messaging.channels.contract import Channel, Envelope, SendFailed
from flashsale.messaging.channels.outbox import FileOutbox, read_outbox
from flashsale.messaging.channels.smtp import SmtpChannel, message_id
from flashsale.messaging.channels.webhook import WebhookChannel
from tests.far_sides import free_port, smtp_sink, webhook_receiver


@dataclass
class FarSide:
    channel: Channel
    keys: Callable[[], list[str]]  # the key of each message the far side took, in order
    unreachable: Channel  # the same channel pointed at nothing


@pytest.fixture(params=["smtp", "outbox", "webhook"])
def far_side(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FarSide]:
    if request.param == "smtp":
        with smtp_sink() as sink:
            ids = {message_id(k, "example.com"): k for k in ("wave:1:ann", "remind:O1:1")}
            yield FarSide(
                SmtpChannel("127.0.0.1", sink.port, sender="shop@example.com"),
                lambda: [ids[m.message_id] for m in sink.mails],
                SmtpChannel("127.0.0.1", free_port(), sender="shop@example.com", timeout_s=2),
            )
    elif request.param == "outbox":
        outbox = FileOutbox(tmp_path / "outbox.jsonl")
        (tmp_path / "a-file").write_text("")
        yield FarSide(
            outbox,
            lambda: [line["key"] for line in read_outbox(outbox.path)],
            FileOutbox(tmp_path / "a-file" / "outbox.jsonl"),  # its folder is a file
        )
    else:
        with webhook_receiver() as receiver:
            yield FarSide(
                WebhookChannel(receiver.url),
                lambda: [key for key, _ in receiver.seen],
                WebhookChannel(f"http://127.0.0.1:{free_port()}/hook", timeout_s=2),
            )


LETTER = Envelope("wave:1:ann", "email", "ann@example.com", "开售", "今晚八点")
OTHER = Envelope("remind:O1:1", "email", "bob@example.com", "催付", "请付款")


def test_a_send_that_returns_was_taken_with_its_key(far_side: FarSide) -> None:
    assert far_side.channel.send(LETTER)
    assert far_side.channel.send(OTHER)
    assert far_side.keys() == [LETTER.key, OTHER.key]


def test_a_resend_after_an_unknown_outcome_carries_the_same_key(far_side: FarSide) -> None:
    far_side.channel.send(LETTER)
    far_side.channel.send(LETTER)
    taken = far_side.keys()
    assert set(taken) == {LETTER.key} and 1 <= len(taken) <= 2


def test_an_unreachable_far_side_is_a_transient_failure(far_side: FarSide) -> None:
    with pytest.raises(SendFailed) as failed:
        far_side.unreachable.send(LETTER)
    assert failed.value.transient
