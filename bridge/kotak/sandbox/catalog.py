"""The sandbox's instruments for one day, and its scrip-master files in Kotak's format."""

from __future__ import annotations

import functools
import threading
from datetime import date

from bridge.domain import Exchange, Instrument, InstrumentKind
from bridge.kotak.sandbox import scripmaster
from bridge.kotak.sandbox.scripmaster import Listing, SandboxScrip

SCRIP_ROOT = "wso2-scripmaster/v1/prod"

_EXCHANGE_OF_SEGMENT = {
    "nse_cm": Exchange.NSE, "bse_cm": Exchange.BSE, "nse_fo": Exchange.NFO,
    "bse_fo": Exchange.BFO, "cde_fo": Exchange.CDS, "mcx_fo": Exchange.MCX,
}


class _Day:
    """One day's contracts and files, built once per process and shared by every sandbox in
    it (each test builds its own sandbox; the day's market is the same for all of them)."""

    def __init__(self, day: date, lean: bool, listings: tuple[Listing, ...]) -> None:
        self.scrips: dict[tuple[str, str], SandboxScrip] = {}
        homes: dict[str, SandboxScrip] = {}
        for scrip in scripmaster.build_catalog(day, lean, listings):
            self.scrips[(scrip.segment, scrip.trading_symbol)] = scrip
            if scrip.expiry is None and scrip.underlying:
                held = homes.get(scrip.underlying)
                if held is None or _home_rank(scrip) < _home_rank(held):
                    homes[scrip.underlying] = scrip
        self.homes = homes
        self.csv: dict[str, bytes] = {}
        self.lock = threading.Lock()


def _home_rank(scrip: SandboxScrip) -> tuple[bool, bool]:
    # NSE before BSE, the EQ series (or the index) before BE.
    return scrip.segment != "nse_cm", scrip.group not in ("EQ", "")


@functools.lru_cache(maxsize=4)
def _shared_day(day: date, lean: bool, listings: tuple[Listing, ...]) -> _Day:
    return _Day(day, lean, listings)


class Catalog:
    """The day's contracts (all unexpired on that day), looked up by segment and symbol."""

    def __init__(self, day: date, lean: bool = False,
                 listings: tuple[Listing, ...] = ()) -> None:
        self.day = day
        self.lean = lean
        shared = _shared_day(day, lean, listings)
        self._scrips = shared.scrips
        self._homes = shared.homes
        self._csv = shared.csv
        self._lock = shared.lock

    def get(self, segment: str, trading_symbol: str) -> SandboxScrip | None:
        return self._scrips.get((segment, trading_symbol))

    def all(self) -> list[SandboxScrip]:
        return list(self._scrips.values())

    def home(self, underlying: str) -> SandboxScrip | None:
        """The cash row an underlying's derivatives follow: the index, or the share on NSE
        (EQ series) when it is listed there."""
        return self._homes.get(underlying)

    def folder(self) -> str:
        return scripmaster.dated_folder(self.day)

    def file_paths(self, host: str) -> list[str]:
        base = f"{host.rstrip('/')}/{SCRIP_ROOT}/{self.folder()}"
        return [f"{base}/{path}" for path in scripmaster.SEGMENT_FILES.values()]

    def file(self, relative_path: str) -> bytes | None:
        """Return the CSV published at ``relative_path`` in the day's folder, if any."""
        for segment, path in scripmaster.SEGMENT_FILES.items():
            if path == relative_path:
                with self._lock:
                    if segment not in self._csv:
                        text = scripmaster.render_csv(self._scrips.values(), segment)
                        self._csv[segment] = text.encode("utf-8")
                    return self._csv[segment]
        return None


def as_instrument(scrip: SandboxScrip) -> Instrument:
    """The bridge's view of a sandbox contract (for the market-protection arithmetic)."""
    if scrip.option_type in ("CE", "PE"):
        kind = InstrumentKind.OPTION
    elif scrip.inst_type.startswith("FUT"):
        kind = InstrumentKind.FUTURE
    elif scrip.isin:
        kind = InstrumentKind.EQUITY
    else:
        kind = InstrumentKind.INDEX
    return Instrument(
        exchange=_EXCHANGE_OF_SEGMENT[scrip.segment], trading_symbol=scrip.trading_symbol,
        symbol=scrip.symbol_name, token=scrip.token, kind=kind, lot_size=scrip.lot_size,
        tick_size=scrip.tick_size, series=scrip.group, expiry=scrip.expiry, strike=scrip.strike,
        option_type=scrip.option_type if kind is InstrumentKind.OPTION else "",
        freeze_quantity=scrip.freeze_qty or None, precision=scrip.precision, isin=scrip.isin,
    )
