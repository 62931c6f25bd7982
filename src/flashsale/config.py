"""Settings: every environment variable in one typed place (prefix FLASHSALE_, or a .env file)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLASHSALE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path(".flashsale"), description="Where the embedded SQLite file and secrets live")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file in data_dir")
    backend: Literal["memory", "redis"] = Field("memory", description="Stock ledger engine")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis ledger URL (backend=redis)")
    promotions_redis_url: str | None = Field(
        None,
        description="One Redis node for the coupon and draw ledgers (default: the stock ledger's Redis);"
        " required when the stock ledger runs on a Redis Cluster (redis+cluster://)",
    )
    jwt_secret: str | None = Field(None, description="HS256 key for shopper tokens; generated if unset")
    admin_token: str | None = Field(None, description="Bearer token for /admin; generated if unset")
    payment_secret: str | None = Field(None, description="HMAC key of the sandbox payment provider")
    token_ttl_s: int = Field(24 * 3600, ge=60, description="Lifetime of shopper tokens minted by the CLI")
    expiry_sweep_max_s: float = Field(1.0, gt=0, description="Longest the expiry job sleeps between sweeps")
    draw_schedule_interval_s: float = Field(
        5.0, gt=0, description="How often serving processes run due draws"
    )
    # Ledger retention (services/retention.py): finished holds and their request keys are forgotten
    # this long after they finished; their orders answer for them from the store.
    ledger_retention_hours: float = Field(
        24.0, gt=0, description="Age after which finished holds and their request keys leave the ledger"
    )
    # Sold holds stay longer: a refund of an order whose hold was forgotten still works (from the
    # stored order, Ledger.refund_stored); a week covers the return window most refunds come in.
    ledger_sold_retention_hours: float = Field(
        7 * 24.0,
        gt=0,
        description="Age (since the sale) after which sold holds and their keys leave the ledger",
    )
    ledger_retention_interval_s: float = Field(
        600.0, gt=0, description="How often serving processes forget old finished holds"
    )
    # Referral rewards (services/referral.py): given once the invitee's first paid order is past this.
    referral_settle_s: int = Field(7 * 24 * 3600, ge=0, description="Refund window before a referral pays")
    referral_inviter_points: int = Field(100, ge=0, description="Points for the inviter of a referral")
    referral_invitee_points: int = Field(50, ge=0, description="Points for the invitee of a referral")
    referral_coupon_template: str | None = Field(
        None, max_length=64, description="Coupon template id each side's reward also names (a reference)"
    )
    # The HTTP edge: what one client may cost the server before it is refused or dropped.
    max_body_bytes: int = Field(64 * 1024, ge=1, description="Largest request body accepted; larger: 413")
    header_timeout_s: float = Field(
        10.0, gt=0, description="Longest a client may take to send a request's line and headers"
    )
    body_timeout_s: float = Field(30.0, gt=0, description="Longest a client may take to send a body")
    keep_alive_s: int = Field(5, ge=1, description="How long an idle keep-alive connection is kept open")
    max_connections: int = Field(
        2048, ge=1, description="Concurrent connections or requests per process; beyond it: 503"
    )
    listen_backlog: int = Field(2048, ge=1, description="Accept queue length (capped by net.core.somaxconn)")
    # Operability: health, metrics and logs (see docs/runbook.md).
    ready_max_writer_lag: int = Field(
        10_000,
        ge=0,
        description="Redis ledger: /readyz fails once more purchases than this wait for the order writer",
    )
    ready_timeout_s: float = Field(
        2.0, gt=0, description="Longest one /readyz check may take before it fails"
    )
    metrics_enabled: bool = Field(True, description="Serve GET /metrics (Prometheus text format)")
    log_json: bool = Field(False, description="Log one JSON object per line instead of key=value pairs")
    access_log: bool = Field(True, description="Log one line per request and per purchase decision")

    # Admission (services/admission.py): `limits` strings such as "5/second;60/minute"; unset: none.
    rate_limit_purchase_per_shopper: str | None = Field(
        None, description="Purchase attempts one shopper may make, e.g. '5/second;60/minute'; beyond: 429"
    )
    rate_limit_purchase_per_client: str | None = Field(
        None, description="Purchase attempts from one client address, across its accounts; beyond: 429"
    )
    rate_limit_read_per_client: str | None = Field(
        None, description="Anonymous reads (GET /sessions…) from one client address; beyond: 429"
    )

    # Messaging (flashsale.messaging, docs/messaging.md): channels, rest hours, caps, 催付 steps.
    messaging_in_serve: bool = Field(False, description="Run the message sender inside `flashsale serve`")
    messaging_smtp_url: str | None = Field(
        None, description="smtp://host:port of the mail relay; unset: no email"
    )
    messaging_smtp_sender: str = Field("flashsale@localhost", description="From address of emails")
    messaging_outbox_path: Path | None = Field(
        None, description="JSON-lines file SMS and IM go to in development; default data_dir/outbox.jsonl"
    )
    messaging_webhook_url: str | None = Field(None, description="URL the webhook channel POSTs messages to")
    messaging_quiet_hours: str = Field(
        "00:00-09:00,11:30-14:00,21:00-24:00", description="Rest hours in the shopper's zone, every channel"
    )
    messaging_quiet_hours_by_channel: dict[str, str] = Field(
        default_factory=lambda: {"webhook": ""}, description="Rest hours per channel (JSON), over the default"
    )
    messaging_cap_per_day: int = Field(
        3, ge=0, description="Messages a member gets per rolling 24 h, at most"
    )
    messaging_reminder_steps: str = Field("5,10,14", description="催付 steps: minutes after an unpaid order")
    messaging_reminder_channel: Literal["email", "sms", "im", "webhook"] = Field(
        "sms", description="The channel 催付 reminders go out on"
    )
    messaging_default_tz: str = Field("Asia/Shanghai", description="Time zone of members who gave none")
    messaging_claim_batch: int = Field(
        1,
        ge=1,
        le=500,
        description="Messages claimed per transaction: more is faster, and more may repeat after a crash",
    )
    messaging_poll_s: float = Field(1.0, gt=0, description="Longest the sender sleeps between passes")
    # Sale tokens and waiting-room tickets (services/sale_tokens.py, services/waiting_room.py).
    admission_secret: str | None = Field(
        None, description="HMAC key of sale tokens and queue tickets; derived from jwt_secret if unset"
    )
    sale_token_ttl_s: float = Field(60.0, gt=0, le=3600, description="Lifetime of a sale token")

    @field_validator(
        "rate_limit_purchase_per_shopper", "rate_limit_purchase_per_client", "rate_limit_read_per_client"
    )
    @classmethod
    def _a_limit(cls, value: str | None) -> str | None:
        """Refuse to start on a limit `limits` cannot read, saying which."""
        from flashsale.services.admission import parse_limits

        parse_limits(value)  # raises ValueError naming the bad part
        return value

    @field_validator("messaging_quiet_hours", "messaging_reminder_steps", "messaging_default_tz")
    @classmethod
    def _messaging_setting(cls, value: str, info: ValidationInfo) -> str:
        """Refuse to start on rest hours, reminder steps or a time zone the sender cannot read."""
        from flashsale.domain.errors import FlashSaleError
        from flashsale.messaging.rules import QuietHours, parse_steps, zone

        checks = {"messaging_quiet_hours": QuietHours.parse, "messaging_reminder_steps": parse_steps}
        try:
            checks.get(info.field_name or "", zone)(value)
        except FlashSaleError as exc:  # an unknown zone
            raise ValueError(exc.message) from None
        return value

    @field_validator("messaging_quiet_hours_by_channel")
    @classmethod
    def _quiet_by_channel(cls, value: dict[str, str]) -> dict[str, str]:
        """Refuse a channel we do not deliver on, or rest hours that cannot be read."""
        from flashsale.messaging.rules import CHANNELS, QuietHours

        for channel, spec in value.items():
            if channel not in CHANNELS:
                raise ValueError(f"{channel!r} is not a channel: {', '.join(CHANNELS)}")
            QuietHours.parse(spec)
        return value

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'flashsale.db'}"

    def ledger_url(self) -> str:
        """Return the URL of the stock ledger engine `backend` names."""
        return self.redis_url if self.backend == "redis" else "memory://"

    def coupon_ledger_url(self) -> str:
        """Return the coupon ledger's URL: in process, or Redis under `<stock prefix>-coupons`."""
        return self._promotions_url("coupons")

    def draw_ledger_url(self) -> str:
        """Return the draw ledger's URL: in process, or Redis under `<stock prefix>-draws`."""
        return self._promotions_url("draws")

    def _promotions_url(self, ledger: str) -> str:
        """A promotions ledger's URL on `promotions_redis_url` (else the stock ledger's Redis).

        A prefix of its own, never under the stock ledger's `<prefix>:`: a rebuild of either deletes
        every key under its prefix. The coupon and draw scripts need one node: a Cluster stock
        ledger needs `promotions_redis_url` (refused at load without it).
        """
        if self.backend != "redis":
            return "memory://"
        stock = dict(parse_qsl(urlsplit(self.redis_url).query, keep_blank_values=True))
        parts = urlsplit(self.promotions_redis_url or self.redis_url)
        stock_only = ("groups", "buckets")  # the stock ledger's options, none of theirs
        query = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in stock_only}
        query["prefix"] = f"{stock.get('prefix', 'fs')}-{ledger}"
        return urlunsplit(parts._replace(query=urlencode(query)))

    @model_validator(mode="after")
    def _promotions_on_one_node(self) -> Settings:
        """Refuse a Cluster stock ledger without one Redis node for coupons and draws, saying why."""
        on_cluster = urlsplit(self.redis_url).scheme.endswith("+cluster")
        if self.backend == "redis" and on_cluster and self.promotions_redis_url is None:
            raise ValueError(
                "the stock ledger runs on a Redis Cluster; the coupon and draw ledgers need one Redis"
                " node: set FLASHSALE_PROMOTIONS_REDIS_URL=redis://host:port/db"
            )
        promotions = urlsplit(self.promotions_redis_url or "")
        if promotions.scheme.endswith("+cluster"):
            raise ValueError("FLASHSALE_PROMOTIONS_REDIS_URL must name one Redis node, not a Cluster")
        return self

    def with_secrets(self) -> Settings:
        """Fill unset secrets from data_dir/secrets.json, creating it (mode 0600) on first run."""
        if self.jwt_secret and self.admin_token and self.payment_secret:
            return self
        path = self.data_dir / "secrets.json"
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        for key in ("jwt_secret", "admin_token", "payment_secret"):
            stored.setdefault(key, secrets.token_urlsafe(32))
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(stored, fh)
        return self.model_copy(
            update={
                "jwt_secret": self.jwt_secret or stored["jwt_secret"],
                "admin_token": self.admin_token or stored["admin_token"],
                "payment_secret": self.payment_secret or stored["payment_secret"],
            }
        )
