"""The scheduler's jobs and when each is due: pure functions of the time and the calendar.

A job has triggers (a daily time, or an interval) and a calendar gate: jobs that talk to
the broker fire only on days one of their exchanges trades; housekeeping fires every day.
A trigger that passed while no scheduler ran is still *due* until its deadline, after which
running it would no longer mean anything:

=============  ==================  ===========================================================
job            trigger             due until
=============  ==================  ===========================================================
session        SESSION_RENEW_AT    the end of that day (the session would expire at midnight)
instruments    INSTRUMENTS_...AT   the end of that day
squareoff:X    SQUAREOFF_TIMES     the latest close that day of the exchanges in X (after the
                                   close Kotak has squared off, and orders are refused)
reconcile      RECONCILE_EVERY_S   the next trigger
oauth2-token   every 5 minutes     the next trigger; only with a legacy (oauth2) account: it
                                   renews each OAuth2 token that lapses within 15 minutes
housekeeping   02:00               the end of that day
=============  ==================  ===========================================================

The OAuth2 token of the legacy login lasts ``expires_in`` (an hour at Kotak). The renewal job
looks every 5 minutes and renews a token in its last 15, so each token is renewed once, by
the leader, before anything needs it; the lazy renewal on a call (10 minutes before) stays as
the safety net for a bridge whose scheduler is off.

Exchanges that share a square-off time form one job (``squareoff:BFO+BSE+NFO+NSE``), so their
positions are closed in one pass through the rate limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from bridge.clock import IST
from bridge.config import Settings
from bridge.domain import Exchange
from bridge.schedule.calendar import TradingCalendar

HOUSEKEEPING_AT = time(2, 0)
#: how far back a missed daily trigger is looked for (a week covers any holiday stretch)
LOOKBACK_DAYS = 8


#: how often the legacy OAuth2 token's expiry is looked at, and how early it is renewed
TOKEN_EVERY = timedelta(minutes=5)
TOKEN_LEAD = timedelta(minutes=15)


class Kind(StrEnum):
    SESSION = "session"
    TOKEN = "oauth2-token"
    INSTRUMENTS = "instruments"
    SQUAREOFF = "squareoff"
    RECONCILE = "reconcile"
    HOUSEKEEPING = "housekeeping"


@dataclass(frozen=True)
class JobSpec:
    name: str
    kind: Kind
    at: time | None = None  # daily, IST
    every: timedelta | None = None  # or at this interval from midnight IST
    exchanges: tuple[Exchange, ...] = ()  # fires on days one of these trades; () = every day

    @property
    def talks_to_broker(self) -> bool:
        return self.kind is not Kind.HOUSEKEEPING

    def describe(self) -> str:
        if self.at is not None:
            when = f"daily at {self.at:%H:%M} IST"
        else:
            assert self.every is not None
            when = f"every {int(self.every.total_seconds())} s"
        gate = "on trading days" if self.talks_to_broker else "every day"
        return f"{when}, {gate}"


def build_plan(settings: Settings, *, legacy: bool = False) -> list[JobSpec]:
    """The jobs; ``legacy``: some account logs in with the legacy oauth2 flow, whose token
    the scheduler renews."""
    everywhere = tuple(Exchange)
    plan = [
        JobSpec("session", Kind.SESSION, at=settings.session_renew_at, exchanges=everywhere),
        JobSpec("instruments", Kind.INSTRUMENTS, at=settings.schedule.instruments_refresh_at,
                exchanges=everywhere),
    ]
    groups: dict[time, list[Exchange]] = {}
    for exchange, at in settings.squareoff_times.items():
        groups.setdefault(at, []).append(exchange)
    for at, members in sorted(groups.items()):
        names = "+".join(sorted(e.value for e in members))
        plan.append(JobSpec(f"squareoff:{names}", Kind.SQUAREOFF, at=at,
                            exchanges=tuple(sorted(members))))
    plan.append(JobSpec("reconcile", Kind.RECONCILE,
                        every=timedelta(seconds=settings.schedule.reconcile_every_s),
                        exchanges=everywhere))
    if legacy:
        plan.append(JobSpec("oauth2-token", Kind.TOKEN, every=TOKEN_EVERY,
                            exchanges=everywhere))
    plan.append(JobSpec("housekeeping", Kind.HOUSEKEEPING, at=HOUSEKEEPING_AT))
    return plan


def fires_on(spec: JobSpec, day: date, calendar: TradingCalendar) -> bool:
    if not spec.exchanges:
        return True
    return any(calendar.is_open(exchange, day) for exchange in spec.exchanges)


def open_exchanges(spec: JobSpec, day: date, calendar: TradingCalendar) -> list[Exchange]:
    """The job's exchanges that trade on ``day``."""
    return [e for e in spec.exchanges if calendar.is_open(e, day)]


def last_trigger(spec: JobSpec, now: datetime, calendar: TradingCalendar) -> datetime | None:
    """The latest trigger at or before ``now`` on a day the job fires."""
    local = now.astimezone(IST)
    if spec.every is not None:
        if not fires_on(spec, local.date(), calendar):
            return None
        midnight = datetime.combine(local.date(), time(0), IST)
        step = spec.every.total_seconds()
        slots = int((local - midnight).total_seconds() // step)
        return midnight + timedelta(seconds=slots * step)
    assert spec.at is not None
    for back in range(LOOKBACK_DAYS):
        day = local.date() - timedelta(days=back)
        trigger = datetime.combine(day, spec.at, IST)
        if trigger <= local and fires_on(spec, day, calendar):
            return trigger
    return None


def next_trigger(spec: JobSpec, now: datetime, calendar: TradingCalendar) -> datetime | None:
    """The first trigger strictly after ``now`` on a day the job fires (within a month)."""
    local = now.astimezone(IST)
    if spec.every is not None:
        last = last_trigger(spec, local, calendar)
        if last is not None:
            return last + spec.every
        for ahead in range(1, 32):
            day = local.date() + timedelta(days=ahead)
            if fires_on(spec, day, calendar):
                return datetime.combine(day, time(0), IST)
        return None
    assert spec.at is not None
    for ahead in range(32):
        day = local.date() + timedelta(days=ahead)
        trigger = datetime.combine(day, spec.at, IST)
        if trigger > local and fires_on(spec, day, calendar):
            return trigger
    return None


def deadline(spec: JobSpec, trigger: datetime, calendar: TradingCalendar) -> datetime:
    """After this moment a missed ``trigger`` is not worth running any more."""
    local = trigger.astimezone(IST)
    if spec.every is not None:
        return local + spec.every
    end_of_day = datetime.combine(local.date() + timedelta(days=1), time(0), IST)
    if spec.kind is not Kind.SQUAREOFF:
        return end_of_day
    closes = [hours[1] for e in spec.exchanges
              if (hours := calendar.hours(e, local.date())) is not None]
    return datetime.combine(local.date(), max(closes), IST) if closes else local


def due(spec: JobSpec, now: datetime, calendar: TradingCalendar) -> datetime | None:
    """The trigger to run now, if one passed and is still meaningful."""
    trigger = last_trigger(spec, now, calendar)
    if trigger is None or now >= deadline(spec, trigger, calendar):
        return None
    return trigger
