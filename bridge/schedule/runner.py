"""The scheduler: one leader among every process that could run it, each trigger run once.

Every process that may schedule (each gunicorn worker with ``SCHEDULER=embedded``, or the
``python -m bridge scheduler`` process) tries for the leader lock in the shared database
every few seconds: an ``flock`` beside the SQLite file, a PostgreSQL session advisory lock
across hosts. The lock dies with its holder, so a crashed leader is replaced within
``LEAD_EVERY`` seconds. Only the leader runs APScheduler, whose cron and interval triggers
(Asia/Kolkata) wake :meth:`Scheduler.run_due`.

``run_due`` decides from the clock, the calendar and the journal alone (``bridge.schedule.
plan``): for each job, the latest trigger that passed and is still meaningful, unless the
journal shows it run. Claiming a trigger inserts its unique key, so even two leaders (a
PostgreSQL session lost mid-run) cannot run it twice, and a restart neither repeats a
finished run nor forgets a missed one: on winning the lock a leader catches up at once.
The leader's heartbeat goes to the journal every ``BEAT_EVERY`` seconds for ``/readyz``.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bridge.clock import IST, today_ist
from bridge.journal.jobs import JobRun, RunStatus
from bridge.journal.locks import HeldLock
from bridge.kotak.auth import AuthFlow
from bridge.orders.dispatch import process_id
from bridge.schedule.jobs import JobActions, Outcome
from bridge.schedule.plan import JobSpec, Kind, build_plan, due, next_trigger
from bridge.wiring import Services

log = logging.getLogger(__name__)

ROLE = "scheduler"
LEAD_EVERY = 5.0
BEAT_EVERY = 5.0
#: a leader whose heartbeat is older than this is reported as gone
STALE_AFTER = timedelta(seconds=30)
#: APScheduler also wakes the scheduler this often, a safety net for catch-up
SWEEP_EVERY_S = 60


class Scheduler:
    def __init__(self, services: Services, *, runner: str | None = None) -> None:
        self.services = services
        self.plan = build_plan(services.settings, legacy=has_legacy_accounts(services))
        self.actions = JobActions(services)
        self.runner = runner or f"scheduler:{process_id()}"
        self._lock = HeldLock(services.engine, "scheduler-leader")
        self._since: datetime | None = None
        self._run_guard = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._aps: BackgroundScheduler | None = None

    # --- leadership -----------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        return self._lock.held

    def try_lead(self, *, catch_up: bool = True) -> bool:
        """Take the leadership if it is free; on winning, catch up on missed triggers (now,
        or ``catch_up=False``: the caller arranges it)."""
        if self._lock.held:
            return True
        if not self._lock.try_acquire():
            return False
        self._since = self.services.clock.now()
        self.services.jobs.beat(ROLE, self.runner, self._since)
        log.info("scheduler %s leads; catching up on missed triggers", self.runner)
        if catch_up:
            self.catch_up()
        return True

    def heartbeat(self) -> bool:
        """Record the leader's heartbeat; ``False`` (and leadership dropped) if the lock
        was lost."""
        if not self._lock.held:
            return False
        if not self._lock.still_held():
            log.error("scheduler %s lost the leader lock; another process will lead",
                      self.runner)
            self._drop_leadership()
            return False
        assert self._since is not None
        self.services.jobs.beat(ROLE, self.runner, self._since)
        return True

    def resign(self) -> None:
        if self._lock.held:
            self.services.jobs.resign(ROLE, self.runner)
        self._drop_leadership()

    def _drop_leadership(self) -> None:
        self._stop_aps()
        self._lock.release()
        self._since = None

    # --- running jobs ---------------------------------------------------------------------

    def catch_up(self) -> list[JobRun]:
        """At the start of a leadership: log in when no valid session is held on a trading
        day, then whatever is due."""
        runs: list[JobRun] = []
        services = self.services
        if services.calendar.any_open(today_ist(services.clock)) and any(
                not client.sessions.status().valid for client in services.brokers.values()):
            session = next(spec for spec in self.plan if spec.kind is Kind.SESSION)
            start = services.clock.now().astimezone(IST).replace(second=0, microsecond=0)
            run = self.fire(session, start)
            if run is not None:
                runs.append(run)
        return runs + self.run_due()

    def run_due(self) -> list[JobRun]:
        """Run every job whose trigger passed, is still meaningful and has not run."""
        if not self._lock.held:
            return []
        runs = []
        with self._run_guard:
            for spec in self.plan:
                trigger = due(spec, self.services.clock.now(), self.services.calendar)
                if trigger is None:
                    continue
                run = self.fire(spec, trigger)
                if run is not None:
                    runs.append(run)
        return runs

    def fire(self, spec: JobSpec, trigger: datetime) -> JobRun | None:
        """Run ``spec`` for ``trigger`` unless the journal shows it ran; returns the run."""
        book = self.services.jobs
        run = book.claim(spec.name, trigger, self.runner)
        if run is None:
            return None
        log.info("job %s (due %s) starting", spec.name, trigger.isoformat())
        try:
            outcome = self.actions.run(spec)
        except Exception as exc:
            log.exception("job %s failed unexpectedly", spec.name)
            outcome = Outcome(RunStatus.FAILED, f"internal error: {type(exc).__name__}: {exc}")
            self.services.notifier.send(spec.kind.value, "error",
                                        f"job {spec.name} failed: {type(exc).__name__}")
        book.finish(run, outcome.status, outcome.summary, outcome.report)
        log.log(logging.INFO if outcome.status is not RunStatus.FAILED else logging.ERROR,
                "job %s (due %s) %s: %s", spec.name, trigger.isoformat(),
                outcome.status.value, outcome.summary)
        return run

    def next_runs(self, now: datetime | None = None) -> list[tuple[JobSpec, datetime | None]]:
        """Each job and when it next acts (the token job: when a token is next renewed)."""
        moment = now or self.services.clock.now()
        return [(spec, next_action(spec, moment, self.services, self.actions))
                for spec in self.plan]

    # --- in production: a thread that keeps trying to lead, APScheduler while leading ----

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="bridge-scheduler",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.resign()

    def wait(self) -> None:
        """Block until :meth:`stop` (the standalone scheduler process)."""
        self._stop.wait()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.leading:
                    self.heartbeat()
                elif self.try_lead(catch_up=False):
                    self._start_aps()
            except Exception:
                log.exception("scheduler loop error (it carries on)")
            self._stop.wait(BEAT_EVERY if self.leading else LEAD_EVERY)

    def _start_aps(self) -> None:
        aps = BackgroundScheduler(timezone=IST, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
        for spec in self.plan:
            if spec.at is not None:
                trigger: CronTrigger | IntervalTrigger = CronTrigger(
                    hour=spec.at.hour, minute=spec.at.minute, timezone=IST)
            else:
                assert spec.every is not None
                trigger = IntervalTrigger(seconds=int(spec.every.total_seconds()),
                                          timezone=IST)
            aps.add_job(self.run_due, trigger, id=spec.name, name=spec.name,
                        replace_existing=True)
        aps.add_job(self.run_due, IntervalTrigger(seconds=SWEEP_EVERY_S, timezone=IST),
                    id="sweep", name="catch-up sweep", replace_existing=True)
        # Catching up may square off for a while: on APScheduler's threads, so this
        # thread keeps the heartbeat going meanwhile.
        aps.add_job(self.catch_up, id="catch-up", name="catch-up on taking the lead")
        aps.start()
        self._aps = aps

    def _stop_aps(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None


def has_legacy_accounts(services: Services) -> bool:
    return any(client.sessions.credentials.flow is AuthFlow.OAUTH2
               for client in services.brokers.values())


def next_action(spec: JobSpec, now: datetime, services: Services,
                actions: JobActions) -> datetime | None:
    """When ``spec`` next does something: its next trigger, but for the token job the moment
    the earliest token enters its renewal window (``None``: no session holds a token)."""
    if spec.kind is Kind.TOKEN:
        renewal = actions.token_renewal_at()
        return max(renewal, now) if renewal is not None else None
    return next_trigger(spec, now, services.calendar)


def start_scheduler(services: Services) -> Scheduler:
    """Take part in scheduling from this process (it leads when the lock is free)."""
    scheduler = Scheduler(services)
    services.scheduler = scheduler
    scheduler.start()
    return scheduler
