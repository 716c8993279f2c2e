"""OpenAlgo's symbols and Kotak's trading symbols, both ways.

OpenAlgo's common format (its "Symbol Format" page), which its clients send and read:

* a share: its exchange symbol, ``SBIN``, ``M&M``, ``BAJAJ-AUTO`` on ``NSE``/``BSE``;
* a future: underlying, expiry as ``DDMMMYY``, ``FUT``: ``NIFTY29DEC26FUT`` on ``NFO``;
* an option: underlying, ``DDMMMYY``, strike, ``CE``/``PE``: ``NIFTY29DEC2626000CE``;
* an index: its short name on ``NSE_INDEX``/``BSE_INDEX``: ``NIFTY``, ``BANKNIFTY``, ``SENSEX``.

Kotak's scrip master spells the same contracts ``NIFTY26DECFUT``, ``NIFTY26DEC26000CE``
(monthly), ``NIFTY2612226000PE`` (weekly: year, month code 1-9/O/N/D, day) and its index rows
by display name (``Nifty 50``). A translation is a lookup in the day's instrument index, never
a respelling: an OpenAlgo name maps to the listed contract whose underlying, expiry, strike and
type are the ones it names, or to nothing, so a name that merely looks right can never reach
another contract.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from bridge.domain import Exchange, Instrument, InstrumentKind
from bridge.kotak.instruments import (
    INDEX_QUOTES,
    AmbiguousInstrument,
    InstrumentIndex,
    UnknownInstrument,
)

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DERIVATIVE = re.compile(
    r"^(?P<underlying>.+?)(?P<day>\d{2})(?P<month>" + "|".join(MONTHS) + r")(?P<year>\d{2})"
    r"(?:(?P<future>FUT)|(?P<strike>\d+(?:\.\d+)?)(?P<type>CE|PE))$")
#: where OpenAlgo quotes an index underlying, and the cash exchange that lists its row
INDEX_EXCHANGES = {"NSE_INDEX": Exchange.NSE, "BSE_INDEX": Exchange.BSE}
#: OpenAlgo's names of the indices Kotak quotes: those with listed options (the scrip
#: master's table) and the volatility index
INDEX_NAMES: dict[str, tuple[Exchange, str]] = {**INDEX_QUOTES,
                                                "INDIAVIX": (Exchange.NSE, "India VIX")}
#: where the derivatives of an underlying named with OpenAlgo's exchange trade
_DERIVATIVES_OF = {"NSE_INDEX": Exchange.NFO, "NSE": Exchange.NFO, "NFO": Exchange.NFO,
                   "BSE_INDEX": Exchange.BFO, "BSE": Exchange.BFO, "BFO": Exchange.BFO,
                   "MCX": Exchange.MCX, "CDS": Exchange.CDS}


@dataclass(frozen=True)
class Contract:
    """A future or option as OpenAlgo names it."""

    underlying: str
    expiry: date
    strike: Decimal | None = None  # None: a future
    option_type: str = ""  # CE / PE; "" for a future


def parse(symbol: str) -> Contract | None:
    """The contract an OpenAlgo derivative symbol names, or ``None`` when it is not one."""
    found = _DERIVATIVE.match(symbol.strip().upper())
    if found is None:
        return None
    try:
        expiry = date(2000 + int(found["year"]), MONTHS.index(found["month"]) + 1,
                      int(found["day"]))
    except ValueError:
        return None
    if found["future"]:
        return Contract(found["underlying"], expiry)
    strike = Decimal(found["strike"])
    if strike <= 0:
        return None
    return Contract(found["underlying"], expiry, strike, found["type"])


def expiry_text(day: date) -> str:
    """OpenAlgo's ``DDMMMYY`` (``29DEC26``)."""
    return f"{day.day:02d}{MONTHS[day.month - 1]}{day.year % 100:02d}"


def listed_expiry_text(day: date) -> str:
    """How OpenAlgo's expiry call lists a date: ``DD-MMM-YY`` (``29-DEC-26``)."""
    return f"{day.day:02d}-{MONTHS[day.month - 1]}-{day.year % 100:02d}"


def strike_text(strike: Decimal) -> str:
    """A strike as both spellings write it: whole rupees without decimals (``26000``),
    fractions without trailing zeros (``83.25``)."""
    if strike == strike.to_integral_value():
        return str(int(strike))
    return format(strike.normalize(), "f")


def openalgo_symbol(instrument: Instrument) -> str:
    """The name OpenAlgo's clients know ``instrument`` by."""
    if instrument.kind is InstrumentKind.INDEX:
        return next((name for name, (exchange, row) in INDEX_NAMES.items()
                     if exchange is instrument.exchange
                     and row.upper() == instrument.trading_symbol.upper()), instrument.symbol)
    if instrument.kind is InstrumentKind.EQUITY or instrument.expiry is None:
        return instrument.symbol
    when = expiry_text(instrument.expiry)
    if instrument.kind is InstrumentKind.FUTURE:
        return f"{instrument.symbol}{when}FUT"
    strike = strike_text(instrument.strike) if instrument.strike is not None else ""
    return f"{instrument.symbol}{when}{strike}{instrument.option_type}"


def openalgo_name(index: InstrumentIndex | None, exchange: Exchange,
                  trading_symbol: str) -> str:
    """OpenAlgo's name of a contract Kotak reports by trading symbol; the trading symbol
    itself when the day's scrip master does not list it."""
    found = index.get(exchange, trading_symbol) if index is not None else None
    return openalgo_symbol(found) if found is not None else trading_symbol


def derivatives_exchange(exchange: str) -> Exchange | None:
    """Where the futures and options of an underlying named on ``exchange`` trade."""
    return _DERIVATIVES_OF.get(exchange.strip().upper())


def index_row(index: InstrumentIndex, name: str, exchange: str) -> Instrument | None:
    """The index an OpenAlgo name on ``NSE_INDEX``/``BSE_INDEX`` means (``NIFTY``), also
    found by Kotak's own row name (``Nifty 50``)."""
    cash = INDEX_EXCHANGES.get(exchange.strip().upper())
    if cash is None:
        return None
    text = name.strip()
    known = INDEX_NAMES.get(text.upper())
    quoted = index.index_quote(text) or (
        index.get(cash, known[1]) if known is not None else None)
    if quoted is not None and quoted.exchange is cash:
        return quoted
    row = index.get(cash, text)
    return row if row is not None and row.kind is InstrumentKind.INDEX else None


def derivative(index: InstrumentIndex, symbol: str, exchange: Exchange) -> Instrument | None:
    """The listed contract an OpenAlgo derivative symbol names on ``exchange``, or ``None``
    (not OpenAlgo's spelling, or nothing listed matches it exactly)."""
    if not exchange.is_derivatives:
        return None
    contract = parse(symbol)
    if contract is None:
        return None
    if contract.strike is None:
        return next((future for future in index.futures(exchange, contract.underlying)
                     if future.expiry == contract.expiry), None)
    chain = index.option_chain(exchange, contract.underlying, contract.option_type)
    ladder = chain.ladders.get(contract.expiry) if chain is not None else None
    at = ladder.position(contract.strike) if ladder is not None else None
    return ladder.contracts[at] if ladder is not None and at is not None else None


def find(index: InstrumentIndex, symbol: str, exchange: str) -> Instrument:
    """The instrument a call names, in OpenAlgo's spelling or any of the bridge's own
    (Kotak's trading symbol, ``NSE:SBIN``, ``NIFTY1!``); indices on ``NSE_INDEX``/``BSE_INDEX``.

    :raises UnknownInstrument: nothing, or several instruments, match.
    """
    text = symbol.strip()
    place = exchange.strip().upper()
    if place in INDEX_EXCHANGES:
        row = index_row(index, text, place)
        if row is None:
            raise UnknownInstrument(symbol, f"no index {text!r} on {place}; indices: "
                                            f"{', '.join(sorted(INDEX_NAMES))}")
        return row
    try:
        venue = Exchange(place)
    except ValueError as exc:
        raise UnknownInstrument(symbol, f"{exchange!r} is not an exchange (NSE, BSE, NFO, "
                                        "BFO, CDS, MCX, NSE_INDEX, BSE_INDEX)") from exc
    exact = index.get(venue, text)
    if exact is not None:
        return exact
    named = derivative(index, text, venue)
    if named is not None:
        return named
    try:
        return index.resolve(text, venue)
    except AmbiguousInstrument as exc:
        raise UnknownInstrument(symbol, str(exc)) from exc


def kotak_symbol(index: InstrumentIndex | None, symbol: str, exchange: str) -> str:
    """What an order call's ``symbol`` becomes in the signal: Kotak's trading symbol when
    it is OpenAlgo's name of a listed derivative, else the symbol as given (the signal's own
    resolution then reads it, and names the problem when there is one)."""
    if index is None:
        return symbol
    try:
        venue = Exchange(exchange.strip().upper())
    except ValueError:
        return symbol
    if index.get(venue, symbol.strip()) is not None:
        return symbol
    named = derivative(index, symbol, venue)
    return named.trading_symbol if named is not None else symbol


def expiries(index: InstrumentIndex, underlying: str, exchange: Exchange,
             options: bool) -> list[date]:
    """The unexpired expiries of an underlying's options (or futures), nearest first."""
    name = underlying.strip().upper()
    if not options:
        return sorted({f.expiry for f in index.futures(exchange, name) if f.expiry})
    days: set[date] = set()
    for option_type in ("CE", "PE"):
        chain = index.option_chain(exchange, name, option_type)
        if chain is not None:
            days.update(chain.expiries_from(index.trading_day))
    return sorted(days)
