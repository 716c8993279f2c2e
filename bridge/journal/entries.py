"""Days on which new intraday entries are stopped on an exchange, per account.

A square-off may stop new intraday (MIS) entries on its exchanges for the rest of the day
(the scheduled one always does: the market is closing). The stop is one ``bridge_meta`` row
per account and exchange, read with the entry counts on the signal path, so it holds across
processes and restarts; the row says the day, why, who and when, so the dashboard and the
refusal can say so too. A row of an earlier day means nothing: entries are open again.
:class:`EntryStopStore` writes, reads and lifts these rows; the entry counts read them in
their own query (:mod:`bridge.journal.orders`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine, delete, insert, select, update

from bridge.clock import Clock
from bridge.journal.tables import bridge_meta
from bridge.journal.txn import writing


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


class EntryStopStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self._clock = clock

    def close_entries(self, account: str, exchanges: Iterable[str], day: date, *,
                      why: str = "the scheduled square-off", by: str = "schedule") -> None:
        """Refuse new intraday entries on these exchanges for the rest of ``day`` (a
        square-off has begun); exits still go. ``why`` and ``by`` are shown to the trader."""
        now = self._clock.now()
        with writing(self.engine) as conn:
            for exchange in exchanges:
                key = closed_key(account, exchange)
                value = EntryBlock(account, exchange, day, why, by, now).encoded()
                if not conn.execute(update(bridge_meta).where(bridge_meta.c.key == key)
                                    .values(value=value)).rowcount:
                    conn.execute(insert(bridge_meta).values(key=key, value=value))

    def entry_blocks(self, day: date) -> list[EntryBlock]:
        """The stops on new intraday entries that hold on ``day``, by account and exchange."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(bridge_meta.c.key, bridge_meta.c.value).where(
                bridge_meta.c.key.startswith(KEY_PREFIX, autoescape=True))).all()
        found = [block for row in rows if (block := decoded(row.key, row.value))]
        return sorted((b for b in found if b.day == day), key=lambda b: (b.account, b.exchange))

    def allow_entries(self, day: date, *, account: str | None = None,
                      exchanges: Iterable[str] | None = None) -> list[EntryBlock]:
        """Lift the stops of ``day`` (of one account and some exchanges, or all); returns
        the stops lifted."""
        wanted = set(exchanges) if exchanges is not None else None
        lifted = [b for b in self.entry_blocks(day)
                  if (account is None or b.account == account)
                  and (wanted is None or b.exchange in wanted)]
        with writing(self.engine) as conn:
            for block in lifted:
                conn.execute(delete(bridge_meta).where(
                    bridge_meta.c.key == closed_key(block.account, block.exchange)))
        return lifted
