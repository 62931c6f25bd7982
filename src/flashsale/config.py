"""Settings: every environment variable in one typed place (prefix FLASHSALE_, or a .env file)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLASHSALE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path(".flashsale"), description="Where the embedded SQLite file and secrets live")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file in data_dir")
    backend: Literal["memory", "redis"] = Field("memory", description="Stock ledger engine")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis ledger URL (backend=redis)")
    jwt_secret: str | None = Field(None, description="HS256 key for shopper tokens; generated if unset")
    admin_token: str | None = Field(None, description="Bearer token for /admin; generated if unset")
    payment_secret: str | None = Field(None, description="HMAC key of the sandbox payment provider")
    token_ttl_s: int = Field(24 * 3600, ge=60, description="Lifetime of shopper tokens minted by the CLI")
    expiry_sweep_max_s: float = Field(1.0, gt=0, description="Longest the expiry job sleeps between sweeps")
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

    @field_validator(
        "rate_limit_purchase_per_shopper", "rate_limit_purchase_per_client", "rate_limit_read_per_client"
    )
    @classmethod
    def _a_limit(cls, value: str | None) -> str | None:
        """Refuse to start on a limit `limits` cannot read, saying which."""
        from flashsale.services.admission import parse_limits

        parse_limits(value)  # raises ValueError naming the bad part
        return value

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'flashsale.db'}"

    def ledger_url(self) -> str:
        """Return the URL of the stock ledger engine `backend` names."""
        return self.redis_url if self.backend == "redis" else "memory://"

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
