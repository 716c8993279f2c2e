"""Benchmark: alert-to-broker overhead and sustained signal throughput.

    .venv/bin/python bench/signals.py [--seconds 30] [--rate 20] [--clients 16]

Starts a standalone Kotak sandbox (no added latency, no rate limit) and the bridge under
gunicorn with ``deploy/gunicorn.conf.py`` (live mode pointed at the sandbox, SQLite journal),
then:

1. **Overhead at a steady rate**: ``--rate`` signals per second for ``--seconds``; for each,
   the time from the bridge receiving the request (the journal's ``received_at``) to the order
   reaching the sandbox (its request log), both stamped by this machine's clock. p50 and p99.
2. **Sustained throughput**: ``--clients`` callers posting back to back for ``--seconds`` / 2,
   the broker rate limit lifted (``KOTAK_ORDER_RATE=10000``); orders that reached the sandbox
   per second, from the first post until the queue has drained (a signal answered "queued"
   counts when it is sent, not when it is answered).
3. **Baseline**: the same throughput test against a bare Flask endpoint
   (``bench/bare_app.py``) under the same gunicorn settings.

Targets: overhead p50 under 3 ms and p99 under 15 ms at 20 signals/s; sustained throughput at
least a quarter of the bare endpoint's.

With ``--prefill N`` the run instead compares two journals on the same sandbox: an empty one,
and one holding N signals with their orders over 250 trading days (``bench/prefill.py``).
Each gets the steady phase and a signed-in phone's reads of the overview (``/``) and of what
it polls (``/live``). Targets: overhead p50 and p99 within 15% of the empty journal's, the
pages within 2x.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select  # noqa: E402

from bridge.journal.tables import orders, signals  # noqa: E402

SECRET = "bench-secret-0123456789abcdef"
PASSWORD = "bench-dashboard-password"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def launch(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)


def halt(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def start_sandbox(folder: Path, order_rate: int = 0, *extra: str
                  ) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    port = free_port()
    log = folder / "sandbox.log"
    process = launch([sys.executable, "-m", "bridge.kotak.sandbox", "--port", str(port),
                      "--order-rate", str(order_rate), "--no-market-protection", *extra],
                     {**os.environ, "PYTHONPATH": str(ROOT)}, log)
    deadline = time.monotonic() + 30
    while "(legacy OTP:" not in log.read_text():
        if time.monotonic() > deadline:
            raise RuntimeError("sandbox did not start")
        time.sleep(0.1)
    printed = {k.strip(): v.strip() for k, _, v in
               (line.partition("=") for line in log.read_text().splitlines())
               if k.strip().isupper()}
    return process, f"http://127.0.0.1:{port}", printed


def start_bridge(folder: Path, credentials: dict[str, str], rate: int,
                 app: str = "wsgi:app") -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    database = folder / f"bridge-{port}.db"
    env = {**os.environ, **credentials, "WEBHOOK_SECRET": SECRET,
           "DATABASE_URL": f"sqlite:///{database}", "DATA_DIR": str(folder / "data"),
           "BRIDGE_BIND": f"127.0.0.1:{port}", "KOTAK_ORDER_RATE": str(rate),
           "MARKET_HOURS": "ignore", "LOG_LEVEL": "WARNING", "DEDUP_WINDOW_S": "0",
           "MAX_ORDERS_PER_DAY": "0", "MAX_ORDERS_PER_STRATEGY": "0",
           "INBOUND_LIMIT_PER_MINUTE": "100000",
           "ENV_FILE": str(folder / "none.env"), "PYTHONPATH": str(ROOT)}
    process = launch([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", app],
                     env, folder / f"gunicorn-{port}.log")
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz" if app == "wsgi:app" else f"{url}/nothing")
    return process, url, f"sqlite:///{database}"


def cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """User + system CPU of a process group (gunicorn's master and workers, or the sandbox)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == process.pid:  # process group id
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def body(n: int) -> str:
    return json.dumps({"secret": SECRET, "symbol": "NSE:SBIN", "action": "BUY",
                       "quantity": 1, "alert_id": f"bench-{n}"})


def steady(url: str, rate: int, seconds: float) -> list[float]:
    """Post at a fixed rate; return client-side latencies."""
    latencies: list[float] = []
    lock = threading.Lock()
    session_local = threading.local()

    def one(n: int) -> None:
        session = getattr(session_local, "s", None) or requests.Session()
        session_local.s = session
        started = time.perf_counter()
        answer = session.post(f"{url}/webhook/tradingview", data=body(n), timeout=10)
        elapsed = time.perf_counter() - started
        if answer.status_code != 200:
            raise RuntimeError(f"HTTP {answer.status_code}: {answer.text[:200]}")
        with lock:
            latencies.append(elapsed)

    threads: list[threading.Thread] = []
    start = time.perf_counter()
    for n in range(int(rate * seconds)):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        thread = threading.Thread(target=one, args=(n,))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return latencies


def closed_loop(url: str, clients: int, seconds: float, make_body: Callable[[int], str]) -> float:
    """``clients`` callers posting back to back; return accepted answers (200/202) per second.

    Any other answer stops the run: a refusal is fast and would flatter the figure.
    """
    count = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def caller(offset: int) -> None:
        session = requests.Session()
        n = offset * 10_000_000
        while time.perf_counter() < stop:
            answer = session.post(f"{url}/webhook/tradingview", data=make_body(n), timeout=10)
            if answer.status_code not in (200, 202):
                raise RuntimeError(f"HTTP {answer.status_code}: {answer.text[:200]}")
            n += 1
            with lock:
                count[0] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=caller, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return count[0] / (time.perf_counter() - started)


def drained(database_url: str, sandbox_url: str, timeout: float = 120) -> tuple[int, float]:
    """Wait until no signal is queued or being sent; return the orders that reached the
    sandbox and when the last one arrived. A signal answered "queued" counts only once it
    is sent, so a fast 202 cannot flatter the figure."""
    engine = create_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                waiting = conn.execute(select(signals.c.id).where(
                    signals.c.status.in_(["received", "queued", "dispatching"])).limit(1)).first()
            if waiting is None:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("the bridge did not drain its queue")
    finally:
        engine.dispose()
    arrivals = requests.get(f"{sandbox_url}/_sandbox/requests", params={"endpoint": "place"},
                            timeout=30).json()["requests"]
    return len(arrivals), max(arrival["at"] for arrival in arrivals)


def overheads(database_url: str, sandbox_url: str) -> list[float]:
    engine = create_engine(database_url)
    query = select(orders.c.tag, signals.c.received_at).join(
        signals, signals.c.id == orders.c.signal_id)
    with engine.connect() as conn:
        received = {row.tag: row.received_at.timestamp() for row in conn.execute(query)}
    engine.dispose()
    arrivals = requests.get(f"{sandbox_url}/_sandbox/requests", params={"endpoint": "place"},
                            timeout=30).json()["requests"]
    return [arrival["at"] - received[tag] for arrival in arrivals
            if (tag := json.loads(arrival["jdata"]).get("ig")) in received]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def page_times(url: str, repeat: int = 30) -> dict[str, float]:
    """Sign in as a person would, then time the overview and what the page polls."""
    session = requests.Session()
    token = _CSRF.search(session.get(f"{url}/login", timeout=10).text)
    assert token, "the login page carries no CSRF token"
    answer = session.post(f"{url}/login", data={"csrf": token.group(1), "password": PASSWORD},
                          timeout=10, allow_redirects=False)
    if answer.status_code != 302:
        raise RuntimeError(f"sign-in refused: HTTP {answer.status_code}")
    timings: dict[str, float] = {}
    for page in ("/", "/live"):
        times = []
        for _ in range(repeat):
            began = time.perf_counter()
            if session.get(f"{url}{page}", timeout=30).status_code != 200:
                raise RuntimeError(f"{page} did not answer 200")
            times.append(time.perf_counter() - began)
        timings[f"{page}_p50_ms"] = round(percentile(times, 50) * 1000, 2)
    return timings


def journal_run(folder: Path, credentials: dict[str, str], sandbox_url: str, args: Any,
                history: int) -> dict[str, Any]:
    """The steady phase and the pages, on a journal holding ``history`` signals."""
    from prefill import prefill

    run = folder / f"journal-{history}"
    run.mkdir()
    with_password = {**credentials, "ADMIN_PASSWORD": PASSWORD}
    result: dict[str, Any] = {"history_signals": history}
    if history:
        bridge, _, database = start_bridge(run, with_password, rate=10_000)
        halt(bridge)  # its start made the journal's tables
        result["prefill_s"] = round(prefill(database, history), 1)
    bridge, url, database = start_bridge(run, with_password, rate=10_000)
    try:
        steady(url, args.rate, 2)  # warm up every worker
        requests.delete(f"{sandbox_url}/_sandbox/requests", timeout=5)
        latencies = steady(url, args.rate, args.seconds)
        gaps = overheads(database, sandbox_url)
        result.update({
            "signals": len(latencies),
            "overhead_p50_ms": round(percentile(gaps, 50) * 1000, 2),
            "overhead_p99_ms": round(percentile(gaps, 99) * 1000, 2),
            "answer_p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "answer_p99_ms": round(percentile(latencies, 99) * 1000, 2),
            **page_times(url)})
    finally:
        halt(bridge)
    return result


def compare_histories(args: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sandbox, sandbox_url, credentials = start_sandbox(folder)
        try:
            empty = journal_run(folder, credentials, sandbox_url, args, 0)
            full = journal_run(folder, credentials, sandbox_url, args, args.prefill)
        finally:
            halt(sandbox)
    ratios = {key: round(full[key] / empty[key], 3) for key in
              ("overhead_p50_ms", "overhead_p99_ms", "answer_p50_ms", "/_p50_ms",
               "/live_p50_ms")}
    return {"empty": empty, "full": full, "full_over_empty": ratios}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--prefill", type=int, default=0,
                        help="compare an empty journal with one holding this many signals")
    args = parser.parse_args()
    if args.prefill:
        sys.stdout.write(json.dumps(compare_histories(args), indent=2) + "\n")
        return 0
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sandbox, sandbox_url, credentials = start_sandbox(folder)
        try:
            bridge, url, database = start_bridge(folder, credentials, rate=10_000)
            try:
                steady(url, args.rate, 2)  # warm up every worker
                requests.delete(f"{sandbox_url}/_sandbox/requests", timeout=5)
                latencies = steady(url, args.rate, args.seconds)
                gaps = overheads(database, sandbox_url)
                report["steady"] = {
                    "signals": len(latencies), "rate_per_s": args.rate,
                    "overhead_p50_ms": percentile(gaps, 50) * 1000,
                    "overhead_p99_ms": percentile(gaps, 99) * 1000,
                    "answer_p50_ms": percentile(latencies, 50) * 1000,
                    "answer_p99_ms": percentile(latencies, 99) * 1000,
                    "answer_max_ms": max(latencies) * 1000,
                }
                requests.delete(f"{sandbox_url}/_sandbox/requests", timeout=5)
                bridge_cpu, sandbox_cpu = cpu_seconds(bridge), cpu_seconds(sandbox)
                started = time.time()
                answered = closed_loop(url, args.clients, args.seconds / 2,
                                       lambda n: body(n + 1_000_000))
                placed, last = drained(database, sandbox_url)
                rate = placed / (last - started)
                report["bridge_answers_per_s"] = answered
                report["bridge_signals_per_s"] = rate
                report["cpu_ms_per_signal"] = {
                    "bridge": (cpu_seconds(bridge) - bridge_cpu) / placed * 1000,
                    "sandbox": (cpu_seconds(sandbox) - sandbox_cpu) / placed * 1000,
                }
            finally:
                halt(bridge)
            bare, bare_url, _ = start_bridge(folder, credentials, rate=10_000,
                                             app="bench.bare_app:app")
            try:
                bare_cpu = cpu_seconds(bare)
                started = time.perf_counter()
                report["bare_requests_per_s"] = closed_loop(bare_url, args.clients,
                                                            args.seconds / 2, body)
                handled = report["bare_requests_per_s"] * (time.perf_counter() - started)
                report["cpu_ms_per_signal"]["bare_endpoint"] = (
                    (cpu_seconds(bare) - bare_cpu) / handled * 1000)
            finally:
                halt(bare)
        finally:
            halt(sandbox)
    report["throughput_ratio"] = report["bridge_signals_per_s"] / report["bare_requests_per_s"]
    report["cpu"] = os.cpu_count()
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
