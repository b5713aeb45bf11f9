"""Structured logs: one JSON object per line, carrying the request id of the work in hand.

The API sets the id for each request (the caller's X-Request-ID, or a new one); it travels
with the submission over the bus, and the pipeline sets it again while it routes that
submission, so one id finds a report's whole way through the hub. Messages name members,
ids and counts; never secrets, never object contents.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
# Fields a log call may add with `extra=`: ids and counts only.
FIELDS = ("member", "status_id", "objects", "accepted", "refused", "collection", "error_id")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        for name in FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(json_lines: bool) -> None:
    """Log INFO and up to standard error, as JSON lines or as plain text."""
    handler = logging.StreamHandler()
    if json_lines:
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
