"""Time from the square-off trigger to a verified flat book, for N intraday positions.

A Kotak sandbox on a loopback port (its own limit of 10 order requests per second per
account, market orders protected and filled at once) and a live-mode bridge against it with
``KOTAK_ORDER_RATE=10`` and a SQLite journal. N intraday positions are seeded across NSE and
NFO, then the square-off job runs as the scheduler would run it. The floor is N / 10 s: the
rate limit's, whatever the bridge does.

    .venv/bin/python bench/squareoff.py            # --positions 50 --repeat 3
    .venv/bin/python bench/squareoff.py --book-hang 60

``--book-hang S``: the sandbox's order book hangs S seconds once 8 orders went out inside a
second, as Kotak's does after bursts near 10 a second (Kotak-neo-api-v2 #68), which the
square-off's own closes cause.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge.config import load_settings  # noqa: E402
from bridge.domain import Exchange  # noqa: E402
from bridge.kotak.sandbox import Sandbox, SandboxAccount, SandboxConfig, SandboxServer  # noqa: E402
from bridge.kotak.sandbox.scripmaster import build_catalog  # noqa: E402
from bridge.schedule.jobs import JobActions  # noqa: E402
from bridge.startup import prepare  # noqa: E402
from bridge.wiring import build_services  # noqa: E402


def one_run(positions: int, rate: int, book_hang: float) -> dict[str, float | int | bool]:
    account = dataclasses.replace(SandboxAccount.generate("BENCH1"), cash=Decimal(10**10))
    sandbox = Sandbox([account], config=SandboxConfig(order_rate=rate, book_hang_s=book_hang,
                                                      book_hang_after=8))
    with tempfile.TemporaryDirectory() as folder, SandboxServer(sandbox) as server:
        settings = load_settings({
            "BRIDGE_MODE": "live", "WEBHOOK_SECRET": "bench-secret-0123456789",
            "DATABASE_URL": f"sqlite:///{folder}/journal.db", "DATA_DIR": f"{folder}/data",
            **server.settings(),
            "BROKER_API_KEY": account.consumer_key,
            "KOTAK_UCC": account.ucc, "KOTAK_MOBILE": account.mobile,
            "KOTAK_MPIN": account.mpin, "KOTAK_TOTP_SECRET": account.totp_secret,
            "KOTAK_ORDER_RATE": str(rate), "MARKET_HOURS": "ignore", "LOG_LEVEL": "WARNING",
        })
        services = build_services(settings)
        try:
            prepare(services)
            index = services.instruments.current()
            listed = [index.get(Exchange.NSE if s.segment == "nse_cm" else Exchange.NFO,
                                s.trading_symbol)
                      for s in build_catalog(index.trading_day)
                      if (s.segment == "nse_cm" and s.isin)
                      or s.segment == "nse_fo"]
            pool = [i for i in listed if i is not None][:positions]
            if len(pool) < positions:
                raise SystemExit(f"the sandbox lists only {len(pool)} instruments")
            prices = services.broker().last_prices(pool)
            for n, instrument in enumerate(pool):
                lots = 1 + n % 3
                sandbox.seed_position(account.ucc, instrument.exchange.value,
                                      instrument.trading_symbol, "MIS",
                                      lots * instrument.lot_size * (1 if n % 2 else -1),
                                      prices[(instrument.exchange, instrument.trading_symbol)])
            started = time.monotonic()
            outcome = JobActions(services).square_off([Exchange.NSE, Exchange.NFO])
            seconds = time.monotonic() - started
            report = outcome.report["reports"][0]
            return {"seconds": seconds, "flat": bool(report["flat"]),
                    "orders": len(report["closes"]), "rounds": int(report["rounds"]),
                    "floor_s": positions / rate,
                    "book_unanswered": bool(report["book_unanswered"])}
        finally:
            services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--positions", type=int, default=50)
    parser.add_argument("--rate", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--book-hang", type=float, default=0.0,
                        help="seconds the order book hangs after a burst of orders")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    runs = [one_run(args.positions, args.rate, args.book_hang) for _ in range(args.repeat)]
    times = [float(run["seconds"]) for run in runs]
    json.dump({"runs": runs, "median_s": statistics.median(times),
               "floor_s": args.positions / args.rate,
               "over_floor_s": statistics.median(times) - args.positions / args.rate},
              sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
