"""The trading calendar: packaged holidays, MCX evening sessions, weekends and user files."""

from __future__ import annotations

from datetime import date, time, timedelta
from pathlib import Path

import pytest

from bridge.domain import Exchange
from bridge.schedule.calendar import CalendarError, Closure, TradingCalendar

HOURS = {
    Exchange.NSE: (time(9, 15), time(15, 30)),
    Exchange.BSE: (time(9, 15), time(15, 30)),
    Exchange.NFO: (time(9, 15), time(15, 30)),
    Exchange.BFO: (time(9, 15), time(15, 30)),
    Exchange.CDS: (time(9, 0), time(17, 0)),
    Exchange.MCX: (time(9, 0), time(23, 55)),
}
EQUITY = (Exchange.NSE, Exchange.BSE, Exchange.NFO, Exchange.BFO, Exchange.CDS)
HOLIDAYS_2026 = [date(2026, m, d) for m, d in (
    (1, 26), (3, 3), (3, 26), (3, 31), (4, 3), (4, 14), (5, 1), (5, 28), (6, 26), (9, 14),
    (10, 2), (10, 20), (11, 10), (11, 24), (12, 25))]
MCX_CLOSED_2026 = {date(2026, 1, 26), date(2026, 4, 3), date(2026, 10, 2), date(2026, 12, 25)}
HOLIDAYS_2027 = [date(2027, m, d) for m, d in (
    (1, 26), (3, 10), (3, 22), (3, 26), (4, 14), (4, 15), (5, 17), (6, 15), (10, 29))]
MCX_CLOSED_2027 = {date(2027, 1, 26), date(2027, 3, 26)}
PACKAGED = Path(__file__).parents[2] / "bridge" / "schedule" / "holidays.csv"


@pytest.fixture(scope="module")
def calendar() -> TradingCalendar:
    return TradingCalendar.load(HOURS)


@pytest.mark.parametrize("day", HOLIDAYS_2026, ids=str)
def test_every_2026_holiday_closes_the_equity_segments(calendar: TradingCalendar,
                                                       day: date) -> None:
    for exchange in EQUITY:
        assert calendar.hours(exchange, day) is None, exchange
        closure = calendar.closure(exchange, day)
        assert closure is not None and closure.session == "closed" and closure.name


@pytest.mark.parametrize("day", HOLIDAYS_2026 + HOLIDAYS_2027, ids=str)
def test_mcx_is_closed_or_trades_only_the_evening(calendar: TradingCalendar, day: date) -> None:
    hours = calendar.hours(Exchange.MCX, day)
    if day in MCX_CLOSED_2026 | MCX_CLOSED_2027:
        assert hours is None
    else:
        assert hours == (time(17, 0), time(23, 55))
        closure = calendar.closure(Exchange.MCX, day)
        assert closure is not None and closure.session == "evening"
    assert calendar.any_open(day) is (hours is not None)


def test_evening_session_closes_at_the_configured_close() -> None:
    holi = date(2026, 3, 3)
    late = TradingCalendar.load({Exchange.MCX: (time(9, 0), time(23, 30))})
    early = TradingCalendar.load({Exchange.MCX: (time(9, 0), time(17, 0))})

    assert late.hours(Exchange.MCX, holi) == (time(17, 0), time(23, 30))
    assert early.hours(Exchange.MCX, holi) is None


def test_2027_provisional_holidays_close_the_equity_segments(calendar: TradingCalendar) -> None:
    for day in HOLIDAYS_2027:
        assert not any(calendar.is_open(exchange, day) for exchange in EQUITY), day


def test_packaged_file_lists_only_weekdays_and_its_years(calendar: TradingCalendar) -> None:
    rows = [line.split(",") for line in PACKAGED.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith(("#", "date,"))]

    assert all(date.fromisoformat(row[0]).weekday() < 5 for row in rows)
    assert {2026, 2027} <= calendar.years()


def test_weekends_are_closed_everywhere(calendar: TradingCalendar) -> None:
    for day in (date(2026, 3, 7), date(2026, 3, 8)):
        assert not calendar.any_open(day)
        assert all(calendar.hours(exchange, day) is None for exchange in Exchange)
        assert calendar.closure(Exchange.NSE, day) is None


def test_a_regular_weekday_keeps_the_normal_hours(calendar: TradingCalendar) -> None:
    day = date(2026, 3, 4)

    for exchange, hours in HOURS.items():
        assert calendar.hours(exchange, day) == hours
        assert calendar.is_open(exchange, day) and calendar.closure(exchange, day) is None
    assert calendar.any_open(day)


def test_an_exchange_without_hours_never_trades() -> None:
    calendar = TradingCalendar({Exchange.NSE: HOURS[Exchange.NSE]}, [])

    assert calendar.is_open(Exchange.NSE, date(2026, 3, 4))
    assert not calendar.is_open(Exchange.MCX, date(2026, 3, 4))


def test_user_file_adds_a_holiday(tmp_path: Path) -> None:
    extra = tmp_path / "holidays.csv"
    extra.write_text("# RBI holiday\n"
                     "2026-04-01,CDS,closed,Annual closing of bank accounts\n"
                     "2026-03-03,MCX,closed,Holi\n", encoding="utf-8")

    calendar = TradingCalendar.load(HOURS, extra)

    assert not calendar.is_open(Exchange.CDS, date(2026, 4, 1))
    assert calendar.is_open(Exchange.NSE, date(2026, 4, 1))
    closure = calendar.closure(Exchange.CDS, date(2026, 4, 1))
    assert closure == Closure(date(2026, 4, 1), Exchange.CDS, "closed",
                              "Annual closing of bank accounts")
    assert not calendar.is_open(Exchange.MCX, date(2026, 3, 3))
    assert not calendar.is_open(Exchange.NSE, date(2026, 1, 26))


def test_user_file_with_header_bom_and_a_new_year(tmp_path: Path) -> None:
    extra = tmp_path / "holidays.csv"
    extra.write_text("\ufeffdate,exchanges,session,name\n"
                     '2028-01-26,nse mcx,Closed,"Republic Day, 2028"\n', encoding="utf-8")

    calendar = TradingCalendar.load(HOURS, extra)

    assert 2028 in calendar.years()
    closure = calendar.closure(Exchange.MCX, date(2028, 1, 26))
    assert closure is not None and closure.name == "Republic Day, 2028"
    assert not calendar.is_open(Exchange.NSE, date(2028, 1, 26))


def test_a_missing_user_file_is_fine(tmp_path: Path) -> None:
    calendar = TradingCalendar.load(HOURS, tmp_path / "absent.csv")

    assert calendar.is_open(Exchange.NSE, date(2026, 3, 4))


@pytest.mark.parametrize(("line", "problem"), [
    ("2026-02-30,NSE,closed,Nope", "bad date '2026-02-30'"),
    ("26/01/2026,NSE,closed,Nope", "bad date '26/01/2026'"),
    ("2026-04-01,NSE XYZ,closed,Nope", "unknown exchange 'XYZ'"),
    ("2026-04-01,,closed,Nope", "no exchange given"),
    ("2026-04-01,NSE,half,Nope", "unknown session 'half'"),
    ("2026-04-01,NSE,evening,Nope", "evening is for MCX only, not NSE"),
    ("2026-04-01,MCX BSE,evening,Nope", "evening is for MCX only, not BSE"),
    ("2026-04-01,NSE,closed", "expected 4 fields"),
    ("2026-04-01,NSE,closed,Nope,extra", "expected 4 fields"),
    ("2026-04-01,NSE,closed,", "no name"),
])
def test_malformed_user_lines_name_the_file_and_line(tmp_path: Path, line: str,
                                                     problem: str) -> None:
    extra = tmp_path / "holidays.csv"
    extra.write_text(f"date,exchanges,session,name\n# fine so far\n\n{line}\n", encoding="utf-8")

    with pytest.raises(CalendarError) as caught:
        TradingCalendar.load(HOURS, extra)

    assert f"{extra}, line 4: " in str(caught.value)
    assert problem in str(caught.value)


def test_an_unreadable_user_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match="cannot read"):
        TradingCalendar.load(HOURS, tmp_path)


def test_closure_refuses_an_evening_outside_mcx() -> None:
    with pytest.raises(ValueError, match="only MCX"):
        Closure(date(2026, 3, 3), Exchange.NSE, "evening", "Holi")
    with pytest.raises(ValueError, match="not one of"):
        Closure(date(2026, 3, 3), Exchange.MCX, "half", "Holi")


def test_next_open_day_skips_a_weekend_and_a_holiday(calendar: TradingCalendar) -> None:
    # Good Friday 2026-04-03, then the weekend: NSE reopens on Monday 2026-04-06.
    assert calendar.next_open_day(Exchange.NSE, date(2026, 4, 2)) == date(2026, 4, 6)
    assert calendar.next_open_day(Exchange.MCX, date(2026, 4, 2)) == date(2026, 4, 6)
    # Republic Day 2027 is a Tuesday; a Friday question lands on Monday, the next on Wednesday.
    assert calendar.next_open_day(Exchange.NSE, date(2027, 1, 22)) == date(2027, 1, 25)
    assert calendar.next_open_day(Exchange.NSE, date(2027, 1, 25)) == date(2027, 1, 27)
    # An evening session is still a trading day for MCX.
    assert calendar.next_open_day(Exchange.MCX, date(2026, 3, 2)) == date(2026, 3, 3)
    assert calendar.next_open_day(Exchange.NSE, date(2026, 3, 2)) == date(2026, 3, 4)


def test_next_open_day_gives_up_after_thirty_days() -> None:
    start = date(2026, 6, 1)
    shut = [Closure(start + timedelta(days=n), Exchange.NSE, "closed", "Strike")
            for n in range(1, 40)]
    calendar = TradingCalendar({Exchange.NSE: HOURS[Exchange.NSE]}, shut)

    with pytest.raises(CalendarError, match="30 days after 2026-06-01"):
        calendar.next_open_day(Exchange.NSE, start)
    assert calendar.years() == {2026}
