"""Gunicorn end to end against a standalone Kotak sandbox: a burst within the broker's rate
limit, and a crash in the middle of one (on SQLite, and on PostgreSQL when it is reachable)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.clock import SystemClock
from bridge.journal.db import create_db_engine
from bridge.journal.journal import Journal
from bridge.journal.rows import OrderState, SignalStatus
from tests.e2e.helpers import free_port, start, start_sandbox, stop, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SECRET = "e2e-burst-secret-0123456789"


@dataclass
class Rig:
    sandbox_url: str
    bridge_url: str
    env: dict[str, str]
    log: Path
    database_url: str

    def start_bridge(self) -> Any:
        process = start([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
                         "wsgi:app"], self.env, self.log)
        wait_for(f"{self.bridge_url}/readyz", process, self.log)
        return process

    def placements(self) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.sandbox_url}/_sandbox/requests",
                              params={"endpoint": "place"}, timeout=5).json()
        return list(answer["requests"])

    def journal(self) -> Journal:
        return Journal(create_db_engine(self.database_url), SystemClock())


#: the journals a test runs on, for the ``database_url`` fixture of tests/conftest.py (a
#: SQLite file, or a fresh schema in the PostgreSQL at 127.0.0.1:5432, skipped when away)
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
BOTH_JOURNALS = pytest.mark.parametrize(
    "database_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    indirect=True)


@pytest.fixture
def rig(tmp_path: Path, database_url: str) -> Iterator[Rig]:
    sandbox, sandbox_url, printed = start_sandbox(tmp_path / "sandbox.log", "--order-rate",
                                                  "10")
    bridge_port = free_port()
    try:
        env = {**os.environ, **printed, "WEBHOOK_SECRET": SECRET,
               "DATABASE_URL": database_url, "DATA_DIR": str(tmp_path / "data"),
               "BRIDGE_BIND": f"127.0.0.1:{bridge_port}", "WEB_CONCURRENCY": "4",
               "KOTAK_ORDER_RATE": "10", "MARKET_HOURS": "ignore",
               "ENV_FILE": str(tmp_path / "none.env"), "LOG_LEVEL": "WARNING"}
        yield Rig(sandbox_url, f"http://127.0.0.1:{bridge_port}", env,
                  tmp_path / "bridge.log", database_url)
    finally:
        stop(sandbox)


def post(rig: Rig, n: int) -> tuple[str, int | None, float]:
    body = {"secret": SECRET, "symbol": "NSE:SBIN", "action": "BUY", "quantity": 1,
            "alert_id": f"burst-{n}"}
    started = time.monotonic()
    try:
        response = requests.post(f"{rig.bridge_url}/webhook/tradingview",
                                 data=json.dumps(body), timeout=10,
                                 headers={"Content-Type": "text/plain"})
        return body["alert_id"], response.status_code, time.monotonic() - started
    except requests.RequestException:
        return body["alert_id"], None, time.monotonic() - started


def burst(rig: Rig, count: int) -> list[tuple[str, int | None, float]]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda n: post(rig, n), range(count)))


def max_per_second(times: list[float]) -> int:
    return max((sum(1 for t in times if start <= t < start + 1.0) for start in times),
               default=0)


def wait_until_placed(rig: Rig, count: int, deadline_s: float) -> None:
    """Wait until ``count`` orders reached the sandbox: on a busy machine, or while a
    journal opens its first connections, the burst may not have begun by the kill."""
    deadline = time.monotonic() + deadline_s
    while len(rig.placements()) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def settle(rig: Rig, timeout: float) -> list[Any]:
    """Wait until no signal is still waiting or being sent and no order is still working;
    return the signals. (A signal is ``placed`` once Kotak accepts its order: one the killed
    process saw accepted is followed to ``complete`` by the restarted one's tracker.)"""
    journal = rig.journal()
    deadline = time.monotonic() + timeout
    try:
        while True:
            rows = journal.signals.recent_signals(limit=1000)
            pending = [r for r in rows if r.status.pending or r.status is SignalStatus.UNKNOWN]
            if (not pending and not journal.orders.working_orders()) or time.monotonic() > deadline:
                return rows
            time.sleep(0.5)
    finally:
        journal.engine.dispose()


@SQLITE_ONLY
def test_burst_of_50_is_placed_within_the_rate_and_answered_fast(rig: Rig) -> None:
    # The shipped two workers (deploy/gunicorn.conf.py) on this 2-core machine: four would
    # spend the burst booting beside each other (each parses the scrip master as it boots).
    rig.env["WEB_CONCURRENCY"] = "2"
    bridge = rig.start_bridge()
    try:
        answers = burst(rig, 50)

        slowest = max(elapsed for _, _, elapsed in answers)
        assert slowest < 1.0, f"slowest answer took {slowest:.3f}s"
        assert sorted({code for _, code, _ in answers}) in ([200, 202], [200])
        rows = settle(rig, timeout=30)
        assert sum(1 for r in rows if r.status is SignalStatus.PLACED) == 50
        placements = rig.placements()
        assert len(placements) == 50 and {p["status"] for p in placements} == {200}
        assert max_per_second([p["at"] for p in placements]) <= 10
        assert len({json.loads(p["jdata"])["ig"] for p in placements}) == 50
    finally:
        stop(bridge)
    assert "Traceback" not in rig.log.read_text()


@BOTH_JOURNALS
def test_kill_minus_nine_mid_burst_loses_and_doubles_nothing(rig: Rig) -> None:
    bridge = rig.start_bridge()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(burst, rig, 40)
        time.sleep(0.6)  # some placed, the rest queued behind the rate limit
        wait_until_placed(rig, 3, deadline_s=15)  # however slowly the burst started
        os.killpg(bridge.pid, signal.SIGKILL)
        bridge.wait(10)
        answers = pending.result()
    acknowledged = {alert for alert, code, _ in answers if code in (200, 202)}
    assert acknowledged, "nothing was acknowledged before the kill"

    restarted = rig.start_bridge()
    try:
        rows = settle(rig, timeout=90)
    finally:
        stop(restarted)

    by_alert = {row.alert_id: row for row in rows}
    for alert in acknowledged:
        assert by_alert[alert].status in (SignalStatus.PLACED, SignalStatus.EXPIRED), \
            (alert, by_alert[alert].status)
    unsettled = [(r.alert_id, r.status, r.error) for r in rows
                 if r.status not in (SignalStatus.PLACED, SignalStatus.EXPIRED)]
    assert not unsettled, unsettled
    journal = rig.journal()
    try:
        journal_tags = {order.tag for row in rows for order in journal.orders.orders_of(row.id)
                        if order.status is OrderState.COMPLETE}
        orders_per_signal = [len(journal.orders.orders_of(row.id)) for row in rows]
    finally:
        journal.engine.dispose()
    book_tags = [json.loads(p["jdata"])["ig"] for p in rig.placements() if p["status"] == 200]
    assert len(book_tags) == len(set(book_tags)), "an order reached the broker twice"
    assert set(book_tags) == journal_tags
    assert max(orders_per_signal) <= 1
