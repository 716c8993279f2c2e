"""Four gunicorn workers, one scheduler: one leader, each trigger run once, and a killed
leader replaced by another worker without repeating what already ran."""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from bridge.clock import IST
from bridge.journal.tables import job_runs, leaders
from tests.e2e.helpers import ROOT, free_port, start, stop, wait_for

pytestmark = pytest.mark.e2e


def _leader(engine_url: str) -> str | None:
    engine = create_engine(engine_url)
    try:
        with engine.connect() as conn:
            holder = conn.execute(select(leaders.c.holder)).scalar()
    finally:
        engine.dispose()
    return str(holder) if holder is not None else None


def _runs(engine_url: str, job: str) -> int:
    engine = create_engine(engine_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(job_runs)
                                    .where(job_runs.c.job == job)).scalar() or 0)
    finally:
        engine.dispose()


def test_four_workers_elect_one_leader_and_a_killed_leader_is_replaced(tmp_path: Path) -> None:
    port = free_port()
    database = f"sqlite:///{tmp_path / 'bridge.db'}"
    env = {**os.environ, "ENV_FILE": str(tmp_path / "none.env"),
           "DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": database,
           "BRIDGE_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "4",
           "WEBHOOK_SECRET": "e2e-webhook-secret-0123456789"}
    log = tmp_path / "gunicorn.log"
    process = start([str(ROOT / ".venv/bin/gunicorn"), "-c", "deploy/gunicorn.conf.py",
                     "wsgi:app"], env, log)
    try:
        ready = wait_for(f"http://127.0.0.1:{port}/readyz", process, log).json()
        first = ready["checks"]["scheduler"]["leader"]
        assert first and first == _leader(database)
        # Housekeeping (02:00, every day) is due from 02:00 to midnight: the leader ran it
        # once on taking office, and no other worker did.
        expected = 1 if datetime.now(IST).hour >= 2 else 0
        deadline = time.monotonic() + 20
        while _runs(database, "housekeeping") < expected and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _runs(database, "housekeeping") == expected

        pid = int(first.split(":")[2])
        os.kill(pid, signal.SIGKILL)  # the leading worker dies; gunicorn starts another
        deadline = time.monotonic() + 45
        successor = first
        while successor == first and time.monotonic() < deadline:
            time.sleep(0.5)
            successor = _leader(database) or first
        assert successor != first, log.read_text()
        wait_for(f"http://127.0.0.1:{port}/readyz", process, log)
        assert _runs(database, "housekeeping") == expected  # not repeated by the successor
    finally:
        stop(process)
