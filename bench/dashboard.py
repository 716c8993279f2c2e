"""What the dashboard and /metrics cost the bridge: server time per page with a full journal.

A live-mode bridge against a Kotak sandbox on a loopback port, a SQLite journal holding
``--signals`` signals (each placed and filled), a signed-in test client. Each page is asked
``--repeat`` times; the broker answers (positions, prices) are cached for 5 s as in
production, so the figures are what a phone polling ``/live`` every 3 s costs.

    .venv/bin/python bench/dashboard.py            # --signals 500 --repeat 50
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge.app import create_app  # noqa: E402
from bridge.config import load_settings  # noqa: E402
from bridge.kotak.sandbox import Sandbox, SandboxAccount, SandboxConfig, SandboxServer  # noqa: E402
from bridge.startup import prepare  # noqa: E402
from bridge.wiring import build_services  # noqa: E402

SECRET = "bench-secret-0123456789"
PASSWORD = "bench-dashboard-password"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    account = SandboxAccount.generate("BENCH1")
    sandbox = Sandbox([account], config=SandboxConfig(order_rate=0))
    with tempfile.TemporaryDirectory() as folder, SandboxServer(sandbox) as server:
        settings = load_settings({
            "BRIDGE_MODE": "live", "WEBHOOK_SECRET": SECRET, "ADMIN_PASSWORD": PASSWORD,
            "DATABASE_URL": f"sqlite:///{folder}/journal.db", "DATA_DIR": f"{folder}/data",
            **server.settings(),
            "BROKER_API_KEY": account.consumer_key,
            "KOTAK_UCC": account.ucc, "KOTAK_MOBILE": account.mobile,
            "KOTAK_MPIN": account.mpin, "KOTAK_TOTP_SECRET": account.totp_secret,
            "KOTAK_ORDER_RATE": "1000", "MARKET_HOURS": "ignore", "LOG_LEVEL": "WARNING",
        })
        services = build_services(settings)
        try:
            prepare(services)
            app = create_app(services=services)
            services.start_background()
            client = app.test_client()
            symbols = ["NSE:SBIN", "NSE:INFY", "NSE:TCS", "NSE:RELIANCE"]
            for number in range(args.signals):
                client.post("/webhook/tradingview", json={
                    "secret": SECRET, "symbol": symbols[number % len(symbols)],
                    "action": "BUY" if number % 2 else "SELL", "quantity": 1,
                    "strategy": f"s{number % 5}", "alert_id": f"bench-{number}"})
            page = client.get("/login").get_data(as_text=True)
            token = re.search(r'name="csrf" value="([^"]+)"', page)
            assert token is not None
            client.post("/login", data={"csrf": token.group(1), "password": PASSWORD})
            results = {}
            for name, path in (("overview", "/"), ("live", "/live"),
                               ("live_filtered", "/live?status=placed&strategy=s1"),
                               ("signal", "/signals/1"), ("metrics", "/metrics")):
                times = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    answer = client.get(path, headers={"X-CSRF-Token": token.group(1)})
                    times.append((time.perf_counter() - started) * 1000)
                    assert answer.status_code == 200, (path, answer.status_code)
                times.sort()
                results[name] = {"p50_ms": round(statistics.median(times), 2),
                                 "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
                                 "bytes": len(answer.get_data())}
        finally:
            services.close()
    sys.stdout.write(json.dumps({"signals_in_journal": args.signals, **results}, indent=2)
                     + "\n")


if __name__ == "__main__":
    main()
