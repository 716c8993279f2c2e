"""Benchmark: does the alert path slow down as the journal fills?

    .venv/bin/python bench/history.py          # --early 150 --burst 3000 --clients 8 --late 150

A standalone Kotak sandbox (no added latency, no rate limit) and the bridge under gunicorn
with ``deploy/gunicorn.conf.py`` in live mode against it, SQLite journal (``--database`` for
PostgreSQL). ``--early`` signals are sent one after another, then ``--burst`` more from
``--clients`` callers at once, then ``--late`` one after another again. The figure is the
ratio of the late answers' p50 to the early answers' p50 (target: at most 1.15), with the
overhead from the journal's ``received_at`` to the sandbox's arrival stamp for both phases.
A run's p50 moves by 10-20% from one run to the next on a shared 2-core machine, so the
whole is repeated ``--repeat`` times, each on a fresh bridge and sandbox, and the median
ratio is the figure. Beside it, the late signals are sent alternately to the aged pair and
to a new sandbox and bridge with empty books: that ratio, measured in the same seconds, is
free of the machine's drift.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

# bench/signals.py puts the repository on the path for the bridge's imports below.
from signals import SECRET, halt, percentile, start_bridge, start_sandbox
from sqlalchemy import create_engine, select

from bridge.journal.tables import orders, signals


def _body(n: int) -> str:
    return json.dumps({"secret": SECRET, "symbol": "NSE:SBIN", "action": "BUY" if n % 2 else "SELL",
                       "quantity": 1, "alert_id": f"history-{n}"})


def sequential(url: str, first: int, count: int) -> list[float]:
    session = requests.Session()
    times = []
    for n in range(first, first + count):
        began = time.perf_counter()
        answer = session.post(f"{url}/webhook/tradingview", data=_body(n), timeout=30)
        times.append(time.perf_counter() - began)
        if answer.status_code != 200:
            raise RuntimeError(f"HTTP {answer.status_code}: {answer.text[:200]}")
    return times


def burst(url: str, first: int, count: int, clients: int) -> float:
    """``clients`` callers share ``count`` signals; return the seconds it took."""
    lock = threading.Lock()
    numbers = iter(range(first, first + count))

    def caller() -> None:
        session = requests.Session()
        while True:
            with lock:
                n = next(numbers, None)
            if n is None:
                return
            answer = session.post(f"{url}/webhook/tradingview", data=_body(n), timeout=60)
            if answer.status_code not in (200, 202):
                raise RuntimeError(f"HTTP {answer.status_code}: {answer.text[:200]}")

    began = time.perf_counter()
    threads = [threading.Thread(target=caller) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


def beside_a_fresh_pair(folder: Path, url: str, first: int,
                        count: int) -> tuple[list[float], list[float]]:
    """The late signals, each followed by one to a new sandbox and bridge with nothing in
    their books or journal: both pairs measured in the same seconds, so the machine's own
    drift (10-20% between runs here) cancels out and what is left is the history's cost."""
    fresh_folder = folder / "fresh"
    fresh_folder.mkdir()
    sandbox, _, credentials = start_sandbox(fresh_folder)
    try:
        bridge, fresh_url, _ = start_bridge(fresh_folder, credentials, rate=10_000)
        try:
            sequential(fresh_url, 10_000_000, 50)  # warm up both workers
            late: list[float] = []
            fresh: list[float] = []
            for n in range(first, first + count):
                late += sequential(url, n, 1)
                fresh += sequential(fresh_url, n, 1)
            return late, fresh
        finally:
            halt(bridge)
    finally:
        halt(sandbox)


def overheads(database_url: str, sandbox_url: str, prefix: str, numbers: range) -> list[float]:
    wanted = {f"{prefix}-{n}" for n in numbers}
    engine = create_engine(database_url)
    query = select(orders.c.tag, signals.c.received_at, signals.c.alert_id).join(
        signals, signals.c.id == orders.c.signal_id)
    with engine.connect() as conn:
        received = {row.tag: row.received_at.timestamp() for row in conn.execute(query)
                    if row.alert_id in wanted}
    engine.dispose()
    arrivals = requests.get(f"{sandbox_url}/_sandbox/requests", params={"endpoint": "place"},
                            timeout=60).json()["requests"]
    return [arrival["at"] - received[tag] for arrival in arrivals
            if (tag := json.loads(arrival["jdata"]).get("ig")) in received]


def ms(values: list[float], pct: float) -> float:
    return round(percentile(values, pct) * 1000, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--early", type=int, default=150)
    parser.add_argument("--burst", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--late", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run(args) for _ in range(args.repeat)]
    ratios = sorted(run["late_over_early_answer_p50"] for run in runs)
    beside = sorted(run["late_over_fresh_answer_p50"] for run in runs)
    summary = {"runs": runs, "late_over_early_answer_p50": ratios,
               "median_late_over_early_answer_p50": ratios[len(ratios) // 2],
               "late_over_fresh_answer_p50": beside,
               "median_late_over_fresh_answer_p50": beside[len(beside) // 2]}
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0


def one_run(args: Any) -> dict[str, Any]:
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sandbox, sandbox_url, credentials = start_sandbox(folder)
        try:
            bridge, url, database = start_bridge(folder, credentials, rate=10_000)
            try:
                sequential(url, 10_000_000, 50)  # warm up both workers
                early = sequential(url, 0, args.early)
                seconds = burst(url, args.early, args.burst, args.clients)
                late_first = args.early + args.burst
                time.sleep(2)  # let the burst's outcome following finish
                late, fresh = beside_a_fresh_pair(folder, url, late_first, args.late)
                report["fresh_beside_late"] = {"signals": args.late,
                                               "answer_p50_ms": ms(fresh, 50)}
                report["late_over_fresh_answer_p50"] = round(
                    percentile(late, 50) / percentile(fresh, 50), 3)
                report["early"] = {"signals": args.early, "answer_p50_ms": ms(early, 50),
                                   "answer_p99_ms": ms(early, 99)}
                report["burst"] = {"signals": args.burst, "clients": args.clients,
                                   "seconds": round(seconds, 1),
                                   "signals_per_s": round(args.burst / seconds, 1)}
                report["late"] = {"signals": args.late, "answer_p50_ms": ms(late, 50),
                                  "answer_p99_ms": ms(late, 99)}
                early_gaps = overheads(database, sandbox_url, "history", range(args.early))
                late_gaps = overheads(database, sandbox_url, "history",
                                      range(late_first, late_first + args.late))
                report["early"]["overhead_p50_ms"] = ms(early_gaps, 50)
                report["late"]["overhead_p50_ms"] = ms(late_gaps, 50)
                report["late_over_early_answer_p50"] = round(
                    percentile(late, 50) / percentile(early, 50), 3)
                report["late_over_early_overhead_p50"] = round(
                    percentile(late_gaps, 50) / percentile(early_gaps, 50), 3)
            finally:
                halt(bridge)
        finally:
            halt(sandbox)
    return report


if __name__ == "__main__":
    sys.exit(main())
