"""Orders dispatched per second when signals fan out to many accounts, against the number of
bridge processes sharing one PostgreSQL journal.

A Kotak sandbox on loopback holding every account, each limited to 10 order requests per
second (as Kotak limits each account); P bridge processes (gunicorn, 2 workers each, as on P
hosts) against the PostgreSQL at ``--database`` (a fresh schema per run). ``--alerts``
signals to a strategy every account follows are posted, spread over the processes; the
figure is orders accepted by the sandbox per second, from the first post to the last order,
against the ceiling of accounts x 10/s.

    .venv/bin/python bench/fanout.py                 # --processes 1,2,4 --accounts 10,50,200
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# bench/signals.py (beside this file, on the path when run as a script)
from signals import cpu_seconds  # noqa: E402

from bridge.accounts import secret_env_name  # noqa: E402
from bridge.kotak.sandbox import Sandbox, SandboxAccount, SandboxConfig, SandboxServer  # noqa: E402

SECRET = "bench-fanout-secret-0123456789"
RATE = 10
#: the bridges are taken as started up once they use less than this share of a core
QUIET_SHARE = 0.05


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def one_run(processes: int, accounts: int, alerts: int, database: str) -> dict[str, float]:
    members = [SandboxAccount.generate(f"BF{n:04d}") for n in range(accounts)]
    schema = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(database)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{database}?options=-csearch_path%3D{schema}"
    with tempfile.TemporaryDirectory() as folder, \
            SandboxServer(Sandbox(members, config=SandboxConfig(order_rate=RATE))) as server:
        names = {f"b{n:04d}": m for n, m in enumerate(members[1:], start=1)}
        Path(folder, "accounts.json").write_text(json.dumps({
            "accounts": {name: {"ucc": m.ucc, "mobile": m.mobile, "mode": "live"}
                         for name, m in names.items()},
            "strategies": {"fan": ["default", *names]}}))
        default = members[0]
        env = {**os.environ, "ENV_FILE": f"{folder}/none.env", "BRIDGE_MODE": "live",
               "WEBHOOK_SECRET": SECRET, "DATABASE_URL": url,
               "BRIDGE_SECRET_KEY": Fernet.generate_key().decode(),
               **server.settings(),
               "BROKER_API_KEY": default.consumer_key,
               "KOTAK_UCC": default.ucc, "KOTAK_MOBILE": default.mobile,
               "KOTAK_MPIN": default.mpin, "KOTAK_TOTP_SECRET": default.totp_secret,
               "KOTAK_ORDER_RATE": str(RATE), "MARKET_HOURS": "ignore",
               "ACCOUNTS_FILE": f"{folder}/accounts.json", "SESSION_STAGGER_S": "0",
               "SIGNAL_TTL_S": "3600", "WEB_CONCURRENCY": "2", "LOG_LEVEL": "ERROR",
               "MAX_ORDERS_PER_DAY": "0", "MAX_ORDERS_PER_STRATEGY": "0"}
        for name, member in names.items():
            env[secret_env_name(name, "BROKER_API_KEY")] = member.consumer_key
            env[secret_env_name(name, "MPIN")] = member.mpin
            env[secret_env_name(name, "TOTP_SECRET")] = member.totp_secret
        ports = [_free_port() for _ in range(processes)]
        running = []
        for number, port in enumerate(ports):
            running.append(subprocess.Popen(
                [str(ROOT / ".venv/bin/gunicorn"), "-c", "deploy/gunicorn.conf.py",
                 "wsgi:app"], cwd=ROOT, start_new_session=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={**env, "BRIDGE_BIND": f"127.0.0.1:{port}",
                     "DATA_DIR": f"{folder}/host-{number}"}))
        try:
            for port in ports:
                _wait(f"http://127.0.0.1:{port}/healthz")
            warm = _quiet(running)
            server.sandbox.requests.clear()
            wanted = accounts * alerts
            bridge_cpu = sum(cpu_seconds(process) for process in running)
            own_cpu = sum(os.times()[:2])
            started = time.time()
            def post(n: int) -> float:
                began = time.monotonic()
                requests.post(
                    f"http://127.0.0.1:{ports[n % processes]}/webhook/tradingview",
                    timeout=120, json={"secret": SECRET, "symbol": "NSE:SBIN",
                                       "action": "BUY" if n % 2 else "SELL", "quantity": 1,
                                       "strategy": "fan", "alert_id": f"a{n}"})
                return time.monotonic() - began

            with ThreadPoolExecutor(max_workers=4 * processes) as pool:
                answers = sorted(pool.map(post, range(alerts)))
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                done = [r for r in server.sandbox.requests.snapshot("place")
                        if r.status == 200]
                if len(done) >= wanted:
                    break
                time.sleep(0.2)
            arrivals = sorted(r.at - started for r in done)
            last = started + arrivals[-1]
            bridge_cpu = sum(cpu_seconds(process) for process in running) - bridge_cpu
            own_cpu = sum(os.times()[:2]) - own_cpu
            refused = sum(1 for r in server.sandbox.requests.snapshot("place")
                          if r.status == 429)
        finally:
            for process in running:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
    seconds = last - started
    ceiling = accounts * RATE
    return {"processes": processes, "accounts": accounts, "orders": len(done),
            "seconds": round(seconds, 2), "orders_per_s": round(len(done) / seconds, 1),
            "ceiling_per_s": ceiling,
            "share_of_ceiling": round(len(done) / seconds / ceiling, 3),
            "floor_s": round(alerts / RATE, 1), "rate_refusals": refused,
            "answer_p50_s": round(answers[len(answers) // 2], 2),
            "answer_max_s": round(answers[-1], 2),
            "first_order_s": round(arrivals[0], 3),
            "median_order_s": round(arrivals[len(arrivals) // 2], 3),
            "last_order_s": round(arrivals[-1], 3),
            "bridge_cpu_ms_per_order": round(bridge_cpu / len(done) * 1000, 2),
            "warm_after_s": round(warm, 1),
            "sandbox_and_client_cpu_ms_per_order": round(own_cpu / len(done) * 1000, 2)}


def _quiet(running: list[subprocess.Popen[bytes]]) -> float:
    """Wait until the bridges have finished starting up: the scrip master read, every
    account logged in, the first reconciliation done (each runs in the background once
    ``/healthz`` answers). A bridge that runs all day is past this when an alert comes; the
    figures are for that bridge, not one still busy logging 200 accounts in. Returns the
    seconds it took."""
    began = time.monotonic()
    before = sum(cpu_seconds(process) for process in running)
    while time.monotonic() - began < 120:
        time.sleep(0.5)
        now = sum(cpu_seconds(process) for process in running)
        if now - before < 0.5 * QUIET_SHARE:
            break
        before = now
    return time.monotonic() - began


def _wait(url: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} never answered")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--accounts", default="10,50,200")
    parser.add_argument("--alerts", type=int, default=30,
                        help="signals, each to every account (>= 30 keeps 3 s of queue)")
    parser.add_argument("--database", default=os.environ.get(
        "BRIDGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    for accounts in (int(a) for a in args.accounts.split(",")):
        for processes in (int(p) for p in args.processes.split(",")):
            result = one_run(processes, accounts, args.alerts, args.database)
            sys.stdout.write(json.dumps(result) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
