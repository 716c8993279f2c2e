"""Days on which new intraday entries are stopped on an exchange, per account.

A square-off may stop new intraday (MIS) entries on its exchanges for the rest of the day
(the scheduled one always does: the market is closing). The stop is one ``bridge_meta`` row
per account and exchange, read with the entry counts on the signal path, so it holds across
processes and restarts; the row says the day, why, who and when, so the dashboard and the
refusal can say so too. A row of an earlier day means nothing: entries are open again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class EntryBlock:
    """New intraday entries of ``account`` on ``exchange`` are refused for ``day``."""

    account: str
    exchange: str
    day: date
    why: str  # "the scheduled square-off", "a square-off from the dashboard" ...
    by: str  # who stopped them: schedule, dashboard, cli
    at: datetime | None  # when (None for a row written before this was recorded)

    def encoded(self) -> str:
        return json.dumps({"day": self.day.isoformat(), "why": self.why, "by": self.by,
                           "at": self.at.isoformat() if self.at else None})


KEY_PREFIX = "squared_off:"


def closed_key(account: str, exchange: str) -> str:
    """The ``bridge_meta`` key of an account's entry stop on an exchange."""
    return f"{KEY_PREFIX}{account}:{exchange}"


def blocked_day(value: str | None) -> str | None:
    """The day (ISO) a stored stop applies to; older rows hold just the day."""
    if not value:
        return None
    if not value.startswith("{"):
        return value
    try:
        day = json.loads(value).get("day")
    except (ValueError, AttributeError):
        return None
    return day if isinstance(day, str) else None


def decoded(key: str, value: str) -> EntryBlock | None:
    """The stop a ``bridge_meta`` row holds, or ``None`` for a row that is not one."""
    account, _, exchange = key.removeprefix(KEY_PREFIX).rpartition(":")
    day = blocked_day(value)
    if not key.startswith(KEY_PREFIX) or not account or day is None:
        return None
    fields: dict[str, object] = {}
    if value.startswith("{"):
        try:
            fields = json.loads(value)
        except ValueError:
            fields = {}
    at = fields.get("at")
    try:
        return EntryBlock(account, exchange, date.fromisoformat(day),
                          str(fields.get("why") or "a square-off"), str(fields.get("by") or ""),
                          datetime.fromisoformat(at) if isinstance(at, str) else None)
    except ValueError:
        return None
