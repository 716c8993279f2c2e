"""Kotak's scrip master: parse it, index it, and keep one whole copy per trading day.

Format (``docs/kotak-neo-api.md`` section 7): one CSV per segment, 79 columns in 2026 (78
before), header names carrying stray spaces and a ``dStrikePrice;`` semicolon, tick size and
strike in paise, expiries as integer seconds counted from 1980-01-01 IST (the NSE epoch) in
``nse_fo``/``cde_fo`` and from 1970 in ``mcx_fo``/``bse_fo``. Columns are found by their
cleaned names, never by position.

Lookups accept every spelling a signal may carry (:meth:`InstrumentIndex.resolve`): Kotak's
trading symbol (``SBIN-EQ``, ``NIFTY26DECFUT``), the plain name (``SBIN``), TradingView's forms
(``NSE:SBIN``, ``M_M`` for ``M&M``, ``BAJAJ_AUTO`` for ``BAJAJ-AUTO``) and continuous futures
(``NIFTY1!`` the nearest unexpired future, ``NIFTY2!`` the next, ``MCX:CRUDEOIL1!``).

For options by strike offset the index also answers what an underlying is quoted by
(:meth:`InstrumentIndex.underlying`: an index by Kotak's exact quote name, a share by its cash
row, a future by itself) and holds each underlying's option chain
(:meth:`InstrumentIndex.option_chain`), built on first use.

A refresh is all or nothing: every needed file is downloaded and parsed before the new index
replaces the old one, and a structurally bad file (missing columns, truncated rows, rows of
another segment) fails the whole refresh, leaving the previous index in use.
"""

from __future__ import annotations

import bisect
import csv
import difflib
import io
import itertools
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Protocol

from bridge.clock import IST, Clock, today_ist
from bridge.domain import Exchange, Instrument, InstrumentKind
from bridge.kotak.wire import EXCHANGE_OF, SEGMENT_OF, ScripFiles

log = logging.getLogger(__name__)

NSE_EPOCH_OFFSET = 315513000  # 1980-01-01 00:00 IST in Unix seconds
_NSE_EPOCH_SEGMENTS = frozenset({"nse_fo", "cde_fo"})
_CASH_SEGMENTS = frozenset({"nse_cm", "bse_cm"})
REQUIRED_SEGMENTS = frozenset({"nse_cm", "nse_fo"})
_REQUIRED_COLUMNS = ("pSymbol", "pExchSeg", "pTrdSymbol", "pSymbolName", "pGroup",
                     "pInstType", "pOptionType", "dTickSize", "lLotSize", "lExpiryDate",
                     "dStrikePrice", "pISIN")
#: share of rows that may be unreadable before the whole file counts as garbage
_BAD_ROW_TOLERANCE = 0.01
_SERIES_PREFERENCE = ("EQ", "BE", "BZ", "SM", "ST")
# TradingView spells these NSE characters as "_" (M&M -> M_M, BAJAJ-AUTO -> BAJAJ_AUTO).
_UNDERSCORE_STANDS_FOR = ("&", "-")
_CONTINUOUS = re.compile(r"^(.+?)([1-9])!$")
_PREFIX_FAMILY: dict[str, tuple[Exchange, ...]] = {
    "NSE": (Exchange.NSE, Exchange.NFO, Exchange.CDS),
    "BSE": (Exchange.BSE, Exchange.BFO),
    "MCX": (Exchange.MCX,),
    "NFO": (Exchange.NFO,),
    "BFO": (Exchange.BFO,),
    "CDS": (Exchange.CDS,),
}
_DERIVATIVE_OF = {Exchange.NSE: Exchange.NFO, Exchange.BSE: Exchange.BFO}
_CASH_OF = {Exchange.NFO: Exchange.NSE, Exchange.BFO: Exchange.BSE}
#: The indices with listed options: the name their options carry (pSymbolName) -> where and by
#: which exact, case-sensitive name Kotak quotes the index (kotak-neo-api.md section 4.11).
INDEX_QUOTES: dict[str, tuple[Exchange, str]] = {
    "NIFTY": (Exchange.NSE, "Nifty 50"),
    "BANKNIFTY": (Exchange.NSE, "Nifty Bank"),
    "FINNIFTY": (Exchange.NSE, "Nifty Fin Service"),
    "MIDCPNIFTY": (Exchange.NSE, "NIFTY MID SELECT"),
    "NIFTYNXT50": (Exchange.NSE, "Nifty Next 50"),
    "SENSEX": (Exchange.BSE, "SENSEX"),
    "BANKEX": (Exchange.BSE, "BANKEX"),
}
# An alert fired from the index chart may carry the chart's name instead: Kotak's quote name
# or TradingView's ticker (CNXFINANCE, NIFTY_MID_SELECT).
_INDEX_ALIASES: dict[str, str] = {
    **{quote_name.upper(): name for name, (_, quote_name) in INDEX_QUOTES.items()},
    "CNXFINANCE": "FINNIFTY",
    "NIFTY_MID_SELECT": "MIDCPNIFTY",
}
# OpenAlgo spells a future with its expiry day: NIFTY30DEC25FUT (Kotak: NIFTY25DECFUT).
_OPENALGO_FUTURE = re.compile(r"^(.+?)(\d{2})([A-Z]{3})(\d{2})FUT$")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


class InstrumentError(Exception):
    """Base of instrument lookup and scrip-master errors."""


class ScripMasterError(InstrumentError):
    """A scrip-master file or list that cannot be trusted; nothing was replaced."""


class InstrumentsUnavailable(InstrumentError):
    """No scrip master has been loaded yet."""


class UnknownInstrument(InstrumentError):
    def __init__(self, symbol: str, hint: str = "") -> None:
        text = f"unknown symbol {symbol!r}"
        super().__init__(f"{text}: {hint}" if hint else text)
        self.symbol = symbol
        self.hint = hint


class AmbiguousInstrument(InstrumentError):
    def __init__(self, symbol: str, candidates: list[Instrument]) -> None:
        names = ", ".join(f"{i.exchange}:{i.trading_symbol}" for i in candidates[:6])
        super().__init__(f"symbol {symbol!r} matches several instruments ({names}): "
                         "set the exchange or use the exact trading symbol")
        self.symbol = symbol
        self.candidates = candidates


# --- parsing ------------------------------------------------------------------------------


def clean_header(name: str) -> str:
    return name.strip().strip(";").strip().strip('"').strip()


def parse_scrip_csv(segment: str, raw: bytes) -> list[Instrument]:
    """Parse one segment's CSV into instruments.

    :raises ScripMasterError: wrong segment, missing columns, truncated or foreign rows, or
        more than 1 % of rows unreadable.
    """
    if segment not in EXCHANGE_OF:
        raise ScripMasterError(f"unknown scrip-master segment {segment!r}")
    # Decode as a stream over the bytes: a 25 MB file is never held twice as text.
    text = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        try:
            header = [clean_header(name) for name in next(reader)]
        except StopIteration as exc:
            raise ScripMasterError(f"{segment}: empty file") from exc
        missing = [name for name in _REQUIRED_COLUMNS if name not in header]
        if missing:
            raise ScripMasterError(f"{segment}: missing columns {', '.join(missing)}")
        return _RowReader(segment, header).read(reader)
    except UnicodeDecodeError as exc:
        raise ScripMasterError(f"{segment}: not UTF-8 text") from exc


class _RowReader:
    def __init__(self, segment: str, header: list[str]) -> None:
        self.segment = segment
        self.exchange = EXCHANGE_OF[segment]
        self.width = len(header)
        col = {name: index for index, name in enumerate(header)}
        self.c_token, self.c_seg = col["pSymbol"], col["pExchSeg"]
        self.c_ts, self.c_name = col["pTrdSymbol"], col["pSymbolName"]
        self.c_group, self.c_inst = col["pGroup"], col["pInstType"]
        self.c_opt, self.c_tick = col["pOptionType"], col["dTickSize"]
        self.c_lot, self.c_exp = col["lLotSize"], col["lExpiryDate"]
        self.c_strike, self.c_isin = col["dStrikePrice"], col["pISIN"]
        self.c_freeze = col.get("lFreezeQty")
        self.c_precision = col.get("lPrecision")
        # Values repeated across thousands of contracts are shared, not copied per row.
        self._ticks: dict[str, Decimal] = {}
        self._strikes: dict[str, Decimal] = {}
        self._expiries: dict[str, date | None] = {}
        self._names: dict[str, str] = {}

    def read(self, reader: Iterator[list[str]]) -> list[Instrument]:
        instruments: list[Instrument] = []
        bad: list[str] = []
        line = 1
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != self.width:
                raise ScripMasterError(f"{self.segment}: line {line} has {len(row)} fields, "
                                       f"the header {self.width} (truncated or corrupt file)")
            if row[self.c_seg].strip().lower() != self.segment:
                raise ScripMasterError(f"{self.segment}: line {line} belongs to segment "
                                       f"{row[self.c_seg]!r}")
            try:
                instruments.append(self._instrument(row))
            except (ValueError, InvalidOperation) as exc:
                bad.append(f"line {line}: {exc}")
        total = len(instruments) + len(bad)
        if bad and len(bad) > max(1, total * _BAD_ROW_TOLERANCE):
            raise ScripMasterError(f"{self.segment}: {len(bad)} of {total} rows unreadable, "
                                   f"first: {bad[0]}")
        if bad:
            log.warning("scrip master %s: skipped %d unreadable rows (first: %s)",
                        self.segment, len(bad), bad[0])
        if not instruments:
            raise ScripMasterError(f"{self.segment}: no instruments in the file")
        return instruments

    def _instrument(self, row: list[str]) -> Instrument:
        trading_symbol = row[self.c_ts].strip()
        token = row[self.c_token].strip()
        if not trading_symbol or not token:
            raise ValueError("no trading symbol or token")
        option_type = row[self.c_opt].strip().upper()
        inst_type = row[self.c_inst].strip().upper()
        isin = row[self.c_isin].strip()
        if self.segment in _CASH_SEGMENTS:
            kind = InstrumentKind.EQUITY if isin else InstrumentKind.INDEX
        elif option_type in ("CE", "PE"):
            kind = InstrumentKind.OPTION
        elif inst_type.startswith("FUT") or option_type in ("XX", ""):
            kind = InstrumentKind.FUTURE
        else:
            raise ValueError(f"unknown instrument type {inst_type!r}/{option_type!r}")
        expiry = self._expiry(row[self.c_exp])
        if kind in (InstrumentKind.FUTURE, InstrumentKind.OPTION) and expiry is None:
            raise ValueError(f"derivative {trading_symbol} has no expiry")
        strike = None
        if kind is InstrumentKind.OPTION:
            strike = self._strike(row[self.c_strike])
            if strike <= 0:
                raise ValueError(f"option {trading_symbol} has no strike")
        tick = self._tick(row[self.c_tick])
        lot = _whole(row[self.c_lot]) if row[self.c_lot].strip() else 1
        return Instrument(
            exchange=self.exchange,
            trading_symbol=trading_symbol,
            symbol=self._shared(row[self.c_name].strip().upper()),
            token=token,
            kind=kind,
            lot_size=lot if lot > 0 else 1,
            tick_size=tick,
            series=(self._shared(row[self.c_group].strip().upper())
                    if self.segment in _CASH_SEGMENTS else ""),
            expiry=expiry,
            strike=strike,
            option_type=self._shared(option_type) if kind is InstrumentKind.OPTION else "",
            freeze_quantity=self._optional_int(self.c_freeze, row),
            precision=self._optional_int(self.c_precision, row) or 2,
            isin=isin,
        )

    def _tick(self, text: str) -> Decimal:
        tick = self._ticks.get(text)
        if tick is None:
            paise = Decimal(text.strip())
            if not paise.is_finite():
                raise ValueError(f"bad tick size {text!r}")
            # Index rows carry no tick; a cent keeps them harmless (they are never traded).
            tick = (paise / 100).normalize() if paise > 0 else Decimal("0.01")
            self._ticks[text] = tick
        return tick

    def _strike(self, text: str) -> Decimal:
        strike = self._strikes.get(text)
        if strike is None:
            strike = (Decimal(text.strip()) / 100).normalize()
            self._strikes[text] = strike
        return strike

    def _shared(self, text: str) -> str:
        return self._names.setdefault(text, text)

    def _expiry(self, text: str) -> date | None:
        if text in self._expiries:
            return self._expiries[text]
        seconds = int(Decimal(text.strip())) if text.strip() else -1
        if seconds <= 0:
            result = None
        else:
            if self.segment in _NSE_EPOCH_SEGMENTS:
                seconds += NSE_EPOCH_OFFSET
            result = datetime.fromtimestamp(seconds, IST).date()
        self._expiries[text] = result
        return result

    @staticmethod
    def _optional_int(column: int | None, row: list[str]) -> int | None:
        if column is None or not row[column].strip():
            return None
        value = _whole(row[column])
        return value if value > 0 else None


def _whole(text: str) -> int:
    number = Decimal(text.strip())
    if not number.is_finite() or number != number.to_integral_value():
        raise ValueError(f"not a whole number: {text!r}")
    return int(number)


# --- the index ----------------------------------------------------------------------------


class InstrumentIndex:
    """Every instrument of one scrip master, indexed for the lookups signals need."""

    def __init__(self, instruments: Iterable[Instrument], trading_day: date) -> None:
        self.trading_day = trading_day
        self._by_symbol: dict[tuple[Exchange, str], Instrument] = {}
        self._cash_names: dict[tuple[Exchange, str], Instrument] = {}
        self._index_names: dict[tuple[Exchange, str], Instrument] = {}
        self._futures: dict[tuple[Exchange, str], list[Instrument]] = {}
        count = 0
        for item in instruments:
            count += 1
            self._by_symbol[(item.exchange, item.trading_symbol.upper())] = item
            key = (item.exchange, item.symbol)
            if item.kind is InstrumentKind.EQUITY:
                held = self._cash_names.get(key)
                if held is None or _series_rank(item.series) < _series_rank(held.series):
                    self._cash_names[key] = item
            elif item.kind is InstrumentKind.INDEX:
                self._index_names[key] = item
            elif item.kind is InstrumentKind.FUTURE:
                self._futures.setdefault(key, []).append(item)
        self._expiries: dict[tuple[Exchange, str], list[date]] = {}
        for key, chain in self._futures.items():
            chain.sort(key=lambda inst: (inst.expiry or date.max, inst.trading_symbol))
            self._expiries[key] = [inst.expiry or date.max for inst in chain]
        self._count = count
        self._names: dict[Exchange, list[str]] = {}
        self._chains: _Chains | None = None
        self._chains_lock = threading.Lock()

    def __len__(self) -> int:
        return self._count

    def get(self, exchange: Exchange, trading_symbol: str) -> Instrument | None:
        """Exact lookup by Kotak trading symbol (the fast path)."""
        return self._by_symbol.get((exchange, trading_symbol.upper()))

    def futures(self, exchange: Exchange, underlying: str,
                on: date | None = None) -> list[Instrument]:
        """Unexpired futures of ``underlying`` on ``exchange``, nearest first."""
        key = (exchange, underlying.upper())
        chain = self._futures.get(key)
        if not chain:
            return []
        return chain[bisect.bisect_left(self._expiries[key], on or self.trading_day):]

    def resolve(self, symbol: str, exchange: Exchange | None = None,
                on: date | None = None) -> Instrument:
        """Find the instrument a signal means.

        :param exchange: restricts the search; a TradingView prefix must agree with it.
        :param on: the day continuous futures roll against (the index's day by default).
        :raises UnknownInstrument: nothing matches (with a hint when we can guess why).
        :raises AmbiguousInstrument: several instruments match; the exchange would decide.
        """
        text = symbol.strip().upper()
        if not text:
            raise UnknownInstrument(symbol, "the symbol is empty")
        exchanges = _candidate_exchanges(symbol, text, exchange)
        if ":" in text:
            text = text.split(":", 1)[1].strip()
        continuous = _CONTINUOUS.match(text)
        if continuous:
            return self._continuous(symbol, continuous.group(1), int(continuous.group(2)),
                                    exchanges, on or self.trading_day)
        for variant in _spellings(text):
            found = self._direct(variant, exchanges)
            if len(found) == 1:
                return found[0]
            if found:
                raise AmbiguousInstrument(symbol, found)
        raise UnknownInstrument(symbol, self._hint(text, exchanges))

    def _direct(self, text: str, exchanges: tuple[Exchange, ...]) -> list[Instrument]:
        found: list[Instrument] = []
        for exch in exchanges:
            hit = self._by_symbol.get((exch, text)) or self._cash_names.get((exch, text))
            if hit is not None and hit.kind is not InstrumentKind.INDEX and hit not in found:
                found.append(hit)
        return found

    def _continuous(self, symbol: str, underlying: str, nth: int,
                    exchanges: tuple[Exchange, ...], day: date) -> Instrument:
        chains: list[list[Instrument]] = []
        for exch in exchanges:
            derivative = _DERIVATIVE_OF.get(exch, exch)
            if derivative.is_derivatives and (exch is derivative or derivative not in exchanges):
                chain = self.futures(derivative, underlying, day)
                if chain and chain not in chains:
                    chains.append(chain)
        if not chains:
            raise UnknownInstrument(symbol, f"no unexpired futures of {underlying}")
        if len(chains) > 1:
            raise AmbiguousInstrument(symbol, [chain[0] for chain in chains])
        chain = chains[0]
        if nth > len(chain):
            raise UnknownInstrument(symbol, f"only {len(chain)} unexpired futures of "
                                            f"{underlying} are listed")
        return chain[nth - 1]

    def _hint(self, text: str, exchanges: tuple[Exchange, ...]) -> str:
        for exch in exchanges:
            if (exch, text) in self._index_names:
                return f"{text} is an index; trade a contract such as {text}1!"
            if self._futures.get((_DERIVATIVE_OF.get(exch, exch), text)):
                return f"name a contract, e.g. {text}1! for the nearest future"
        hint = "not in today's scrip master for " + "/".join(e.value for e in exchanges)
        close = self.close_names(text, exchanges)
        return f"{hint}; did you mean {' or '.join(close)}?" if close else hint

    def close_names(self, text: str, exchanges: tuple[Exchange, ...]) -> list[str]:
        """Listed names (shares, futures' underlyings) spelled like ``text``, best first:
        the likely typo of a refused symbol."""
        bare = text.rsplit("-", 1)[0] if text.endswith(("-EQ", "-BE")) else text
        names: list[str] = []
        for exch in exchanges:
            names += self._listed_names(exch)
        return difflib.get_close_matches(bare, dict.fromkeys(names), n=3, cutoff=0.75)

    def _listed_names(self, exchange: Exchange) -> list[str]:
        found = self._names.get(exchange)
        if found is None:
            # Built on the first refusal that asks (the index is shared by threads: a race
            # builds the same list twice, harmlessly).
            found = sorted({name for exch, name in (*self._cash_names, *self._futures)
                            if exch is exchange})
            self._names[exchange] = found
        return found

    # --- options by strike offset ---------------------------------------------------------

    def option_chain(self, exchange: Exchange, underlying: str,
                     option_type: str) -> OptionChain | None:
        """The listed ``option_type`` (CE/PE) options of ``underlying`` on ``exchange``, or
        None when there are none. Expired expiries are kept: the caller asks from a day."""
        return self._option_chains().chains.get((exchange, underlying.upper(),
                                                 option_type.upper()))

    def option_exchanges(self, underlying: str) -> tuple[Exchange, ...]:
        """The exchanges listing options of ``underlying`` (to say where to look instead)."""
        return self._option_chains().exchanges.get(underlying.upper(), ())

    def warm(self) -> InstrumentIndex:
        """Build the option chains now, so that no signal waits for them (up to 0.2 s on a
        full master): called before an index is handed to the order path."""
        self._option_chains()
        return self

    def _option_chains(self) -> _Chains:
        # Built once per index (about 0.2 s for a 155,000-row master): by the store when it
        # loads a master (warm), else on first use.
        chains = self._chains
        if chains is None:
            with self._chains_lock:
                chains = self._chains
                if chains is None:
                    chains = _Chains.build(self._by_symbol.values())
                    self._chains = chains
        return chains

    def index_quote(self, name: str) -> Instrument | None:
        """The instrument Kotak quotes an index by (``NIFTY`` -> NSE ``Nifty 50``), or None
        when ``name`` is not an index with listed options.

        The scrip master's index row is used when its trading symbol is Kotak's quote name;
        otherwise a row is made up from the name alone, since Kotak quotes an index by its
        name, not a token, and a master without the row must not stop a NIFTY signal.
        """
        text = name.strip().upper()
        entry = INDEX_QUOTES.get(_INDEX_ALIASES.get(text, text))
        if entry is None:
            return None
        exchange, quote_name = entry
        listed = self._by_symbol.get((exchange, quote_name.upper()))
        if listed is not None and listed.kind is InstrumentKind.INDEX:
            return listed
        return Instrument(exchange=exchange, trading_symbol=quote_name,
                          symbol=quote_name.upper(), token=quote_name,
                          kind=InstrumentKind.INDEX, lot_size=1, tick_size=Decimal("0.05"))

    def underlying(self, name: str, exchange: Exchange | None = None,
                   on: date | None = None) -> Underlying:
        """What an option by offset is priced from, and where its options are listed.

        Read in this order: a future (``NIFTY26DECFUT``, ``NIFTY1!``, OpenAlgo's
        ``NIFTY30DEC25FUT``) is quoted itself; an index with listed options (``NIFTY``,
        ``SENSEX``, also by Kotak's quote name or TradingView's ticker) by Kotak's index quote;
        anything else is a share, quoted by its cash row (NSE before BSE unless told).

        :param exchange: the sender's exchange; NSE/NFO and BSE/BFO mean the same market here.
            Ignored for an index, whose market its name already fixes.
        :param on: the day continuous futures roll against (the index's day by default).
        :raises UnknownInstrument: nothing matches, with a hint saying what would.
        :raises AmbiguousInstrument: a continuous future listed on several exchanges.
        """
        text = name.strip().upper()
        prefix, _, bare = text.rpartition(":")
        bare = bare.strip()
        if not bare:
            raise UnknownInstrument(name, "the underlying is empty")
        home = _home_market(name, prefix.strip(), exchange)
        if _CONTINUOUS.match(bare) or bare.endswith("FUT"):
            future = self._future_underlying(name, bare, home, on)
            return Underlying(future.symbol, future, future.exchange)
        index_name = _INDEX_ALIASES.get(bare, bare)
        quoted = self.index_quote(index_name)
        if quoted is not None:
            return Underlying(index_name, quoted, _DERIVATIVE_OF[quoted.exchange])
        markets = (home,) if home is not None else (Exchange.NSE, Exchange.BSE)
        for market in markets:
            for variant in _spellings(bare):
                share = self._cash_names.get((market, variant))
                if share is None:
                    listed = self._by_symbol.get((market, variant))
                    share = listed if listed and listed.kind is InstrumentKind.EQUITY else None
                if share is not None and market in _DERIVATIVE_OF:
                    return Underlying(share.symbol, share, _DERIVATIVE_OF[market])
        raise UnknownInstrument(name, self._underlying_hint(bare, markets))

    def _future_underlying(self, name: str, bare: str, home: Exchange | None,
                           on: date | None) -> Instrument:
        market = _DERIVATIVE_OF.get(home, home) if home is not None else None
        try:
            found = self.resolve(bare, market, on)
        except UnknownInstrument:
            spelled = _OPENALGO_FUTURE.match(bare)
            if spelled is None:
                raise
            found = self._openalgo_future(name, spelled, market, on)
        if found.kind is not InstrumentKind.FUTURE:
            raise UnknownInstrument(name, f"{found.trading_symbol} is not a future")
        return found

    def _openalgo_future(self, name: str, spelled: re.Match[str], market: Exchange | None,
                         on: date | None) -> Instrument:
        """``NIFTY30DEC25FUT`` read as Kotak's ``NIFTY25DECFUT``, the day checked against the
        listed expiry so a wrong date is not silently another contract."""
        root, day, month, year = spelled.groups()
        try:
            expiry = date(2000 + int(year), _MONTHS.index(month) + 1, int(day))
        except ValueError as exc:
            raise UnknownInstrument(name, f"{day}{month}{year} is not a date") from exc
        found = self.resolve(f"{root}{year}{month}FUT", market, on)
        if found.expiry != expiry:
            listed = found.expiry.strftime("%d%b%y").upper() if found.expiry else "?"
            raise UnknownInstrument(name, f"{found.trading_symbol} expires on {listed}, not "
                                          f"{expiry.strftime('%d%b%y').upper()}")
        return found

    def _underlying_hint(self, bare: str, markets: tuple[Exchange, ...]) -> str:
        if any(key[1] == bare for key in self._futures):
            return f"{bare} has no cash price to pick strikes from: name its future, e.g. {bare}1!"
        where = "/".join(market.value for market in markets)
        return (f"not an index with options ({', '.join(INDEX_QUOTES)}), a share on {where} or "
                "a future in today's scrip master")


@dataclass(frozen=True, slots=True)
class Underlying:
    """What an option by offset is picked against."""

    name: str  # what its options are listed under (pSymbolName): NIFTY, RELIANCE
    quote: Instrument  # quoted for the price: the index, the share, or the future itself
    derivatives: Exchange  # where its options are listed: NFO, BFO, MCX


@dataclass(frozen=True, slots=True, eq=False)
class StrikeLadder:
    """One expiry of an option chain: the listed strikes, ascending, and their contracts."""

    expiry: date
    strikes: tuple[Decimal, ...]
    contracts: tuple[Instrument, ...]  # contracts[i] is the option at strikes[i]

    def position(self, strike: Decimal) -> int | None:
        """Where ``strike`` stands in :attr:`strikes`, or None when it is not listed."""
        at = bisect.bisect_left(self.strikes, strike)
        return at if at < len(self.strikes) and self.strikes[at] == strike else None


@dataclass(frozen=True, slots=True, eq=False)
class OptionChain:
    """The options of one type (CE or PE) of one underlying on one exchange."""

    exchange: Exchange
    underlying: str
    option_type: str
    expiries: tuple[date, ...]  # ascending
    ladders: Mapping[date, StrikeLadder]

    def expiries_from(self, day: date) -> tuple[date, ...]:
        """The listed expiries on or after ``day``, nearest first."""
        return self.expiries[bisect.bisect_left(self.expiries, day):]


@dataclass(frozen=True, slots=True)
class _Chains:
    chains: dict[tuple[Exchange, str, str], OptionChain]
    exchanges: dict[str, tuple[Exchange, ...]]

    @classmethod
    def build(cls, instruments: Iterable[Instrument]) -> _Chains:
        grouped: dict[tuple[Exchange, str, str], dict[date, dict[Decimal, Instrument]]] = {}
        for item in instruments:
            if (item.kind is not InstrumentKind.OPTION or item.expiry is None
                    or item.strike is None):
                continue
            key = (item.exchange, item.symbol, item.option_type)
            at_strike = grouped.setdefault(key, {}).setdefault(item.expiry, {})
            held = at_strike.get(item.strike)
            # Two rows at one strike would be a malformed master; the choice must not depend
            # on the file's row order.
            if held is None or item.trading_symbol < held.trading_symbol:
                at_strike[item.strike] = item
        chains: dict[tuple[Exchange, str, str], OptionChain] = {}
        exchanges: dict[str, tuple[Exchange, ...]] = {}
        for key, expiries in grouped.items():
            ladders: dict[date, StrikeLadder] = {}
            for expiry, at_strike in expiries.items():
                strikes = tuple(sorted(at_strike))
                ladders[expiry] = StrikeLadder(expiry, strikes,
                                               tuple(at_strike[s] for s in strikes))
            exchange, underlying, option_type = key
            chains[key] = OptionChain(exchange, underlying, option_type,
                                      tuple(sorted(ladders)), ladders)
            if exchange not in exchanges.get(underlying, ()):
                exchanges[underlying] = (*exchanges.get(underlying, ()), exchange)
        return cls(chains, exchanges)


def _home_market(name: str, prefix: str, exchange: Exchange | None) -> Exchange | None:
    """The cash market (or MCX/CDS) a prefix and an exchange point at; they must agree."""
    from_prefix = None
    if prefix:
        family = _PREFIX_FAMILY.get(prefix)
        if family is None:
            raise UnknownInstrument(name, f"unknown exchange prefix {prefix!r}")
        from_prefix = _CASH_OF.get(family[0], family[0])
    from_exchange = _CASH_OF.get(exchange, exchange) if exchange is not None else None
    if from_prefix is not None and from_exchange is not None and from_prefix is not from_exchange:
        raise UnknownInstrument(name, f"the prefix {prefix} disagrees with exchange {exchange}")
    return from_prefix or from_exchange


def _series_rank(series: str) -> int:
    try:
        return _SERIES_PREFERENCE.index(series)
    except ValueError:
        return len(_SERIES_PREFERENCE)


def _candidate_exchanges(symbol: str, text: str,
                         exchange: Exchange | None) -> tuple[Exchange, ...]:
    prefix = text.split(":", 1)[0].strip() if ":" in text else ""
    family = _PREFIX_FAMILY.get(prefix) if prefix else None
    if prefix and family is None:
        raise UnknownInstrument(symbol, f"unknown exchange prefix {prefix!r}")
    if exchange is not None:
        if family is not None and exchange not in family:
            raise UnknownInstrument(symbol, f"the prefix {prefix} disagrees with exchange "
                                            f"{exchange}")
        return (exchange,)
    return family if family is not None else tuple(Exchange)


def _spellings(text: str) -> Iterator[str]:
    """The symbol as written, then TradingView's '_' read as '&' or '-' (few underscores)."""
    yield text
    count = text.count("_")
    if count == 0 or count > 3:
        return
    parts = text.split("_")
    for replacements in itertools.product(_UNDERSCORE_STANDS_FOR, repeat=count):
        yield parts[0] + "".join(r + p for r, p in zip(replacements, parts[1:], strict=True))


# --- the store: one whole master per trading day ------------------------------------------


class ScripSource(Protocol):
    """Where a refresh gets the file list and files (the Kotak client)."""

    def scrip_files(self) -> ScripFiles: ...

    def download(self, url: str) -> bytes: ...


@dataclass(frozen=True)
class RefreshReport:
    trading_day: date
    counts: dict[str, int]
    skipped_files: tuple[str, ...]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


_MANIFEST = "manifest.json"
_KEEP_DAYS = 3


class InstrumentStore:
    """The current :class:`InstrumentIndex`, cached on disk per trading day.

    Several processes may share ``cache_dir``: each loads the day's files when they appear.
    A refresh writes a hidden folder of its own, then points the day's name (a symbolic link)
    at it with one atomic replace, so a reader sees the previous files or the new ones, never
    half, and never none: a worker taking its first signal while another process refreshes
    the same day must not find the scrip master missing.
    """

    def __init__(self, cache_dir: Path, clock: Clock) -> None:
        self._dir = cache_dir
        self._clock = clock
        self._index: InstrumentIndex | None = None
        self._lock = threading.Lock()

    def current(self) -> InstrumentIndex:
        """Return today's index, loading it from the cache if another process refreshed.

        Yesterday's index stays in use until today's is complete.

        :raises InstrumentsUnavailable: no scrip master was ever loaded.
        """
        index = self._index
        today = today_ist(self._clock)
        if index is None or index.trading_day != today:
            with self._lock:
                if self._index is None or self._index.trading_day != today:
                    self._load_latest(today)
                index = self._index
        if index is None:
            raise InstrumentsUnavailable("the scrip master has not been loaded yet: run "
                                         "`python -m bridge instruments refresh`")
        return index

    def loaded(self) -> InstrumentIndex | None:
        return self._index

    def ensure(self, source: ScripSource) -> InstrumentIndex:
        """The index in use, or, when none was ever loaded, today's downloaded now.

        :raises ScripMasterError, KotakError: as :meth:`refresh`, when it had to load.
        """
        try:
            return self.current()
        except InstrumentsUnavailable:
            self.refresh(source)
            return self.current()

    def refresh(self, source: ScripSource) -> RefreshReport:
        """Download and parse today's files, then publish them and swap the index.

        :raises ScripMasterError: a file or the list is bad; the previous index stays.
        :raises KotakError: Kotak could not be reached or refused; the previous index stays.
        """
        day = today_ist(self._clock)
        files = source.scrip_files()
        wanted, skipped = _pick_files(files.urls)
        absent = REQUIRED_SEGMENTS - wanted.keys()
        if absent:
            raise ScripMasterError("the scrip-master list lacks " + ", ".join(sorted(absent)))
        raw: dict[str, bytes] = {}
        parsed: list[Instrument] = []
        counts: dict[str, int] = {}
        for segment, url in sorted(wanted.items()):
            raw[segment] = source.download(url)
            rows = parse_scrip_csv(segment, raw[segment])
            counts[segment] = len(rows)
            parsed.extend(rows)
        index = InstrumentIndex(parsed, day).warm()
        self._publish(day, raw, counts)
        with self._lock:
            self._index = index
        log.info("scrip master for %s loaded: %d instruments (%s)", day, len(index),
                 ", ".join(f"{seg} {n}" for seg, n in sorted(counts.items())))
        return RefreshReport(trading_day=day, counts=counts, skipped_files=skipped)

    def _load_latest(self, today: date) -> None:
        folder = self._dir / today.isoformat()
        if not (folder / _MANIFEST).exists():
            return
        try:
            manifest = json.loads((folder / _MANIFEST).read_text())
            instruments: list[Instrument] = []
            for segment in manifest["segments"]:
                instruments.extend(parse_scrip_csv(segment, (folder / f"{segment}.csv")
                                                   .read_bytes()))
        except (OSError, ValueError, KeyError, ScripMasterError) as exc:
            log.error("cached scrip master %s is unusable (%s); keeping the previous one",
                      folder, exc)
            return
        self._index = InstrumentIndex(instruments, today).warm()
        log.info("scrip master for %s loaded from cache: %d instruments", today,
                 len(self._index))

    def _publish(self, day: date, raw: dict[str, bytes], counts: dict[str, int]) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        stamp = f"{time.time_ns()}.{os.getpid()}.{threading.get_ident()}"
        staging = self._dir / f".staging.{stamp}"
        staging.mkdir()
        for segment, content in raw.items():
            (staging / f"{segment}.csv").write_bytes(content)
        (staging / _MANIFEST).write_text(json.dumps(
            {"segments": sorted(raw), "counts": counts,
             "fetched_at": self._clock.now().isoformat()}))
        version = self._dir / f".{day.isoformat()}.{stamp}"
        staging.rename(version)
        final = self._dir / day.isoformat()
        if final.is_dir() and not final.is_symlink():
            # A cache written before versions: a real folder cannot be swapped atomically.
            retired = self._dir / f".retired.{final.name}.{stamp}"
            final.rename(retired)
            shutil.rmtree(retired, ignore_errors=True)
        link = self._dir / f".link.{stamp}"
        link.symlink_to(version.name)
        os.replace(link, final)
        self._prune(day)

    def _prune(self, day: date) -> None:
        """Keep ``_KEEP_DAYS`` days; of today's versions, the one in use and the one before
        it (a process may still be reading it)."""
        days = sorted(p for p in self._dir.iterdir() if _is_day(p.name))
        for old in days[:-_KEEP_DAYS]:
            if old.name == day.isoformat():
                continue
            target = old.resolve()
            if old.is_symlink():
                old.unlink(missing_ok=True)
            shutil.rmtree(target, ignore_errors=True)
        for name in {p.name for p in days[-_KEEP_DAYS:]} | {day.isoformat()}:
            in_use = (self._dir / name).resolve().name
            versions = sorted((p for p in self._dir.glob(f".{name}.*") if p.is_dir()),
                              key=lambda p: _stamp(p.name))
            stale = [p for p in versions if p.name != in_use][:-1]
            for old in stale:
                shutil.rmtree(old, ignore_errors=True)


def _stamp(name: str) -> int:
    """The publication time in a version folder's name (``.<day>.<ns>.<pid>.<thread>``)."""
    try:
        return int(name.split(".")[2])
    except (IndexError, ValueError):
        return 0


def _is_day(name: str) -> bool:
    try:
        date.fromisoformat(name)
    except ValueError:
        return False
    return True


def _pick_files(urls: Iterable[str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """Choose one file per segment from the list; ignore what we do not trade.

    The 2026 list carries ``nse_cm-v1.csv`` beside the older-format ``nse_com.csv``; the ``-v1``
    files are the current format.
    """
    wanted: dict[str, str] = {}
    skipped: list[str] = []
    for url in urls:
        name = url.rsplit("/", 1)[-1].split("?", 1)[0].lower()
        stem = name.removesuffix(".csv")
        segment = stem.removesuffix("-v1")
        if not name.endswith(".csv") or segment not in EXCHANGE_OF:
            skipped.append(name)
            continue
        if segment in wanted and not stem.endswith("-v1"):
            continue
        wanted[segment] = url
    return wanted, tuple(skipped)


def segment_of(exchange: Exchange) -> str:
    return SEGMENT_OF[exchange]
