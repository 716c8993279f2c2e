"""Fill a journal with a year of history, as an advisor's bridge would hold it.

    .venv/bin/python bench/prefill.py sqlite:///journal.db --signals 1000000

Writes ``--signals`` signals spread evenly over the ``--days`` trading days (weekdays) before
today, each with its order (placed and filled, or now and then rejected), its idempotency key
and ``--events`` timeline events, straight into the tables (the journal's schema must exist:
start the bridge on it once). Used by ``bench/signals.py --prefill``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert  # noqa: E402

from bridge.journal.tables import events, orders, signal_keys, signals  # noqa: E402

CHUNK = 5_000
SYMBOLS = ("SBIN-EQ", "RELIANCE-EQ", "INFY-EQ", "TCS-EQ", "HDFCBANK-EQ")


def trading_days(count: int, before: datetime) -> list[datetime]:
    """The ``count`` weekdays before ``before``, oldest first, at 03:45 UTC (09:15 IST)."""
    days: list[datetime] = []
    day = before.replace(hour=3, minute=45, second=0, microsecond=0)
    while len(days) < count:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days[::-1]


def prefill(database_url: str, count: int, *, days: int = 250, per_signal_events: int = 3,
            accounts: tuple[str, ...] = ("default",)) -> float:
    """Write the history; return the seconds it took."""
    began = time.perf_counter()
    engine = create_engine(database_url)
    calendar = trading_days(days, datetime.now(UTC))
    per_day = -(-count // days)
    spacing = timedelta(seconds=6 * 3600 / per_day)  # spread over the session's six hours
    with engine.begin() as conn:
        first_id = 10_000_000  # far above what the bench itself will write
        for start in range(0, count, CHUNK):
            signal_rows, order_rows, key_rows, event_rows = [], [], [], []
            for n in range(start, min(start + CHUNK, count)):
                at = calendar[n // per_day] + spacing * (n % per_day)
                symbol = SYMBOLS[n % len(SYMBOLS)]
                side = "BUY" if n % 2 else "SELL"
                rejected = n % 50 == 0
                alert_id = f"history-{n}"
                signal_id = first_id + n
                account = accounts[n % len(accounts)]
                body = json.dumps({"secret": "***", "symbol": f"NSE:{symbol[:-3]}",
                                   "action": side, "quantity": 1, "alert_id": alert_id})
                signal_rows.append({
                    "id": signal_id, "alert_id": alert_id, "source": "tradingview",
                    "account": account, "received_at": at, "remote_addr": "52.89.214.238",
                    "raw_body": body, "parsed": body, "strategy": f"s{n % 7}",
                    "symbol": f"NSE:{symbol[:-3]}", "instrument": f"NSE:{symbol}",
                    "side": side, "status": "rejected" if rejected else "placed",
                    "priority": 1, "expires_at": at + timedelta(hours=1), "updated_at": at})
                order_rows.append({
                    "id": signal_id, "signal_id": signal_id, "account": account,
                    "tag": f"h{n:012d}", "strategy": f"s{n % 7}", "exchange": "NSE",
                    "trading_symbol": symbol, "side": side, "quantity": 1, "product": "MIS",
                    "order_type": "MKT", "is_exit": n % 3 == 0,
                    "status": "rejected" if rejected else "complete",
                    "broker_order_id": f"{240000000000 + n}",
                    "broker_status": "rejected" if rejected else "complete",
                    "filled_quantity": 0 if rejected else 1,
                    "average_price": None if rejected else "812.40",
                    "reason": "RMS: margin exceeds" if rejected else None,
                    "created_at": at, "sent_at": at, "updated_at": at, "final_at": at})
                key_rows.append({"key": f"id:{alert_id}", "signal_id": signal_id,
                                 "expires_at": None})
                for step, status in enumerate(("received", "placed", "complete",
                                               "followed")[:per_signal_events]):
                    event_rows.append({"signal_id": signal_id, "order_id": signal_id,
                                       "at": at + timedelta(milliseconds=5 * step),
                                       "status": status, "detail": ""})
            conn.execute(insert(signals), signal_rows)
            conn.execute(insert(orders), order_rows)
            conn.execute(insert(signal_keys), key_rows)
            if event_rows:
                conn.execute(insert(events), event_rows)
    engine.dispose()
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url")
    parser.add_argument("--signals", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=250)
    parser.add_argument("--events", type=int, default=3)
    args = parser.parse_args()
    seconds = prefill(args.database_url, args.signals, days=args.days,
                      per_signal_events=args.events)
    sys.stdout.write(f"{args.signals} signals written in {seconds:.1f} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
