"""Three bridge processes (as on three hosts) share one PostgreSQL journal: a burst of
signals fanned out to 50 sandbox accounts, one process killed mid-burst. Every order is
placed exactly once, no account ever exceeds its 10 orders per second at the broker, and the
survivors finish the dead one's work."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, func, select

from bridge.journal.tables import orders, signals
from bridge.kotak.sandbox import Sandbox, SandboxAccount, SandboxConfig, SandboxServer
from tests.accounts.conftest import account_entry, secrets_of
from tests.e2e.helpers import ROOT, free_port, start, stop, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SECRET = "e2e-fanout-secret-0123456789"
ACCOUNTS = 50
ALERTS = 20
RATE = 10


@pytest.fixture
def fleet() -> Iterator[tuple[SandboxServer, list[SandboxAccount]]]:
    members = [SandboxAccount.generate(f"MP{number:03d}") for number in range(ACCOUNTS)]
    with SandboxServer(Sandbox(members, config=SandboxConfig(order_rate=RATE))) as server:
        yield server, members


def _environment(tmp_path: Path, server: SandboxServer, members: list[SandboxAccount],
                 database_url: str) -> dict[str, str]:
    default, others = members[0], members[1:]
    names = {f"m{number:03d}": member for number, member in enumerate(others)}
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps({
        "accounts": {name: account_entry(member) for name, member in names.items()},
        "strategies": {"fan": ["default", *names]}}))
    env = {**os.environ, "ENV_FILE": str(tmp_path / "none.env"), "BRIDGE_MODE": "live",
           "WEBHOOK_SECRET": SECRET, "DATABASE_URL": database_url,
           "BRIDGE_SECRET_KEY": Fernet.generate_key().decode(),  # one key for every host
           **server.settings(),
           "BROKER_API_KEY": default.consumer_key,
           "KOTAK_UCC": default.ucc, "KOTAK_MOBILE": default.mobile,
           "KOTAK_MPIN": default.mpin, "KOTAK_TOTP_SECRET": default.totp_secret,
           "KOTAK_ORDER_RATE": str(RATE), "MARKET_HOURS": "ignore", "ACCOUNTS_FILE": str(path),
           "SESSION_STAGGER_S": "0", "SIGNAL_TTL_S": "600", "WEB_CONCURRENCY": "2",
           "LOG_LEVEL": "WARNING"}
    for name, member in names.items():
        env.update(secrets_of(name, member))
    return env


def _story(database_url: str, placed: int, wanted: int) -> str:
    """What the journal says when orders are missing: signals and orders by status, and
    the first failed signal's reason."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            by_signal = conn.execute(select(signals.c.status, func.count())
                                     .group_by(signals.c.status)).all()
            by_order = conn.execute(select(orders.c.status, func.count())
                                    .group_by(orders.c.status)).all()
            failed = conn.execute(select(signals.c.error_message)
                                  .where(signals.c.status == "failed").limit(1)).scalar()
    finally:
        engine.dispose()
    return (f"{placed} of {wanted} orders placed; signals {by_signal}; orders {by_order}; "
            f"first failure: {failed}")


def _post(port: int, alert: str) -> dict[str, Any] | None:
    try:
        answer = requests.post(f"http://127.0.0.1:{port}/webhook/tradingview", timeout=30, json={
            "secret": SECRET, "symbol": "NSE:SBIN", "action": "BUY", "quantity": 1,
            "strategy": "fan", "alert_id": alert})
    except requests.RequestException:
        return None
    body: dict[str, Any] = answer.json()
    return body


def test_three_processes_share_a_burst_and_survive_a_kill(
        tmp_path: Path, database_url: str,
        fleet: tuple[SandboxServer, list[SandboxAccount]]) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("several hosts share the work only through PostgreSQL")
    server, members = fleet
    env = _environment(tmp_path, server, members, database_url)
    ports = [free_port() for _ in range(3)]
    processes = []
    for number, port in enumerate(ports):
        log = tmp_path / f"bridge-{number}.log"
        processes.append((start([str(ROOT / ".venv/bin/gunicorn"), "-c",
                                 "deploy/gunicorn.conf.py", "wsgi:app"],
                                {**env, "BRIDGE_BIND": f"127.0.0.1:{port}",
                                 "DATA_DIR": str(tmp_path / f"host-{number}")}, log), log))
    try:
        for (process, log), port in zip(processes, ports, strict=True):
            wait_for(f"http://127.0.0.1:{port}/healthz", process, log, deadline_s=120)
        server.sandbox.requests.clear()

        alerts = [f"burst-{number}" for number in range(ALERTS)]
        victim = processes[0][0]
        with ThreadPoolExecutor(max_workers=6) as pool:
            futures = [pool.submit(_post, ports[number % 3], alert)
                       for number, alert in enumerate(alerts)]
            # The host dies mid-burst: once a quarter of the orders have reached Kotak.
            deadline = time.monotonic() + 60
            while (len(server.sandbox.requests.snapshot("place")) < ACCOUNTS * ALERTS // 4
                   and time.monotonic() < deadline):
                time.sleep(0.02)
            os.killpg(victim.pid, signal.SIGKILL)
            placed_at_kill = len(server.sandbox.requests.snapshot("place"))
            answers = [future.result() for future in futures]
        assert 0 < placed_at_kill < ACCOUNTS * ALERTS
        # A caller whose request died with the host sends it again, to a survivor.
        for alert, answer in zip(alerts, answers, strict=True):
            if answer is None:
                assert _post(ports[1], alert) is not None

        wanted = ACCOUNTS * ALERTS
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            placed = [r for r in server.sandbox.requests.snapshot("place") if r.status == 200]
            if len(placed) >= wanted:
                break
            time.sleep(0.5)
        time.sleep(2)  # anything extra would show now
        log = server.sandbox.requests.snapshot("place")
        accepted = [r for r in log if r.status == 200]
        tags = Counter(json.loads(r.jdata)["ig"] for r in accepted)
        assert len(accepted) == wanted, _story(database_url, len(accepted), wanted)
        assert max(tags.values()) == 1  # no order reached Kotak twice
        assert all(r.status != 429 for r in log)  # Kotak never had to refuse for rate
        per_account: dict[str, list[float]] = defaultdict(list)
        for record in log:
            per_account[record.ucc].append(record.at)
        for moments in per_account.values():
            moments.sort()
            for index in range(len(moments) - RATE):
                assert moments[index + RATE] - moments[index] >= 0.98, "over 10/s"
        engine = create_engine(database_url)
        try:
            with engine.connect() as conn:
                each = conn.execute(
                    select(signals.c.alert_id, orders.c.account, func.count())
                    .select_from(orders.join(signals, orders.c.signal_id == signals.c.id))
                    .where(orders.c.broker_order_id.is_not(None))
                    .group_by(signals.c.alert_id, orders.c.account)).all()
        finally:
            engine.dispose()
        assert len(each) == wanted and all(count == 1 for *_, count in each)
    finally:
        for process, _ in processes:
            stop(process)
