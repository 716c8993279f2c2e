"""Logging for the bridge: one configuration, and secrets masked on every line.

:class:`Redactor` knows the configured secrets (webhook secret, MPIN, TOTP seed, passwords,
API keys) and learns the session tokens and sids as logins create them; it also masks anything
shaped like a JWT, a Bearer/Basic credential, or a ``token=``/``"mpin":``-style pair, so a
secret that slips into a message or a traceback is still not written. The filter runs on the
handler, so it covers every logger, including libraries'.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from bridge.clock import IST

MASK = "***"
_MIN_SECRET = 4
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*"), MASK),
    (re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]{6,}"), r"\1 " + MASK),
    (re.compile(
        r"(?i)([\"']?\b(?:auth|sid|token|access_token|view_token|trade_token|mpin|totp|otp|"
        r"password|passwd|pwd|secret|apikey|api_key|webhook_secret|totp_secret|"
        r"consumer_secret|authorization|neo-fin-key)\b[\"']?\s*[:=]\s*[\"']?)"
        r"(?!\*\*\*)([^\"'\s,;&}]{3,})"), r"\1" + MASK),
)


class Redactor:
    """Masks known secret values and secret-shaped text. Thread-safe."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._ordered: list[str] = []
        self._lock = threading.Lock()
        for value in secrets:
            self.add(value)

    def add(self, value: str) -> None:
        """Learn a secret value (shorter than 4 characters would mask ordinary text)."""
        if len(value) < _MIN_SECRET or value in self._secrets:
            return
        with self._lock:
            self._secrets.add(value)
            self._ordered = sorted(self._secrets, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for value in self._ordered:
            if value in text:
                text = text.replace(value, MASK)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


#: what every LogRecord has; anything else on a record came through ``extra=``
_STANDARD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "taskName"}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller put on the record with ``extra=``."""
    return {key: value for key, value in record.__dict__.items()
            if key not in _STANDARD_FIELDS and not key.startswith("_")}


def _redact_value(redactor: Redactor, value: Any) -> Any:
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, (list, tuple)):
        return [_redact_value(redactor, item) for item in value]
    if isinstance(value, dict):
        return {key: _redact_value(redactor, item) for key, item in value.items()}
    return value


class RedactFilter(logging.Filter):
    """Render each record's message (and traceback) once, masked, and mask the text in
    its ``extra`` fields (the JSON format writes them out)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.redact(record.getMessage())
        record.args = None
        for key, value in extra_fields(record).items():
            setattr(record, key, _redact_value(self.redactor, value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        # The traceback is now text; keep the formatter from rendering the raw one again.
        record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        return True


class IstFormatter(logging.Formatter):
    """Text lines stamped in India time, whatever the server's timezone."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, IST)
        return f"{moment:%Y-%m-%d %H:%M:%S},{int(record.msecs):03d} IST"


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers (``LOG_FORMAT=json``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            if value is not None and value != "":
                entry.setdefault(key, value)
        if record.exc_text:
            entry["error"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str, fmt: str, redactor: Redactor) -> None:
    """Send every logger's records to stderr through the redaction filter."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if fmt == "json"
        else {"()": IstFormatter, "fmt": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactFilter, "redactor": redactor}},
        "formatters": {"main": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": sys.stderr,
                                "formatter": "main", "filters": ["redact"]}},
        "root": {"level": level, "handlers": ["stderr"]},
        # APScheduler narrates every job it adds and runs at INFO; the bridge's scheduler
        # logs each job's start and outcome in its own words.
        "loggers": {"werkzeug": {"level": "WARNING"}, "urllib3": {"level": "WARNING"},
                    "apscheduler": {"level": "WARNING"}},
    })
