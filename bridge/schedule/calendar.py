"""The exchanges' trading calendar: on which days each exchange trades, and in which hours.

Holidays are data. The packaged ``holidays.csv`` lists them, and a user's file in the same
format adds to it, so a newly announced holiday needs no new release. The caller passes
``<DATA_DIR>/holidays.csv`` as that file by default, or the path of the ``HOLIDAYS_FILE``
setting; a missing file is fine. The format::

    # comment lines start with '#'; blank lines are skipped
    date,exchanges,session,name
    2026-03-03,NSE BSE NFO BFO CDS,closed,Holi
    2026-03-03,MCX,evening,Holi

``date`` is an India date, ``YYYY-MM-DD``. ``exchanges`` is a space-separated subset of
NSE BSE NFO BFO CDS MCX. ``session`` is ``closed`` (no trading that day) or ``evening``
(MCX only: the morning session is shut and trading runs from 17:00 to the normal close).
``name`` is the holiday, shown in messages. The header line may be left out of a user's
file. When a date and exchange are listed twice the later row wins, so a user's row can turn
a packaged ``evening`` into ``closed`` (or back); no row can reopen a listed date.

Saturdays and Sundays are always closed and are not listed. CDS follows the equity list: the
currency segment also shuts on some RBI holidays on which the equity segments trade, and
those the user adds. Muhurat trading and other special sessions are not modelled; they fall
on weekends or holidays, which the calendar reports as closed.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time, timedelta
from importlib import resources
from pathlib import Path
from typing import NoReturn

from bridge.domain import Exchange

CLOSED = "closed"
EVENING = "evening"
SESSIONS = frozenset({CLOSED, EVENING})
EVENING_OPENS = time(17, 0)
PACKAGED_FILE = "holidays.csv"

_HEADER = ("date", "exchanges", "session", "name")
_SEARCH_DAYS = 30
_SATURDAY = 5


class CalendarError(Exception):
    """A holiday file that cannot be used, or a question the calendar cannot answer."""


@dataclass(frozen=True)
class Closure:
    """One exchange shut on one day: all day (``closed``) or until the evening (``evening``)."""

    day: date
    exchange: Exchange
    session: str
    name: str

    def __post_init__(self) -> None:
        if self.session not in SESSIONS:
            raise ValueError(f"session {self.session!r} is not one of closed, evening")
        if self.session == EVENING and self.exchange is not Exchange.MCX:
            raise ValueError(f"only MCX has an evening session, not {self.exchange}")


class TradingCalendar:
    def __init__(self, trading_hours: Mapping[Exchange, tuple[time, time]],
                 closures: Iterable[Closure]) -> None:
        self._hours = dict(trading_hours)
        self._closures: dict[tuple[date, Exchange], Closure] = {}
        for closure in closures:
            self._closures[(closure.day, closure.exchange)] = closure
        self._years = frozenset(day.year for day, _ in self._closures)

    @classmethod
    def load(cls, trading_hours: Mapping[Exchange, tuple[time, time]],
             extra: Path | None = None) -> TradingCalendar:
        """The packaged holidays plus, when ``extra`` exists, the user's; the user's come last."""
        packaged = resources.files(__name__.rpartition(".")[0]).joinpath(PACKAGED_FILE)
        closures = _parse(packaged.read_text(encoding="utf-8"), str(packaged))
        if extra is not None:
            text = _read_user_file(extra)
            if text is not None:
                closures.extend(_parse(text, str(extra)))
        return cls(trading_hours, closures)

    def hours(self, exchange: Exchange, day: date) -> tuple[time, time] | None:
        """The exchange's session that day, or None when it does not trade.

        An exchange missing from the trading hours never trades. An evening session that the
        configured hours leave empty (a close at or before 17:00) counts as no session.
        """
        normal = self._hours.get(exchange)
        if normal is None or day.weekday() >= _SATURDAY:
            return None
        closure = self._closures.get((day, exchange))
        if closure is None:
            return normal
        if closure.session == CLOSED:
            return None
        opens, closes = max(EVENING_OPENS, normal[0]), normal[1]
        return (opens, closes) if opens < closes else None

    def is_open(self, exchange: Exchange, day: date) -> bool:
        return self.hours(exchange, day) is not None

    def any_open(self, day: date) -> bool:
        return any(self.is_open(exchange, day) for exchange in self._hours)

    def closure(self, exchange: Exchange, day: date) -> Closure | None:
        """The listed holiday that shuts or shortens the day; None on weekends and normal days."""
        return self._closures.get((day, exchange))

    def next_open_day(self, exchange: Exchange, after: date) -> date:
        """The first day strictly after ``after`` on which the exchange trades."""
        for offset in range(1, _SEARCH_DAYS + 1):
            day = after + timedelta(days=offset)
            if self.is_open(exchange, day):
                return day
        raise CalendarError(f"{exchange} does not trade in the {_SEARCH_DAYS} days after "
                            f"{after.isoformat()}")

    def years(self) -> set[int]:
        """The years with at least one listed holiday; a year missing here is unlisted."""
        return set(self._years)


def _read_user_file(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CalendarError(f"{path}: cannot read the holiday file: {exc}") from exc


def _parse(text: str, source: str) -> list[Closure]:
    closures: list[Closure] = []
    header_allowed = True
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            fields = [field.strip() for field in next(csv.reader([stripped], strict=True))]
        except csv.Error as exc:
            _fail(source, number, f"not a CSV line: {exc}")
        if header_allowed and tuple(field.lower() for field in fields) == _HEADER:
            header_allowed = False
            continue
        header_allowed = False
        closures.extend(_parse_row(fields, source, number))
    return closures


def _parse_row(fields: list[str], source: str, number: int) -> list[Closure]:
    if len(fields) != len(_HEADER):
        _fail(source, number, f"expected {len(_HEADER)} fields ({','.join(_HEADER)}), "
                              f"found {len(fields)}")
    day_text, exchanges_text, session_text, name = fields
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        _fail(source, number, f"bad date {day_text!r}, expected YYYY-MM-DD")
    names = exchanges_text.upper().split()
    if not names:
        _fail(source, number, "no exchange given")
    exchanges: list[Exchange] = []
    for exchange_name in names:
        try:
            exchange = Exchange(exchange_name)
        except ValueError:
            _fail(source, number, f"unknown exchange {exchange_name!r}, expected some of "
                                  f"{' '.join(Exchange)}")
        if exchange not in exchanges:
            exchanges.append(exchange)
    session = session_text.lower()
    if session not in SESSIONS:
        _fail(source, number, f"unknown session {session_text!r}, expected closed or evening")
    if session == EVENING and exchanges != [Exchange.MCX]:
        others = " ".join(e for e in exchanges if e is not Exchange.MCX)
        _fail(source, number, f"session evening is for MCX only, not {others}")
    if not name:
        _fail(source, number, "the holiday has no name")
    return [Closure(day, exchange, session, name) for exchange in exchanges]


def _fail(source: str, number: int, problem: str) -> NoReturn:
    raise CalendarError(f"{source}, line {number}: {problem}")
