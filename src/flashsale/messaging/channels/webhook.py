"""Webhooks for the shop's own systems: a JSON POST carrying the message key as Idempotency-Key."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from flashsale.messaging.channels.contract import Envelope, SendFailed


class WebhookChannel:
    """POST each message as JSON to `url`; 2xx is taken, 429/5xx/no answer is transient, other 4xx is not."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url, self.timeout_s = url, timeout_s

    def send(self, envelope: Envelope) -> str:
        """Deliver one message; the receiver de-duplicates on the Idempotency-Key header."""
        body = json.dumps(
            {"key": envelope.key, "to": envelope.address, "subject": envelope.subject, "body": envelope.body},
            ensure_ascii=False,
        ).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": envelope.key},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                return f"HTTP {answer.status} from {self.url}"
        except urllib.error.HTTPError as exc:
            exc.close()  # the error holds the answer's connection open
            transient = exc.code == 429 or exc.code >= 500
            raise SendFailed(f"HTTP {exc.code} from {self.url}", transient=transient) from None
        except OSError as exc:
            raise SendFailed(f"{self.url} unreachable: {exc}", transient=True) from None
