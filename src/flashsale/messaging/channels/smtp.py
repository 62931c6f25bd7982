"""Email over SMTP: one connection per message, the message key as its Message-ID."""

from __future__ import annotations

import re
import smtplib
from email.message import EmailMessage
from email.utils import formatdate

from flashsale.messaging.channels.contract import Envelope, SendFailed


def message_id(key: str, domain: str) -> str:
    """Return the Message-ID a key is sent under: the same key always gives the same id."""
    return f"<{re.sub(r'[^A-Za-z0-9.=_-]', '.', key)}@{domain}>"


class SmtpChannel:
    """Send mail through an SMTP server (`host`:`port`, optionally STARTTLS and a login)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        timeout_s: float = 10.0,
        starttls: bool = False,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.timeout_s, self.starttls, self.login = timeout_s, starttls, login

    def send(self, envelope: Envelope) -> str:
        """Deliver the mail; a 4xx answer or a broken connection is transient, a 5xx is not."""
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = envelope.address
        mail["Subject"] = envelope.subject
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = message_id(envelope.key, self.sender.rpartition("@")[2] or "flashsale")
        mail.set_content(envelope.body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.login is not None:
                    smtp.login(*self.login)
                refused = smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            raise SendFailed(f"recipient refused: {exc.recipients}", transient=False) from None
        except smtplib.SMTPResponseException as exc:
            raise SendFailed(
                f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", transient=exc.smtp_code < 500
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SendFailed(f"SMTP unreachable: {exc}", transient=True) from None
        if refused:
            raise SendFailed(f"recipient refused: {refused}", transient=False)
        return f"accepted by {self.host}:{self.port} as {mail['Message-ID']}"
