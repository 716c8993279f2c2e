"""Under gunicorn any worker answers ``/metrics``, and every answer adds up all workers'
counts (prometheus_client's multiprocess mode, set up by ``deploy/gunicorn.conf.py``)."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.e2e.helpers import ROOT, free_port, start, stop, wait_for
from tests.metrics.conftest import Scrape

pytestmark = pytest.mark.e2e
SECRET = "e2e-metrics-secret-0123456789"
SIGNALS = 12


def test_two_workers_report_the_same_totals(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    stale = data / "prometheus" / "counter_1.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left over from an earlier run")  # unreadable: must be cleared
    env = {name: value for name, value in os.environ.items()
           if name != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"ENV_FILE": str(tmp_path / "none.env"), "DATA_DIR": str(data),
                "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}",
                "BRIDGE_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2",
                "WEBHOOK_SECRET": SECRET, "MARKET_HOURS": "ignore", "LOG_LEVEL": "WARNING"})
    log = tmp_path / "gunicorn.log"
    process = start([str(ROOT / ".venv/bin/gunicorn"), "-c", "deploy/gunicorn.conf.py",
                     "wsgi:app"], env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/readyz", process, log)
        assert not stale.exists()

        def post(n: int) -> str:
            body = {"secret": SECRET, "symbol": "NSE:SBIN", "action": "BUY", "quantity": 1,
                    "alert_id": f"g-{n}"}
            answer = requests.post(f"{base}/webhook/tradingview", data=json.dumps(body),
                                   timeout=10)
            return str(answer.json()["status"])

        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = list(pool.map(post, range(SIGNALS)))
        assert set(statuses) <= {"placed", "queued"}, statuses

        # Queued signals are sent by a dispatcher a moment later; their latency counts too.
        deadline = time.monotonic() + 30
        while True:
            scrapes = [Scrape(requests.get(f"{base}/metrics", timeout=5).text)
                       for _ in range(8)]
            sent = [s.value("bridge_signal_to_broker_seconds_count") for s in scrapes]
            if all(count == SIGNALS for count in sent) or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert sent == [SIGNALS] * 8, log.read_text()
        for scrape in scrapes:
            answered = sum(scrape.value("bridge_signals_total", source="tradingview",
                                        outcome=outcome) for outcome in ("placed", "queued"))
            assert answered == SIGNALS
            assert scrape.value("bridge_signals_total", source="tradingview",
                                outcome="placed") == statuses.count("placed")
            assert scrape.has("bridge_queue_depth") and scrape.has("bridge_kill_switch")
        assert len(list((data / "prometheus").glob("counter_*.db"))) >= 2  # one per worker
    finally:
        stop(process)
