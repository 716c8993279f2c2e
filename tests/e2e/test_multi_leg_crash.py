"""Kill -9 in the middle of a 4-leg option signal, then restart: every leg reached Kotak once
or is recorded as never sent, and the signal's status and error say which."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
SECRET = "e2e-legs-secret-0123456789"
#: an iron condor on NIFTY, its short legs listed first (the bridge sends BUY legs first)
LEGS = [{"offset": offset, "option_type": kind, "action": action, "quantity": 65}
        for offset, kind, action in (("OTM2", "CE", "SELL"), ("OTM4", "CE", "BUY"),
                                     ("OTM2", "PE", "SELL"), ("OTM4", "PE", "BUY"))]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    sandbox, sandbox_url, printed = start_sandbox(tmp_path / "sandbox.log", "--cash",
                                                  "100000000")
    port = free_port()
    env = {**os.environ, **printed, "WEBHOOK_SECRET": SECRET,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}",
           "DATA_DIR": str(tmp_path / "data"), "BRIDGE_BIND": f"127.0.0.1:{port}",
           "WEB_CONCURRENCY": "2", "MARKET_HOURS": "ignore", "LOG_LEVEL": "WARNING",
           # One order a second: the kill lands between legs, whatever the machine's speed.
           "KOTAK_ORDER_RATE": "1", "SIGNAL_TTL_S": "60",
           "ENV_FILE": str(tmp_path / "none.env")}
    try:
        yield sandbox_url, env, tmp_path
    finally:
        stop(sandbox)


def placements(sandbox_url: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{sandbox_url}/_sandbox/requests", params={"endpoint": "place"},
                          timeout=5).json()
    return [p for p in answer["requests"] if p["status"] == 200]


def start_bridge(env: dict[str, str], log: Path, port_url: str) -> Any:
    process = start([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
                     "wsgi:app"], env, log)
    wait_for(f"{port_url}/readyz", process, log)
    return process


def test_kill_minus_nine_mid_legs_places_each_leg_once_or_says_not(
        rig: tuple[str, dict[str, str], Path]) -> None:
    sandbox_url, env, tmp_path = rig
    bridge_url = f"http://{env['BRIDGE_BIND']}"
    log = tmp_path / "bridge.log"
    bridge = start_bridge(env, log, bridge_url)
    body = json.dumps({"secret": SECRET, "alert_id": "legs-kill", "strategy": "condor",
                       "underlying": "NIFTY", "exchange": "NSE_INDEX", "product": "NRML",
                       "legs": LEGS})
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: requests.post(f"{bridge_url}/webhook/tradingview", data=body,
                                          timeout=10))
        deadline = time.monotonic() + 20
        while len(placements(sandbox_url)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(bridge.pid, signal.SIGKILL)
        bridge.wait(10)
    sent_before = len(placements(sandbox_url))
    assert 2 <= sent_before < 4, sent_before

    restarted = start_bridge(env, log, bridge_url)
    journal = Journal(create_db_engine(env["DATABASE_URL"]), SystemClock())
    try:
        deadline = time.monotonic() + 60
        while True:
            row = journal.signals.signals_by_alert_id("legs-kill")[0]
            orders = journal.orders.orders_of(row.id)
            if ((not row.status.pending and row.status is not SignalStatus.UNKNOWN
                 and all(o.status.final for o in orders)) or time.monotonic() > deadline):
                break
            time.sleep(0.2)
    finally:
        stop(restarted)
        journal.engine.dispose()

    tags = [json.loads(p["jdata"])["ig"] for p in placements(sandbox_url)]
    assert len(tags) == len(set(tags)), "a leg reached Kotak twice"
    assert len(orders) == 4
    at_kotak = {o.tag for o in orders if o.status is OrderState.COMPLETE}
    never = [o for o in orders if o.status in (OrderState.FAILED, OrderState.NOT_PLACED)]
    assert at_kotak == set(tags)
    assert len(at_kotak) + len(never) == 4
    if never:
        assert row.status is SignalStatus.PARTIAL, (row.status, row.error)
        assert row.error is not None and len(row.error.details["not_placed"]) == len(never)
    else:
        assert row.status is SignalStatus.PLACED
    # The legs were picked once, at intake: the restarted process sent (or failed) the
    # journaled contracts, BUY legs first, whatever the index did meanwhile.
    assert row.signal is not None
    picked = [(leg.symbol, leg.side.value[0]) for leg in row.signal.legs]
    assert [leg.side.value for leg in row.signal.legs] == ["BUY", "BUY", "SELL", "SELL"]
    assert [(o.trading_symbol, o.side[0]) for o in orders] == picked
    sent = [(json.loads(p["jdata"])["ts"], json.loads(p["jdata"])["tt"])
            for p in placements(sandbox_url)]
    assert sent == picked[:len(sent)]
    assert "Traceback" not in log.read_text()
