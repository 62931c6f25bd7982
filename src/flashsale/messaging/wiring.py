"""Build the messaging policy, channels and dispatcher from Settings."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from flashsale.clock import Clock
from flashsale.config import Settings
from flashsale.messaging.channels.contract import Channel
from flashsale.messaging.channels.outbox import FileOutbox
from flashsale.messaging.channels.smtp import SmtpChannel
from flashsale.messaging.channels.webhook import WebhookChannel
from flashsale.messaging.dispatch import Dispatcher
from flashsale.messaging.policy import Policy
from flashsale.messaging.rules import CHANNELS, QuietHours, parse_steps


def policy_from(settings: Settings) -> Policy:
    """Return the policy the settings describe; raise ValueError on rest hours or steps it cannot read."""
    default = QuietHours.parse(settings.messaging_quiet_hours)
    by_channel = {c: QuietHours.parse(settings.messaging_quiet_hours_by_channel.get(c, "")) for c in CHANNELS}
    quiet = {
        c: by_channel[c] if c in settings.messaging_quiet_hours_by_channel else default for c in CHANNELS
    }
    return Policy(
        quiet=quiet,
        cap_per_day=settings.messaging_cap_per_day,
        reminder_steps_min=parse_steps(settings.messaging_reminder_steps),
        reminder_channel=settings.messaging_reminder_channel,
        default_tz=settings.messaging_default_tz,
        webhook_url=settings.messaging_webhook_url,
        claim_batch=settings.messaging_claim_batch,
    )


def file_outbox(settings: Settings) -> FileOutbox:
    """Return the development outbox for SMS and IM."""
    return FileOutbox(settings.messaging_outbox_path or settings.data_dir / "outbox.jsonl")


def channels_from(settings: Settings) -> dict[str, Channel]:
    """Return a channel per configured name: SMS and IM go to the file outbox (the development provider)."""
    outbox = file_outbox(settings)
    channels: dict[str, Channel] = {"sms": outbox, "im": outbox}
    if settings.messaging_smtp_url:
        smtp = urlsplit(settings.messaging_smtp_url)
        login = (smtp.username, smtp.password or "") if smtp.username else None
        channels["email"] = SmtpChannel(
            smtp.hostname or "localhost",
            smtp.port or 25,
            sender=settings.messaging_smtp_sender,
            starttls=smtp.scheme == "smtp+starttls",
            login=login,
        )
    if settings.messaging_webhook_url:
        channels["webhook"] = WebhookChannel(settings.messaging_webhook_url)
    return channels


def dispatcher_for(settings: Settings, engine: Engine, clock: Clock) -> Dispatcher:
    """Build the sender on the platform's database."""
    return Dispatcher(
        sessionmaker(engine, expire_on_commit=False), channels_from(settings), policy_from(settings), clock
    )
