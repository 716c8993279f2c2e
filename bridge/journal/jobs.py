"""The scheduler's records: one row per job trigger, the leader's heartbeat, and notices.

A trigger (a job and the moment it was due) is claimed by inserting its unique key, so
however many schedulers try, one runs it; a finished run is never run again. A run left
``running`` by a leader that died is taken over by the next leader (the jobs are written to
be safe to repeat: a login returns the session already held, a square-off reads the book).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, delete, desc, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from bridge.clock import Clock
from bridge.journal.tables import job_runs, leaders, notices
from bridge.journal.txn import writing

log = logging.getLogger(__name__)


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class JobRun:
    id: int
    job: str
    trigger_at: datetime
    status: RunStatus
    runner: str
    attempts: int
    started_at: datetime
    finished_at: datetime | None
    summary: str
    report: dict[str, Any] | None


@dataclass(frozen=True)
class Leader:
    holder: str
    since: datetime
    heartbeat_at: datetime


@dataclass(frozen=True)
class Notice:
    id: int
    at: datetime
    kind: str
    level: str
    text: str


@dataclass(frozen=True)
class Outgoing:
    """A notice still to deliver, and how far its delivery got (see ``bridge.outbox``)."""

    notice: Notice
    attempts: int
    sent_to: frozenset[str]  # channels that have it
    refused_by: frozenset[str]  # channels that refused it for good


def run_key(job: str, trigger_at: datetime) -> str:
    return f"{job}@{trigger_at.isoformat(timespec='seconds')}"


class JobBook:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self._clock = clock

    # --- runs -----------------------------------------------------------------------------

    def claim(self, job: str, trigger_at: datetime, runner: str) -> JobRun | None:
        """Start the run of ``job`` for ``trigger_at``; ``None`` when it is not ours to run:
        finished already, or running in this very runner.

        Only the scheduler's leader calls this, so a run another runner left ``running`` was
        left by a leader that is gone: it is taken over.
        """
        now = self._clock.now()
        key = run_key(job, trigger_at)
        for _ in range(2):
            try:
                with writing(self.engine) as conn:
                    row = conn.execute(select(job_runs).where(job_runs.c.key == key)).first()
                    if row is None:
                        new_id = conn.execute(insert(job_runs).values(
                            key=key, job=job, trigger_at=trigger_at,
                            status=RunStatus.RUNNING.value, runner=runner, attempts=1,
                            started_at=now, summary="")).inserted_primary_key
                        assert new_id is not None
                        return JobRun(int(new_id[0]), job, trigger_at, RunStatus.RUNNING,
                                      runner, 1, now, None, "", None)
                    if row.status != RunStatus.RUNNING.value or row.runner == runner:
                        return None
                    conn.execute(update(job_runs).where(job_runs.c.id == row.id).values(
                        runner=runner, attempts=row.attempts + 1, started_at=now))
                    log.warning("job %s (due %s): taking over from %s, which stopped while "
                                "running it", job, trigger_at.isoformat(), row.runner)
                    return JobRun(int(row.id), job, trigger_at, RunStatus.RUNNING, runner,
                                  row.attempts + 1, now, None, "", None)
            except IntegrityError:
                continue  # inserted by another runner meanwhile: read it again
        return None

    def finish(self, run: JobRun, status: RunStatus, summary: str,
               report: dict[str, Any] | None = None) -> None:
        with writing(self.engine) as conn:
            conn.execute(update(job_runs).where(job_runs.c.id == run.id).values(
                status=status.value, finished_at=self._clock.now(), summary=summary[:4000],
                report=json.dumps(report, default=str) if report is not None else None))

    def was_run(self, job: str, trigger_at: datetime) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(job_runs.c.id).where(
                job_runs.c.key == run_key(job, trigger_at))).first() is not None

    def runs(self, job: str | None = None, limit: int = 50) -> list[JobRun]:
        query = select(job_runs).order_by(desc(job_runs.c.started_at), desc(job_runs.c.id))
        if job is not None:
            query = query.where(job_runs.c.job == job)
        with self.engine.connect() as conn:
            return [_run(row) for row in conn.execute(query.limit(limit)).all()]

    def last_runs(self) -> dict[str, JobRun]:
        """The latest run of every job that ever ran."""
        latest: dict[str, JobRun] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(select(job_runs).order_by(job_runs.c.trigger_at,
                                                              job_runs.c.id)).all():
                latest[row.job] = _run(row)
        return latest

    def prune(self, before: datetime) -> int:
        with writing(self.engine) as conn:
            return int(conn.execute(delete(job_runs).where(
                job_runs.c.trigger_at < before,
                job_runs.c.status != RunStatus.RUNNING.value)).rowcount or 0)

    # --- the leader -----------------------------------------------------------------------

    def beat(self, role: str, holder: str, since: datetime) -> None:
        """Record that ``holder`` leads ``role`` (it holds the leader lock) and is alive."""
        now = self._clock.now()
        with writing(self.engine) as conn:
            changed = conn.execute(update(leaders).where(leaders.c.role == role).values(
                holder=holder, since=since, heartbeat_at=now)).rowcount
            if not changed:
                conn.execute(insert(leaders).values(role=role, holder=holder, since=since,
                                                    heartbeat_at=now))

    def resign(self, role: str, holder: str) -> None:
        with writing(self.engine) as conn:
            conn.execute(delete(leaders).where(leaders.c.role == role,
                                               leaders.c.holder == holder))

    def leader(self, role: str) -> Leader | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(leaders).where(leaders.c.role == role)).first()
        return Leader(row.holder, row.since, row.heartbeat_at) if row is not None else None

    # --- notices --------------------------------------------------------------------------

    def add_notice(self, kind: str, level: str, text: str) -> int:
        with writing(self.engine) as conn:
            new_id = conn.execute(insert(notices).values(
                at=self._clock.now(), kind=kind, level=level, text=text[:4000])
            ).inserted_primary_key
        assert new_id is not None
        return int(new_id[0])

    def notices(self, limit: int = 50, kind: str | None = None) -> list[Notice]:
        query = select(notices).order_by(desc(notices.c.id)).limit(limit)
        if kind is not None:
            query = query.where(notices.c.kind == kind)
        with self.engine.connect() as conn:
            return [Notice(int(r.id), r.at, r.kind, r.level, r.text)
                    for r in conn.execute(query).all()]

    def prune_notices(self, before: datetime) -> int:
        with writing(self.engine) as conn:
            return int(conn.execute(delete(notices).where(notices.c.at < before)).rowcount
                       or 0)

    # --- notice delivery (bridge.outbox); ``now`` and leases are wall-clock times ----------

    def due_notices(self, now: datetime, limit: int = 20) -> list[Outgoing]:
        """Notices neither delivered nor given up, due for a try and held by no courier."""
        query = select(notices).where(_due(now)).order_by(notices.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [_outgoing(row) for row in conn.execute(query).all()]

    def claim_notice(self, notice_id: int, now: datetime, until: datetime) -> Outgoing | None:
        """Hold a due notice for delivery until ``until``; ``None`` when another courier
        holds it or it is no longer due. One conditional UPDATE decides, so of several
        couriers exactly one wins; the row is read back so it reflects the latest try."""
        with writing(self.engine) as conn:
            won = conn.execute(update(notices).where(notices.c.id == notice_id, _due(now))
                               .values(claimed_until=until)).rowcount
            if won != 1:
                return None
            row = conn.execute(select(notices).where(notices.c.id == notice_id)).first()
        return _outgoing(row) if row is not None else None

    def record_delivery(self, notice_id: int, *, attempts: int, sent_to: Iterable[str],
                        refused_by: Iterable[str], last_error: str | None,
                        next_try_at: datetime | None = None, delivered: bool = False,
                        gave_up: bool = False) -> None:
        """Record a delivery try and release the notice (to try again at ``next_try_at``,
        or finished: ``delivered`` or ``gave_up``). ``last_error`` ``None`` keeps the last
        one recorded."""
        now = self._clock.now()
        values: dict[str, Any] = {
            "attempts": attempts, "sent_to": ",".join(sorted(sent_to)),
            "refused_by": ",".join(sorted(refused_by)), "next_try_at": next_try_at,
            "claimed_until": None, "delivered_at": now if delivered else None,
            "gave_up_at": now if gave_up else None}
        if last_error:
            values["last_error"] = last_error[:1000]
        with writing(self.engine) as conn:
            conn.execute(update(notices).where(notices.c.id == notice_id).values(**values))


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(notices.c.delivered_at.is_(None), notices.c.gave_up_at.is_(None),
                or_(notices.c.next_try_at.is_(None), notices.c.next_try_at <= now),
                or_(notices.c.claimed_until.is_(None), notices.c.claimed_until <= now))


def _names(value: str | None) -> frozenset[str]:
    return frozenset(name for name in (value or "").split(",") if name)


def _outgoing(row: Any) -> Outgoing:
    return Outgoing(Notice(int(row.id), row.at, row.kind, row.level, row.text),
                    int(row.attempts), _names(row.sent_to), _names(row.refused_by))


def _run(row: Any) -> JobRun:
    return JobRun(id=int(row.id), job=row.job, trigger_at=row.trigger_at,
                  status=RunStatus(row.status), runner=row.runner, attempts=int(row.attempts),
                  started_at=row.started_at, finished_at=row.finished_at, summary=row.summary,
                  report=json.loads(row.report) if row.report else None)
