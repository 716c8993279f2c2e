"""Market price protection (MPP): how far from a reference price a protected order may go.

Since SEBI's retail-algo rules (2026), Kotak turns API market orders into limit orders a
"protection band" away from the last price, and refuses SL-M from API sessions. The bridge
therefore sends SL-M as SL with a limit one band beyond the trigger, and re-prices stuck
closes inside the band. The grid is the one Kotak documents (as copied by OpenAlgo):

    futures and equity: below Rs 100 -> 2 %, Rs 100-500 -> 1 %, above Rs 500 -> 0.5 %
    options: below Re 1 -> Rs 0.10 flat, 1-5 -> 10 %, 5-10 -> 5 %, 10-100 -> 3 %,
             100-500 -> 2 %, above 500 -> 1 %
"""

from __future__ import annotations

from decimal import Decimal

from bridge.domain import Instrument, InstrumentKind, Side, round_to_tick

_EQUITY_GRID: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal(100), Decimal("0.02")),
    (Decimal(500), Decimal("0.01")),
)
_EQUITY_TOP = Decimal("0.005")
_OPTION_GRID: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal(5), Decimal("0.10")),
    (Decimal(10), Decimal("0.05")),
    (Decimal(100), Decimal("0.03")),
    (Decimal(500), Decimal("0.02")),
)
_OPTION_TOP = Decimal("0.01")
_OPTION_FLAT_BELOW = Decimal(1)
_OPTION_FLAT = Decimal("0.10")


def protection_band(instrument: Instrument, reference: Decimal) -> Decimal:
    """Return the band in rupees around ``reference`` for this instrument."""
    if reference <= 0:
        raise ValueError("reference price must be positive")
    if instrument.kind is InstrumentKind.OPTION:
        if reference < _OPTION_FLAT_BELOW:
            return _OPTION_FLAT
        return reference * _rate(reference, _OPTION_GRID, _OPTION_TOP)
    return reference * _rate(reference, _EQUITY_GRID, _EQUITY_TOP)


def protected_limit(instrument: Instrument, side: Side, reference: Decimal) -> Decimal:
    """Return the limit price one band beyond ``reference`` in the direction that fills.

    A buy may pay up to the band above, a sell accept down to the band below; the result is
    on the tick grid, at least one tick away, and never below one tick.
    """
    band = protection_band(instrument, reference)
    tick = instrument.tick_size
    if side is Side.BUY:
        return max(round_to_tick(reference + band, tick, up=True), reference + tick)
    price = round_to_tick(reference - band, tick, up=False)
    return max(min(price, reference - tick), tick)


def _rate(reference: Decimal, grid: tuple[tuple[Decimal, Decimal], ...], top: Decimal) -> Decimal:
    for ceiling, rate in grid:
        if reference < ceiling:
            return rate
    return top
