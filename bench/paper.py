"""Benchmark: does a paper-mode broker call cost more as the day's orders pile up?

    .venv/bin/python bench/paper.py            # --orders 0,500,2000 --rounds 20

Paper mode as a worker runs it (``build_services`` with no Kotak settings: the in-process
sandbox over ``<DATA_DIR>/paper-broker.db``), logged in by ``prepare``. For each count N the
day's book is first brought to N orders (market orders, filled, each with its own tag, placed
straight on the sandbox's engine in one transaction), then ``--rounds`` times one order is
placed and the order book read through the bridge's own Kotak client (the sandbox's order
rate limit lifted). The figures are the median milliseconds of each call. The order book's
answer holds every order of the day, so its encoding and parsing grow with N whatever the
store does; a place does not. Beside them, "store ms" is what every call pays to hold the
book and keep its changes, apart from its own work: an empty ``store.transaction()``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge.config import load_settings  # noqa: E402
from bridge.domain import OrderRequest, Product, Side  # noqa: E402
from bridge.startup import prepare  # noqa: E402
from bridge.wiring import Services, build_services  # noqa: E402

SYMBOLS = ("SBIN-EQ", "INFY-EQ", "TCS-EQ", "RELIANCE-EQ", "ITC-EQ")


def fill_book(services: Services, count: int) -> None:
    """Put ``count`` more filled orders on the default paper account's book."""
    sandbox = services.paper
    assert sandbox is not None
    ucc = next(iter(sandbox.accounts))
    now = sandbox.clock.now()
    with sandbox.store.transaction() as state:
        start = sum(len(book.orders) for book in state.books.values())
        for n in range(start, start + count):
            reply = sandbox.engine.place(state, ucc, {
                "am": "NO", "dq": "0", "es": "nse_cm", "mp": "0", "pc": "MIS", "pr": "0",
                "pt": "MKT", "qt": "1", "rt": "DAY", "tp": "0",
                "ts": SYMBOLS[n % len(SYMBOLS)], "tt": "B" if n % 2 else "S",
                "ig": f"prefill-{n}"}, now)
            if reply[0] != 200:
                raise RuntimeError(f"prefill order {n} refused: {reply}")


def measure(services: Services, rounds: int,
            first: int) -> tuple[float, float, float, int]:
    """Median ms of a place, of an order-book read and of an empty transaction, and the
    orders the book then held."""
    broker = services.broker()
    sbin = services.instruments.current().resolve("NSE:SBIN")
    assert services.paper is not None
    store = services.paper.store
    places, reads, holds = [], [], []
    held = 0
    for n in range(first, first + rounds):
        began = time.perf_counter()
        broker.place_order(OrderRequest(sbin, Side.BUY if n % 2 else Side.SELL, 1,
                                        Product.MIS, tag=f"bench-{n}"))
        placed = time.perf_counter()
        held = len(broker.order_book())
        read = time.perf_counter()
        with store.transaction():
            pass
        places.append(placed - began)
        reads.append(read - placed)
        holds.append(time.perf_counter() - read)
    return (statistics.median(places) * 1000, statistics.median(reads) * 1000,
            statistics.median(holds) * 1000, held)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", default="0,500,2000",
                        help="the day's order counts to measure at, ascending")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    counts = [int(part) for part in args.orders.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings({"WEBHOOK_SECRET": "paper-bench-secret-123456",
                                  "DATA_DIR": str(Path(folder) / "data"),
                                  # the sandbox's own order rate (Kotak's 10/s) is not measured
                                  "KOTAK_ORDER_RATE": "10000",
                                  "DATABASE_URL": f"sqlite:///{Path(folder) / 'bridge.db'}"})
        services = build_services(settings)
        try:
            prepare(services)
            sys.stdout.write(f"{'orders in the day':>18} {'place ms':>9} {'order book ms':>14}"
                             f" {'store ms':>9}\n")
            placed = 0
            for count in counts:
                fill_book(services, max(count - placed, 0))
                place_ms, read_ms, hold_ms, held = measure(services, args.rounds, count)
                placed = held
                sys.stdout.write(f"{count:>18} {place_ms:>9.2f} {read_ms:>14.2f}"
                                 f" {hold_ms:>9.2f}\n")
                sys.stdout.flush()
        finally:
            services.close()


if __name__ == "__main__":
    main()
