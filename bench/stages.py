"""Where one signal's time goes: each stage timed, in-process, one signal after another.

    .venv/bin/python bench/stages.py [--signals 200]

The bridge (live mode) and a Kotak sandbox on a loopback port run in this process; each
journal step and broker call is wrapped with a timer, and the median per stage is printed,
with the time from admission to the order reaching the sandbox.
"""

from __future__ import annotations

import argparse
import functools
import logging
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge.journal.orders import OrderStore  # noqa: E402
from bridge.journal.queue import QueueStore  # noqa: E402
from bridge.journal.signals import SignalStore  # noqa: E402
from bridge.kotak.client import KotakClient  # noqa: E402
from bridge.kotak.sandbox import (  # noqa: E402
    Sandbox,
    SandboxAccount,
    SandboxConfig,
    SandboxServer,
)
from bridge.orders.desk import SignalDesk  # noqa: E402
from bridge.orders.service import OrderService  # noqa: E402
from tests.signals.conftest import start_bridge  # noqa: E402

STAGES = [(OrderService, "prepare"), (SignalStore, "admit_many"), (OrderStore, "entry_counts"),
          (OrderStore, "add_orders"), (KotakClient, "place_order"),
          (QueueStore, "finish_sending"), (OrderStore, "set_order"),
          (KotakClient, "order_history"), (SignalDesk, "outcome"),
          (OrderService, "execute")]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signals", type=int, default=200)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    timings: dict[str, list[float]] = defaultdict(list)
    for owner, name in STAGES:
        original = getattr(owner, name)

        def timed(*a: Any, _original: Any = original, _label: str = name,
                  **k: Any) -> Any:
            started = time.perf_counter()
            try:
                return _original(*a, **k)
            finally:
                timings[_label].append((time.perf_counter() - started) * 1000)

        setattr(owner, name, functools.wraps(original)(timed))
    account = SandboxAccount.generate("AB123")
    sandbox = Sandbox([account], config=SandboxConfig(order_rate=0, protect_market=False))
    folder = Path(tempfile.mkdtemp())
    with SandboxServer(sandbox) as server:
        bridge = start_bridge(server, account, f"sqlite:///{folder / 'bridge.db'}",
                              folder / "data", KOTAK_ORDER_RATE="10000", DEDUP_WINDOW_S="0",
                              MAX_ORDERS_PER_DAY="0", MAX_ORDERS_PER_STRATEGY="0")
        for n in range(20):
            bridge.signal(symbol="NSE:SBIN", action="BUY", quantity=1, alert_id=f"warm-{n}")
        timings.clear()
        sandbox.requests.clear()
        admitted: list[float] = []
        cpu_started = time.process_time()
        wall_started = time.perf_counter()
        for n in range(args.signals):
            admitted.append(time.time())
            bridge.signal(symbol="NSE:SBIN", action="BUY", quantity=1, alert_id=f"s-{n}")
        cpu_used = (time.process_time() - cpu_started) / args.signals * 1000
        wall_used = (time.perf_counter() - wall_started) / args.signals * 1000
        arrivals = [r.at for r in sandbox.requests.snapshot("place")]
        bridge.services.close()
    for label, values in timings.items():
        sys.stdout.write(f"{label:16s} median {statistics.median(values):6.2f} ms\n")
    sys.stdout.write(f"per signal: {wall_used:.2f} ms wall, {cpu_used:.2f} ms CPU (bridge and "
                     "sandbox together)\n")
    gaps = sorted((at - sent) * 1000 for at, sent in zip(arrivals, admitted, strict=True))
    sys.stdout.write(f"request to order at the sandbox: median {statistics.median(gaps):.2f} "
                     f"ms, p99 {gaps[int(0.99 * (len(gaps) - 1))]:.2f} ms\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
