"""Time, injected: every module asks a :class:`Clock` instead of calling ``datetime.now()``.

Kotak's day turns over at midnight India time (sessions expire then, order books reset), so
the clock speaks IST. Tests and the sandbox substitute a clock they can move.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")


class Clock(Protocol):
    def now(self) -> datetime:
        """Return the current time, timezone-aware, in IST."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(IST)


class ManualClock:
    """A clock that moves only when told to; safe to share between threads."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start.astimezone(IST)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("ManualClock needs timezone-aware times")
        with self._lock:
            self._now = moment.astimezone(IST)


def ist_text(moment: datetime) -> str:
    """A time as traders read it: ``2026-11-25 00:00 IST``."""
    return f"{moment.astimezone(IST):%Y-%m-%d %H:%M} IST"


def today_ist(clock: Clock) -> date:
    return clock.now().astimezone(IST).date()


def next_midnight_ist(moment: datetime) -> datetime:
    """Return the first 00:00 IST strictly after ``moment``: when Kotak sessions lapse."""
    local = moment.astimezone(IST)
    return datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), IST)
