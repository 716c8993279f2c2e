"""Telling the operator what needs their eyes: a failed or renewed login, a square-off
result, an order that ended badly.

Every notice goes to the journal's outbox (the CLI and dashboard show it; delivery channels
such as Telegram send from it, off the order path) and to the log. Texts pass through the
redactor first, so a notice can never carry a secret.
"""

from __future__ import annotations

import logging

from bridge.journal.jobs import JobBook
from bridge.log import Redactor

log = logging.getLogger(__name__)

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class Notifier:
    def __init__(self, book: JobBook, redactor: Redactor) -> None:
        self.book = book
        self.redactor = redactor

    def send(self, kind: str, level: str, text: str) -> None:
        if level not in _LEVELS:
            raise ValueError(f"notice level must be one of {sorted(_LEVELS)}")
        clean = self.redactor.redact(text)
        log.log(_LEVELS[level], "notice [%s] %s", kind, clean)
        try:
            self.book.add_notice(kind, level, clean)
        except Exception:
            log.exception("could not record the notice [%s] in the journal", kind)
