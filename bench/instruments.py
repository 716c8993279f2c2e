"""Benchmark: load a full-size scrip master and look instruments up.

    .venv/bin/python bench/instruments.py [--rows 150000] [--repeat 3]

Generates a scrip master of ``--rows`` rows across all six segments in Kotak's exact CSV
format (the sandbox's generator), then, in a fresh process each time so memory is measured
cleanly, parses every file and builds the index as the bridge does at start, and times
lookups by each spelling a signal can use. Targets: load under 3 s, under 200 MB, a lookup
under 5 microseconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge.domain import Exchange, InstrumentKind  # noqa: E402
from bridge.kotak.instruments import InstrumentIndex, parse_scrip_csv  # noqa: E402
from bridge.kotak.sandbox import scripmaster  # noqa: E402


def generate(folder: Path, rows: int, today: date) -> dict[str, int]:
    catalog = scripmaster.bulk_catalog(today, rows)
    counts: dict[str, int] = {}
    for segment in scripmaster.SEGMENTS:
        text = scripmaster.render_csv(catalog, segment)
        (folder / f"{segment}.csv").write_text(text)
        counts[segment] = text.count("\n") - 1
    return counts


def memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process from /proc, in MB.

    Unlike getrusage's maxrss, the peak here starts afresh at exec, so the parent's memory
    (which generated the files) does not count.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def load_and_lookup(folder: Path, today: date) -> dict[str, float]:
    """Run in a child process: measure one load and the lookups."""
    before = memory_mb("VmRSS")
    started = time.perf_counter()
    instruments = []
    for segment in scripmaster.SEGMENTS:
        instruments.extend(parse_scrip_csv(segment, (folder / f"{segment}.csv").read_bytes()))
    index = InstrumentIndex(instruments, today)
    load_s = time.perf_counter() - started
    del instruments
    peak = memory_mb("VmHWM")
    held = memory_mb("VmRSS")

    sample = _sample(index, folder)
    symbols = [(i.exchange, i.trading_symbol) for i in sample]
    cash_names = [s.removesuffix("-EQ") for _, s in symbols if s.endswith("-EQ")][:1000]
    underlyings = sorted({i.symbol for i in sample
                          if i.exchange is Exchange.NFO and i.kind is InstrumentKind.FUTURE})
    results = {"instruments": float(len(index)), "load_s": load_s,
               "rss_before_mb": before, "peak_rss_mb": peak,
               "peak_for_load_mb": peak - before, "held_after_load_mb": held - before}
    cases = {
        "exact trading symbol (get)": lambda: [index.get(e, s) for e, s in symbols],
        "resolve trading symbol": lambda: [index.resolve(s, e) for e, s in symbols],
        "resolve NSE:NAME": lambda: [index.resolve(f"NSE:{n}") for n in cash_names],
        "resolve NSE:NAME1! (continuous)": lambda: [index.resolve(f"NSE:{u}1!")
                                                    for u in underlyings],
    }
    for name, run in cases.items():
        count = len(run())
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            run()
            timings.append((time.perf_counter() - started) / count * 1e6)
        results[f"{name} us"] = statistics.median(timings)
    return results


def _sample(index: InstrumentIndex, folder: Path) -> list:  # type: ignore[type-arg]
    text = (folder / "nse_fo.csv").read_text().splitlines()[1:2001]
    wanted = [line.split(",")[5] for line in text]
    found = [index.get(Exchange.NFO, s) for s in wanted]
    cash = (folder / "nse_cm.csv").read_text().splitlines()[1:1001]
    found += [index.get(Exchange.NSE, line.split(",")[5]) for line in cash]
    return [i for i in found if i is not None]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    today = date.today()
    if args.child:
        sys.stdout.write(json.dumps(load_and_lookup(args.child, today)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        counts = generate(folder, args.rows, today)
        size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        sys.stdout.write(f"generated {sum(counts.values())} rows ({size_mb:.1f} MB) in "
                         f"{time.perf_counter() - started:.1f} s: {counts}\n")
        runs = []
        for _ in range(args.repeat):
            child = subprocess.run([sys.executable, __file__, "--child", str(folder)],
                                   check=True, capture_output=True, text=True)
            runs.append(json.loads(child.stdout))
    for key in runs[0]:
        values = [run[key] for run in runs]
        sys.stdout.write(f"{key:32s} median {statistics.median(values):10.3f}   "
                         f"(runs: {', '.join(f'{v:.3f}' for v in values)})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
