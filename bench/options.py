"""Benchmark: from an option alert to its last leg at the broker, beside a plain order.

    .venv/bin/python bench/options.py [--rounds 40]

Starts a standalone Kotak sandbox (orders limited to 10 a second per account, as Kotak
limits them) and the bridge under gunicorn (live mode, SQLite journal, ``KOTAK_ORDER_RATE``
10). Each round sends, one after another and a second apart (so every signal starts with the
rate limit's slots free, as a trader's alerts do):

1. a plain order (``NSE:SBIN``, 1 share);
2. an option by offset (the ATM call of NIFTY's nearest expiry, 1 lot);
3. a 4-leg option signal (an iron condor: buy OTM4 CE and PE, sell OTM2 CE and PE).

For each signal: the time from the bridge receiving the request (the journal's
``received_at``) to the arrival at the sandbox of its last order (its request log), both on
this machine's clock. The option's extra cost is (2) minus (1): reading the index quote from
Kotak and picking the contract. Targets: option resolution adds under 1 ms to a signal
(the pick itself; the quote is one more broker round trip, reported as measured); a 4-leg
signal reaches the broker within 4 rate-limit slots (400 ms at 10 orders a second).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

# bench/signals.py puts the repository on the path for the bridge's imports below.
from signals import SECRET, halt, percentile, start_bridge, start_sandbox

from bridge.journal.tables import orders, signals

KINDS = ("plain", "option", "condor")


def payload(kind: str, n: int) -> dict[str, object]:
    alert = f"{kind}-{n}"
    if kind == "plain":
        return {"secret": SECRET, "symbol": "NSE:SBIN", "action": "BUY", "quantity": 1,
                "alert_id": alert}
    if kind == "option":
        return {"secret": SECRET, "underlying": "NIFTY", "exchange": "NSE_INDEX",
                "offset": "ATM", "option_type": "CE", "action": "BUY", "quantity": 65,
                "product": "NRML", "alert_id": alert}
    return {"secret": SECRET, "underlying": "NIFTY", "exchange": "NSE_INDEX",
            "product": "NRML", "alert_id": alert, "legs": [
                {"offset": "OTM2", "option_type": "CE", "action": "SELL", "quantity": 65},
                {"offset": "OTM2", "option_type": "PE", "action": "SELL", "quantity": 65},
                {"offset": "OTM4", "option_type": "CE", "action": "BUY", "quantity": 65},
                {"offset": "OTM4", "option_type": "PE", "action": "BUY", "quantity": 65}]}


def last_leg_times(database_url: str, sandbox_url: str) -> dict[str, list[float]]:
    """Per kind: seconds from each signal's arrival to its last order's arrival at Kotak."""
    engine = create_engine(database_url)
    query = select(orders.c.tag, signals.c.alert_id, signals.c.received_at).join(
        signals, signals.c.id == orders.c.signal_id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    engine.dispose()
    of_tag = {row.tag: (row.alert_id, row.received_at.timestamp()) for row in rows}
    arrivals = requests.get(f"{sandbox_url}/_sandbox/requests", params={"endpoint": "place"},
                            timeout=30).json()["requests"]
    last: dict[str, float] = {}
    received: dict[str, float] = {}
    for arrival in arrivals:
        tag = json.loads(arrival["jdata"]).get("ig")
        if tag in of_tag:
            alert, at = of_tag[tag]
            last[alert] = max(last.get(alert, 0.0), arrival["at"])
            received[alert] = at
    spans: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for alert, at in last.items():
        spans[alert.split("-")[0]].append(at - received[alert])
    return spans


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        # Margin for 40 short strangles: the bench measures time, not the RMS.
        sandbox, sandbox_url, credentials = start_sandbox(folder, 10, "--cash", "1000000000")
        bridge, url, database_url = start_bridge(folder, credentials, rate=10)
        try:
            refused = []
            for n in range(args.rounds):
                for kind in KINDS:
                    answer = requests.post(f"{url}/webhook/tradingview",
                                           data=json.dumps(payload(kind, n)), timeout=10)
                    if answer.json().get("status") != "placed":
                        refused.append((kind, answer.status_code, answer.text[:200]))
                    time.sleep(1.0)
            if refused:
                sys.stdout.write(f"refused: {refused[:3]}\n")
                return 1
            spans = last_leg_times(database_url, sandbox_url)
        finally:
            halt(bridge)
            halt(sandbox)
    for kind in KINDS:
        values = [v * 1000 for v in spans[kind]]
        sys.stdout.write(f"{kind:7s} n={len(values):3d}  to the last order at the broker: "
                         f"p50 {statistics.median(values):6.1f} ms  p99 "
                         f"{percentile(values, 99):6.1f} ms\n")
    plain, option = (statistics.median(spans[k]) * 1000 for k in ("plain", "option"))
    sys.stdout.write(f"option by offset adds {option - plain:.1f} ms (the index quote and "
                     "the pick)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
