"""Log lines as JSON (one object a line) or text, with the correlation id of the call in hand."""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import os
import secrets
import sys

# The correlation id of the request this task is serving; "" outside one.
correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id",
                                                                      default="")
# LogRecord attributes every record has: anything else was passed as `extra` and is logged.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def new_correlation_id() -> str:
    # Drawn for every hold in a Batch that names none: the cheapest 64 random bits.
    return secrets.token_hex(8)


class JsonLinesFormatter(logging.Formatter):
    """{"ts", "level", "logger", "message", "correlation_id", extras..., "exc"} per line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC)
                .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        current = getattr(record, "correlation_id", "") or correlation_id.get()
        if current:
            line["correlation_id"] = current
        line.update((key, value) for key, value in vars(record).items()
                    if key not in _STANDARD and key != "correlation_id")
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        current = getattr(record, "correlation_id", "") or correlation_id.get()
        return f"{text} [{current}]" if current else text


def configure(log_format: str | None = None, level: int = logging.INFO) -> None:
    """Log to stderr as `json` (the default, for collectors) or `text` (for a terminal);
    AVAILABILITY_LOG_FORMAT chooses when no format is given."""
    log_format = log_format or os.environ.get("AVAILABILITY_LOG_FORMAT", "json")
    if log_format not in ("json", "text"):
        raise ValueError(f"log format must be json or text, not {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLinesFormatter() if log_format == "json" else _TextFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
