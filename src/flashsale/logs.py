"""Structured logs: one line per event, as `key=value` pairs or (FLASHSALE_LOG_JSON=true) one JSON object.

An event is a log record whose message is its name and whose fields ride in `extra`:

    log.info("request", extra=fields(method="POST", route="/purchases", status=201, duration_ms=1.2))

Records from libraries (uvicorn, SQLAlchemy) get the same line, their message as the event. A
traceback stays on the line (escaped), so a log shipper never has to stitch lines back together.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

FIELDS = "flashsale_fields"  # the LogRecord attribute that carries an event's fields


def fields(**values: Any) -> dict[str, Any]:
    """Return the `extra` mapping that attaches `values` to a log record as the event's fields."""
    return {FIELDS: values}


class EventFormatter(logging.Formatter):
    """Format a record as one line: `ts level logger event` and the event's fields."""

    def __init__(self, *, json_lines: bool = False) -> None:
        super().__init__()
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        """Render the record on one line, as JSON or as key=value pairs."""
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **getattr(record, FIELDS, {}),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if self.json_lines:
            return json.dumps(line, default=str, ensure_ascii=False)
        return " ".join(f"{key}={_plain(value)}" for key, value in line.items())


def _plain(value: Any) -> str:
    """Write a value bare when that is unambiguous, else JSON-quoted (spaces, quotes, newlines, `=`)."""
    text = value if isinstance(value, str) else str(value)
    if text and not any(c in text for c in ' "=\n\r\t\\'):
        return text
    return json.dumps(text, ensure_ascii=False)


def logging_config(*, json_lines: bool, level: str = "INFO") -> dict[str, Any]:
    """Return a `logging.config.dictConfig` for flashsale's and uvicorn's loggers, writing events to stderr.

    `flashsale serve` hands it to uvicorn (`log_config`), which applies it in every worker process.
    """
    handler = {"handlers": ["events"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"events": {"()": f"{__name__}.EventFormatter", "json_lines": json_lines}},
        "handlers": {
            "events": {"class": "logging.StreamHandler", "formatter": "events", "stream": "ext://sys.stderr"}
        },
        "loggers": {"flashsale": handler, "uvicorn": handler, "uvicorn.access": handler},
    }
