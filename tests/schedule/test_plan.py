"""When each job is due: missed triggers caught up while still meaningful, never on a closed
day, MCX's evening-only days included."""

from __future__ import annotations

from datetime import datetime

import pytest

from bridge.clock import IST
from bridge.config import Settings, load_settings
from bridge.schedule.calendar import TradingCalendar
from bridge.schedule.plan import JobSpec, build_plan, due, next_trigger


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=IST)


@pytest.fixture
def settings() -> Settings:
    return load_settings({"WEBHOOK_SECRET": "x" * 20})


@pytest.fixture
def calendar(settings: Settings) -> TradingCalendar:
    return TradingCalendar.load(settings.risk.trading_hours)


def job(settings: Settings, name: str) -> JobSpec:
    return next(spec for spec in build_plan(settings) if spec.name == name)


def test_exchanges_sharing_a_time_form_one_square_off_job(settings: Settings) -> None:
    names = [spec.name for spec in build_plan(settings)]
    assert "squareoff:BFO+BSE+NFO+NSE" in names
    assert "squareoff:CDS" in names and "squareoff:MCX" in names


def test_a_square_off_missed_at_1515_runs_at_1522_and_not_after_the_close(
        settings: Settings, calendar: TradingCalendar) -> None:
    spec = job(settings, "squareoff:BFO+BSE+NFO+NSE")
    assert due(spec, at("2026-11-30T15:14:59"), calendar) is None
    assert due(spec, at("2026-11-30T15:15:00"), calendar) == at("2026-11-30T15:15")
    assert due(spec, at("2026-11-30T15:22:00"), calendar) == at("2026-11-30T15:15")
    assert due(spec, at("2026-11-30T15:30:00"), calendar) is None  # NSE closed: Kotak's turn


def test_a_login_missed_at_0830_is_due_all_that_day_but_not_the_next(
        settings: Settings, calendar: TradingCalendar) -> None:
    spec = job(settings, "session")
    assert due(spec, at("2026-11-30T13:00"), calendar) == at("2026-11-30T08:30")
    assert due(spec, at("2026-12-01T08:00"), calendar) is None


def test_nothing_that_talks_to_the_broker_fires_on_a_holiday_or_weekend(
        settings: Settings, calendar: TradingCalendar) -> None:
    holiday = at("2026-12-25T15:20")  # Christmas: every exchange closed
    weekend = at("2026-11-28T15:20")  # Saturday
    for spec in build_plan(settings):
        if spec.talks_to_broker:
            assert due(spec, holiday, calendar) is None, spec.name
            assert due(spec, weekend, calendar) is None, spec.name
    assert due(job(settings, "housekeeping"), holiday, calendar) == at("2026-12-25T02:00")


def test_on_an_mcx_evening_day_only_mcx_squares_off(settings: Settings,
                                                     calendar: TradingCalendar) -> None:
    # Guru Nanak Jayanti 2026: equities closed, MCX trades its evening session.
    assert due(job(settings, "squareoff:BFO+BSE+NFO+NSE"), at("2026-11-24T15:20"),
               calendar) is None
    assert due(job(settings, "squareoff:MCX"), at("2026-11-24T23:30"),
               calendar) == at("2026-11-24T23:25")
    assert due(job(settings, "session"), at("2026-11-24T09:00"),
               calendar) == at("2026-11-24T08:30")


def test_next_runs_skip_closed_days(settings: Settings, calendar: TradingCalendar) -> None:
    spec = job(settings, "squareoff:BFO+BSE+NFO+NSE")
    # Friday 25 December is Christmas: next is Monday the 28th.
    assert next_trigger(spec, at("2026-12-24T16:00"), calendar) == at("2026-12-28T15:15")
    reconcile = job(settings, "reconcile")
    assert next_trigger(reconcile, at("2026-11-30T10:01"), calendar) == at("2026-11-30T10:05")


def test_user_holidays_close_a_day(tmp_path: object, settings: Settings) -> None:
    from pathlib import Path

    extra = Path(str(tmp_path)) / "holidays.csv"
    extra.write_text("date,exchanges,session,name\n"
                     "2026-11-30,NSE BSE NFO BFO CDS MCX,closed,local drill\n")
    calendar = TradingCalendar.load(settings.risk.trading_hours, extra)
    assert due(job(settings, "session"), at("2026-11-30T09:00"), calendar) is None
