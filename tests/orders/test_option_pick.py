"""Options by strike offset: from (underlying, offset, type, expiry, step, price) to the exact
contract, on a small hand-made scrip master whose chains have the exchanges' real steps, lots
and expiry calendars, and on the sandbox's catalog.

The hand-made market is seen on Wednesday 16 Dec 2026: NIFTY's weekly expires next Tuesday
(22 Dec), its monthly on the last Tuesday (29 Dec); SENSEX's weekly tomorrow (Thursday 17 Dec)
and its monthly on the last Thursday (31 Dec).
"""

from __future__ import annotations

import threading
import time
import timeit
from collections.abc import Iterator
from datetime import date, datetime
from datetime import time as time_of_day
from decimal import Decimal
from pathlib import Path

import pytest

from bridge.clock import IST, ManualClock
from bridge.domain import (
    Exchange,
    Instrument,
    InstrumentKind,
    OptionRequest,
    OptionType,
    Resolution,
)
from bridge.errors import InvalidSignal
from bridge.kotak import instruments as instruments_module
from bridge.kotak import wire
from bridge.kotak.auth import AuthFlow
from bridge.kotak.errors import BrokerUnavailable
from bridge.kotak.instruments import InstrumentIndex, InstrumentStore, parse_scrip_csv
from bridge.kotak.sandbox import Sandbox, SandboxAccount, SandboxServer
from bridge.kotak.sandbox.catalog import Catalog
from bridge.kotak.sandbox.scripmaster import SEGMENT_FILES
from bridge.orders.options import (
    OptionPicker,
    Quote,
    choose,
    kotak_quotes,
    parse_expiry,
    parse_offset,
)
from bridge.schedule.calendar import TradingCalendar
from tests.conftest import make_kotak

TODAY = date(2026, 12, 16)
NSE, BSE, NFO, BFO, MCX = Exchange.NSE, Exchange.BSE, Exchange.NFO, Exchange.BFO, Exchange.MCX
_WEEKLY_MONTH = "123456789OND"  # Kotak's month code in weekly option symbols
HOURS = {exchange: (time_of_day(9, 15), time_of_day(15, 30))
         for exchange in (NSE, BSE, NFO, BFO)}
CALENDAR = TradingCalendar(HOURS, [])


# --- a hand-made scrip master --------------------------------------------------------------


def expiry_code(expiry: date, weekly: bool) -> str:
    """``26DEC`` for a monthly contract, ``26D22`` (year, month code, day) for a weekly."""
    if weekly:
        return f"{expiry:%y}{_WEEKLY_MONTH[expiry.month - 1]}{expiry:%d}"
    return f"{expiry:%y}{expiry:%b}".upper()


def options(name: str, exchange: Exchange, lot: int, expiry: date, low: int, high: int,
            step: int, *, weekly: bool = False, extra: tuple[int, ...] = ()) -> list[Instrument]:
    """A CE and a PE at every strike from ``low`` to ``high`` by ``step`` (plus ``extra``)."""
    strikes = sorted({*range(low, high + 1, step), *extra})
    return [Instrument(exchange=exchange,
                       trading_symbol=f"{name}{expiry_code(expiry, weekly)}{strike}{kind}",
                       symbol=name, token=f"{name}-{expiry}-{strike}-{kind}",
                       kind=InstrumentKind.OPTION, lot_size=lot, tick_size=Decimal("0.05"),
                       expiry=expiry, strike=Decimal(strike), option_type=kind)
            for strike in strikes for kind in ("CE", "PE")]


def future(name: str, exchange: Exchange, lot: int, expiry: date) -> Instrument:
    return Instrument(exchange=exchange, trading_symbol=f"{name}{expiry_code(expiry, False)}FUT",
                      symbol=name, token=f"{name}-{expiry}-FUT", kind=InstrumentKind.FUTURE,
                      lot_size=lot, tick_size=Decimal("0.05"), expiry=expiry)


def index_row(exchange: Exchange, quote_name: str, token: str) -> Instrument:
    # As the parser reads an index row: pTrdSymbol as written, pSymbolName upper-cased.
    return Instrument(exchange=exchange, trading_symbol=quote_name, symbol=quote_name.upper(),
                      token=token, kind=InstrumentKind.INDEX, lot_size=1,
                      tick_size=Decimal("0.05"))


def share(exchange: Exchange, trading_symbol: str, name: str, token: str) -> Instrument:
    return Instrument(exchange=exchange, trading_symbol=trading_symbol, symbol=name, token=token,
                      kind=InstrumentKind.EQUITY, lot_size=1, tick_size=Decimal("0.05"),
                      series="EQ" if exchange is NSE else "A", isin="INE002A01018")


def hand_made_market() -> list[Instrument]:
    tue15, tue22, tue29 = date(2026, 12, 15), date(2026, 12, 22), date(2026, 12, 29)
    tue05, tue26 = date(2027, 1, 5), date(2027, 1, 26)
    thu17, thu24, thu31, thu28 = (date(2026, 12, 17), date(2026, 12, 24), date(2026, 12, 31),
                                  date(2027, 1, 28))
    return [
        index_row(NSE, "Nifty 50", "26000"),
        index_row(NSE, "Nifty Bank", "26009"),
        # No FINNIFTY index row: Kotak quotes an index by its name, so the picker needs none.
        index_row(NSE, "NIFTY MID SELECT", "26074"),
        index_row(BSE, "SENSEX", "1"),
        index_row(BSE, "BANKEX", "12"),
        share(NSE, "RELIANCE-EQ", "RELIANCE", "2885"),
        share(BSE, "RELIANCE", "RELIANCE", "500325"),
        share(NSE, "SBIN-EQ", "SBIN", "3045"),  # no options listed
        future("NIFTY", NFO, 65, tue29),
        future("NIFTY", NFO, 65, tue26),
        future("RELIANCE", NFO, 500, tue29),
        future("CRUDEOIL", MCX, 100, date(2026, 12, 18)),
        # NIFTY: step 50, lot 65; weeklies on Tuesdays, the monthly on the last Tuesday.
        *options("NIFTY", NFO, 65, tue15, 25700, 26300, 50, weekly=True),  # expired yesterday
        *options("NIFTY", NFO, 65, tue22, 25700, 26300, 50, weekly=True),
        *options("NIFTY", NFO, 65, tue29, 25500, 26500, 100),
        # 50 apart near the money, 100 further out, as NSE lists far strikes
        *options("NIFTY", NFO, 65, tue05, 25850, 26150, 50, weekly=True,
                 extra=(25600, 25700, 25800, 26200, 26300, 26400)),
        *options("NIFTY", NFO, 65, tue26, 25000, 27000, 100),
        # BANKNIFTY, FINNIFTY, MIDCPNIFTY: monthly only.
        *options("BANKNIFTY", NFO, 30, tue29, 58500, 59500, 100),
        *options("BANKNIFTY", NFO, 30, tue26, 58000, 60000, 100),
        *options("FINNIFTY", NFO, 60, tue29, 27200, 27800, 50),
        *options("MIDCPNIFTY", NFO, 120, tue29, 13400, 13600, 25),
        # SENSEX: step 100, lot 20; weeklies on Thursdays, the monthly on the last Thursday.
        *options("SENSEX", BFO, 20, thu17, 84500, 85500, 100, weekly=True),
        *options("SENSEX", BFO, 20, thu24, 84500, 85500, 100, weekly=True),
        *options("SENSEX", BFO, 20, thu31, 84500, 85500, 100),
        *options("SENSEX", BFO, 20, thu28, 84500, 85500, 100),
        *options("BANKEX", BFO, 30, thu31, 65500, 66500, 100),
        *options("RELIANCE", NFO, 500, tue29, 1380, 1520, 20),
    ]


@pytest.fixture(scope="module")
def market() -> InstrumentIndex:
    return InstrumentIndex(hand_made_market(), TODAY)


def ask(underlying: str, offset: str, option_type: str, expiry: str = "", *,
        strike_int: str | None = None, exchange: str = "") -> OptionRequest:
    return OptionRequest(underlying=underlying, offset=offset,
                         option_type=OptionType(option_type), expiry=expiry,
                         strike_int=Decimal(strike_int) if strike_int else None,
                         exchange=exchange)


NIFTY_AT = "26012.40"
PICKS = [
    # NIFTY at 26012.40: ATM 26000 on this week's chain (22 Dec), step 50
    ("NIFTY", "ATM", "CE", "", None, "NSE_INDEX", NIFTY_AT, "NIFTY26D2226000CE"),
    ("NIFTY", "ATM", "PE", "", None, "", NIFTY_AT, "NIFTY26D2226000PE"),
    ("NIFTY", "OTM2", "CE", "", None, "", NIFTY_AT, "NIFTY26D2226100CE"),
    ("NIFTY", "ITM2", "CE", "", None, "", NIFTY_AT, "NIFTY26D2225900CE"),
    ("NIFTY", "OTM3", "PE", "", None, "", NIFTY_AT, "NIFTY26D2225850PE"),
    ("NIFTY", "ITM1", "PE", "", None, "", NIFTY_AT, "NIFTY26D2226050PE"),
    ("NIFTY", "OTM6", "CE", "", None, "", NIFTY_AT, "NIFTY26D2226300CE"),  # the last listed
    ("NIFTY", "ITM6", "PE", "", None, "", NIFTY_AT, "NIFTY26D2226300PE"),
    ("NIFTY", "otm1", "CE", "", None, "", NIFTY_AT, "NIFTY26D2226050CE"),
    # ties go to the lower strike
    ("NIFTY", "ATM", "CE", "", None, "", "26025", "NIFTY26D2226000CE"),
    ("NIFTY", "ATM", "CE", "", None, "", "26025.05", "NIFTY26D2226050CE"),
    ("NIFTY", "ATM", "PE", "", None, "", "26024.95", "NIFTY26D2226000PE"),
    # every expiry form
    ("NIFTY", "OTM1", "PE", "current_week", None, "", NIFTY_AT, "NIFTY26D2225950PE"),
    ("NIFTY", "ATM", "CE", "next_week", None, "", NIFTY_AT, "NIFTY26DEC26000CE"),
    ("NIFTY", "ATM", "PE", "NEXT_WEEK", None, "", NIFTY_AT, "NIFTY26DEC26000PE"),
    ("NIFTY", "OTM1", "CE", "current_month", None, "", NIFTY_AT, "NIFTY26DEC26100CE"),
    ("NIFTY", "ITM2", "PE", "next_month", None, "", NIFTY_AT, "NIFTY27JAN26200PE"),
    ("NIFTY", "ITM1", "CE", "29DEC26", None, "", NIFTY_AT, "NIFTY26DEC25900CE"),
    ("NIFTY", "ATM", "PE", "29-dec-2026", None, "", NIFTY_AT, "NIFTY26DEC26000PE"),
    ("NIFTY", "OTM1", "CE", "2026-12-22", None, "", NIFTY_AT, "NIFTY26D2226050CE"),
    # an uneven chain: offsets walk the listed strikes, 50 apart then 100
    ("NIFTY", "OTM4", "CE", "05jan27", None, "", NIFTY_AT, "NIFTY2710526200CE"),
    ("NIFTY", "OTM5", "CE", "05JAN27", None, "", NIFTY_AT, "NIFTY2710526300CE"),
    ("NIFTY", "ITM5", "CE", "05JAN27", None, "", NIFTY_AT, "NIFTY2710525700CE"),
    # strike_int sets the grid
    ("NIFTY", "OTM2", "CE", "", "100", "", NIFTY_AT, "NIFTY26D2226200CE"),
    ("NIFTY", "ATM", "CE", "", "100", "", "26050", "NIFTY26D2226000CE"),
    ("NIFTY", "OTM1", "PE", "", "200", "", "26120", "NIFTY26D2226000PE"),
    # the chart's name of the index
    ("NIFTY 50", "ATM", "CE", "", None, "", NIFTY_AT, "NIFTY26D2226000CE"),
    ("NSE:NIFTY", "ATM", "CE", "", None, "", NIFTY_AT, "NIFTY26D2226000CE"),
    # BANKNIFTY at 59049, monthly only: current_week is the monthly, next_week the next one
    ("BANKNIFTY", "ATM", "CE", "current_week", None, "", "59049", "BANKNIFTY26DEC59000CE"),
    ("BANKNIFTY", "OTM3", "PE", "", None, "", "59049", "BANKNIFTY26DEC58700PE"),
    ("BANKNIFTY", "ATM", "CE", "next_week", None, "", "59049", "BANKNIFTY27JAN59000CE"),
    ("BANKNIFTY", "ITM1", "CE", "next_month", None, "", "59049", "BANKNIFTY27JAN58900CE"),
    # FINNIFTY at 27512, step 50 (quoted by name: no index row in this master)
    ("FINNIFTY", "ITM2", "CE", "", None, "", "27512", "FINNIFTY26DEC27400CE"),
    ("NSE:CNXFINANCE", "OTM1", "PE", "", None, "", "27512", "FINNIFTY26DEC27450PE"),
    # MIDCPNIFTY at 13512.50, step 25: a tie, the lower strike
    ("MIDCPNIFTY", "ATM", "PE", "", None, "", "13512.50", "MIDCPNIFTY26DEC13500PE"),
    ("MIDCPNIFTY", "OTM2", "CE", "", None, "", "13512.50", "MIDCPNIFTY26DEC13550CE"),
    # SENSEX at 85049.90, step 100: weekly tomorrow (Thursday), monthly 31 Dec
    ("SENSEX", "ATM", "CE", "", None, "BSE_INDEX", "85049.90", "SENSEX26D1785000CE"),
    ("SENSEX", "OTM1", "PE", "next_week", None, "", "85049.90", "SENSEX26D2484900PE"),
    ("SENSEX", "ITM1", "CE", "current_month", None, "", "85049.90", "SENSEX26DEC84900CE"),
    ("SENSEX", "ATM", "PE", "next_month", None, "BSE", "85049.90", "SENSEX27JAN85000PE"),
    # BANKEX at 65951: ATM 66000
    ("BANKEX", "OTM1", "CE", "", None, "", "65951", "BANKEX26DEC66100CE"),
    ("BANKEX", "ITM1", "PE", "", None, "BSE_INDEX", "65951", "BANKEX26DEC66100PE"),
    # a share, quoted on NSE cash; its options step 20
    ("NSE:RELIANCE", "ATM", "CE", "", None, "", "1451", "RELIANCE26DEC1460CE"),
    ("RELIANCE", "OTM2", "PE", "", None, "", "1450", "RELIANCE26DEC1400PE"),
    ("RELIANCE", "ITM1", "CE", "", None, "NSE", "1450", "RELIANCE26DEC1420CE"),
    # a future: its own price; by default the options settling with it
    ("NIFTY26DECFUT", "ATM", "CE", "", None, "NFO", "26120", "NIFTY26DEC26100CE"),
    ("NIFTY1!", "OTM1", "PE", "", None, "", "26120", "NIFTY26DEC26000PE"),
    ("NIFTY27JANFUT", "ATM", "CE", "", None, "", "26260", "NIFTY27JAN26300CE"),
    ("NIFTY29DEC26FUT", "ATM", "CE", "", None, "NFO", "26120", "NIFTY26DEC26100CE"),
    ("NIFTY26DECFUT", "ATM", "CE", "current_week", None, "", "26120", "NIFTY26D2226100CE"),
    ("RELIANCE26DECFUT", "ATM", "PE", "", None, "", "1455", "RELIANCE26DEC1460PE"),
]


@pytest.mark.parametrize(
    ("underlying", "offset", "kind", "expiry", "step", "exchange", "price", "expected"),
    PICKS, ids=[f"{u}-{o}-{k}-{e or 'default'}-{s or 'listed'}@{p}"
                for u, o, k, e, s, _, p, _x in PICKS])
def test_the_exact_contract_is_picked(market: InstrumentIndex, underlying: str, offset: str,
                                      kind: str, expiry: str, step: str | None, exchange: str,
                                      price: str, expected: str) -> None:
    request = ask(underlying, offset, kind, expiry, strike_int=step, exchange=exchange)

    contract, picked = choose(market, request, Decimal(price), TODAY)

    assert contract.trading_symbol == expected
    assert picked.trading_symbol == expected
    assert picked.strike == contract.strike and picked.expiry == contract.expiry
    assert market.get(contract.exchange, expected) is contract


def test_the_resolution_says_what_was_quoted_and_why_this_strike(
        market: InstrumentIndex) -> None:
    contract, picked = choose(market, ask("NIFTY", "OTM2", "CE", exchange="NSE_INDEX"),
                              Decimal("26012.4000"), TODAY)

    assert picked == Resolution(
        underlying="NIFTY", quoted="NSE:Nifty 50", underlying_price=Decimal("26012.4"),
        strike_step=Decimal(50), atm_strike=Decimal(26000), offset="OTM2",
        option_type=OptionType.CE, expiry=date(2026, 12, 22), strike=Decimal(26100),
        exchange=NFO, trading_symbol="NIFTY26D2226100CE")
    assert contract.lot_size == 65
    assert picked.to_dict()["atm_strike"] == "26000"


def test_a_future_underlying_names_the_future_and_quotes_it(market: InstrumentIndex) -> None:
    _, picked = choose(market, ask("NIFTY1!", "ATM", "CE"), Decimal("26120"), TODAY)

    assert (picked.underlying, picked.quoted) == ("NIFTY1!", "NFO:NIFTY26DECFUT")
    assert picked.strike_step == Decimal(100)


def test_strike_int_is_the_step_reported(market: InstrumentIndex) -> None:
    _, picked = choose(market, ask("NIFTY", "OTM2", "CE", strike_int="100"),
                       Decimal(NIFTY_AT), TODAY)

    assert (picked.strike_step, picked.atm_strike, picked.strike) == (
        Decimal(100), Decimal(26000), Decimal(26200))


REFUSALS = [
    # past the end of the chain: how far it goes
    ("NIFTY", "OTM7", "CE", "", None, "", NIFTY_AT, "offset", "reaches ITM6 and OTM6"),
    ("NIFTY", "ITM7", "PE", "", None, "", NIFTY_AT, "offset", "lists 25700 to 26300"),
    ("NIFTY", "OTM4", "CE", "", "100", "", NIFTY_AT, "offset", "ITM3 and OTM3 (steps of 100)"),
    # a step the exchange does not list
    ("NIFTY", "OTM1", "CE", "", "30", "", NIFTY_AT, "strike_int", "strike 26040"),
    ("NIFTY", "ATM", "CE", "", "0", "", NIFTY_AT, "strike_int", "positive"),
    # expiries
    ("NIFTY", "ATM", "CE", "15DEC26", None, "", NIFTY_AT, "expiry_date", "15DEC26 has expired"),
    ("NIFTY", "ATM", "CE", "23DEC26", None, "", NIFTY_AT, "expiry_date",
     "nearest listed are 22DEC26, 29DEC26, 05JAN27"),
    ("NIFTY", "ATM", "CE", "someday", None, "", NIFTY_AT, "expiry_date", "is not an expiry"),
    ("NIFTY", "ATM", "CE", "31FEB27", None, "", NIFTY_AT, "expiry_date", "not a calendar date"),
    ("BANKEX", "ATM", "CE", "next_week", None, "", "65951", "expiry_date", "no next_week"),
    ("BANKEX", "ATM", "CE", "next_month", None, "", "65951", "expiry_date",
     "no expiry in JAN 2027"),
    # offsets
    ("NIFTY", "ATM1", "CE", "", None, "", NIFTY_AT, "offset", "ATM, ITM1 to ITM50"),
    ("NIFTY", "OTM51", "CE", "", None, "", NIFTY_AT, "offset", "not a strike offset"),
    ("NIFTY", "OTM0", "CE", "", None, "", NIFTY_AT, "offset", "not a strike offset"),
    # underlyings
    ("FOOBAR", "ATM", "CE", "", None, "", NIFTY_AT, "underlying", "cannot be priced"),
    ("SBIN", "ATM", "CE", "", None, "", "850", "underlying", "SBIN has no options listed"),
    ("RELIANCE", "ATM", "CE", "", None, "BSE", "1450", "underlying", "they are listed on NFO"),
    ("CRUDEOIL", "ATM", "CE", "", None, "", "5500", "underlying", "name its future"),
    ("NIFTY30DEC26FUT", "ATM", "CE", "", None, "NFO", "26120", "underlying",
     "expires on 29DEC26, not 30DEC26"),
    ("BSE:RELIANCE", "ATM", "CE", "", None, "NSE", "1450", "underlying", "disagrees"),
    ("NIFTY", "ATM", "CE", "", None, "XYZ", NIFTY_AT, "exchange", "NSE_INDEX"),
    # prices no strike can be picked from
    ("NIFTY", "ATM", "CE", "", None, "", "30000", "underlying", "is outside the NIFTY CE"),
    ("NIFTY", "ATM", "CE", "", None, "", "0", "underlying", "no price"),
]


@pytest.mark.parametrize(
    ("underlying", "offset", "kind", "expiry", "step", "exchange", "price", "field", "words"),
    REFUSALS, ids=[f"{f}:{u}-{o}-{k}-{e or 'default'}-{s or 'listed'}@{p}"
                   for u, o, k, e, s, _, p, f, _w in REFUSALS])
def test_a_request_that_names_no_contract_is_refused_naming_the_field(
        market: InstrumentIndex, underlying: str, offset: str, kind: str, expiry: str,
        step: str | None, exchange: str, price: str, field: str, words: str) -> None:
    request = ask(underlying, offset, kind, expiry, strike_int=step, exchange=exchange)

    with pytest.raises(InvalidSignal) as refused:
        choose(market, request, Decimal(price), TODAY)

    assert list(refused.value.details) == [field]
    assert words in refused.value.details[field][0]
    assert refused.value.http_status == 422


def test_an_unknown_option_type_names_option_type(market: InstrumentIndex) -> None:
    request = OptionRequest(underlying="NIFTY", offset="ATM",
                            option_type="XX", expiry="")  # type: ignore[arg-type]

    with pytest.raises(InvalidSignal) as refused:
        choose(market, request, Decimal(NIFTY_AT), TODAY)

    assert "send CE (call) or PE (put)" in refused.value.details["option_type"][0]


@pytest.mark.parametrize(("text", "expected"), [
    ("ATM", 0), ("atm", 0), ("OTM1", 1), ("otm50", 50), ("ITM3", -3), (" itm12 ", -12)])
def test_offsets_count_strikes_out_of_the_money(text: str, expected: int) -> None:
    assert parse_offset(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("29DEC26", date(2026, 12, 29)), ("29dec26", date(2026, 12, 29)),
    ("29-DEC-2026", date(2026, 12, 29)), ("2026-12-29", date(2026, 12, 29)),
    ("5JAN27", date(2027, 1, 5)), ("current_week", "current_week"),
    ("Next_Month", "next_month"), ("next-week", "next_week"), ("", "")])
def test_expiry_forms(text: str, expected: date | str) -> None:
    assert parse_expiry(text) == expected


# --- the chain index -----------------------------------------------------------------------


def test_the_chain_index_is_built_once_however_many_threads_ask(
        monkeypatch: pytest.MonkeyPatch) -> None:
    index = InstrumentIndex(hand_made_market(), TODAY)
    built: list[int] = []
    real = instruments_module._Chains.build

    def counting(instruments: object) -> object:
        built.append(1)
        return real(instruments)  # type: ignore[arg-type]

    monkeypatch.setattr(instruments_module._Chains, "build", staticmethod(counting))
    start = threading.Barrier(8)
    seen: list[object] = []

    def ask_chain() -> None:
        start.wait()
        seen.append(index.option_chain(NFO, "NIFTY", "CE"))

    threads = [threading.Thread(target=ask_chain) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(built) == 1
    assert len({id(chain) for chain in seen}) == 1
    chain = index.option_chain(NFO, "nifty", "ce")
    assert chain is seen[0]
    assert chain is not None and chain.expiries_from(TODAY)[0] == date(2026, 12, 22)
    assert index.option_chain(NFO, "SBIN", "CE") is None
    assert index.option_exchanges("RELIANCE") == (NFO,)


def test_underlyings_are_quoted_where_kotak_quotes_them(market: InstrumentIndex) -> None:
    nifty = market.underlying("NIFTY")
    assert (nifty.name, nifty.quote.trading_symbol, nifty.quote.token, nifty.derivatives) == (
        "NIFTY", "Nifty 50", "26000", NFO)
    fin = market.underlying("FINNIFTY", NSE)
    assert (fin.quote.exchange, fin.quote.trading_symbol, fin.quote.kind) == (
        NSE, "Nifty Fin Service", InstrumentKind.INDEX)
    assert market.underlying("MIDCPNIFTY").quote.trading_symbol == "NIFTY MID SELECT"
    assert market.underlying("SENSEX").derivatives is BFO
    assert market.underlying("bankex").quote.exchange is BSE
    on_bse = market.underlying("RELIANCE", BSE)
    assert (on_bse.quote.exchange, on_bse.derivatives) == (BSE, BFO)
    assert market.underlying("NFO:RELIANCE26DECFUT").quote.kind is InstrumentKind.FUTURE


# --- the picker: the quote, then the pick --------------------------------------------------


class Quotes:
    """A broker's quote answer, chosen by the test, remembering what it was asked."""

    def __init__(self, answer: Quote | Exception | None) -> None:
        self.answer = answer
        self.asked: list[tuple[Instrument, float]] = []

    def __call__(self, instrument: Instrument, deadline: float) -> Quote | None:
        self.asked.append((instrument, deadline))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=IST)


def picker(answer: Quote | Exception | None, now: str) -> tuple[OptionPicker, Quotes]:
    quotes = Quotes(answer)
    return OptionPicker(quotes, ManualClock(at(now)), CALENDAR), quotes


def test_the_picker_quotes_the_index_and_picks(market: InstrumentIndex) -> None:
    chosen, quotes = picker(Quote(Decimal("26012.40"), at("2026-12-16T11:00:00")),
                            "2026-12-16T11:00:20")

    contract, picked = chosen.pick(market, ask("NIFTY", "ATM", "CE"), False, 123.0)

    assert contract.trading_symbol == "NIFTY26D2226000CE"
    ((instrument, deadline),) = quotes.asked
    assert (instrument.exchange, instrument.trading_symbol, deadline) == (NSE, "Nifty 50", 123.0)
    assert picked.underlying_price == Decimal("26012.4")


@pytest.mark.parametrize(("answer", "words"), [
    (None, "Kotak sent no price for NSE:Nifty 50"),
    (Quote(Decimal(0), at("2026-12-16T11:00:00")), "it has not traded"),
    (Quote(Decimal(26012), at("2026-12-16T10:58:59")), "more than 60 s ago while NSE is open"),
])
def test_no_usable_quote_refuses_naming_the_underlying(
        market: InstrumentIndex, answer: Quote | None, words: str) -> None:
    chosen, _ = picker(answer, "2026-12-16T11:00:00")

    with pytest.raises(InvalidSignal) as refused:
        chosen.pick(market, ask("NIFTY", "ATM", "CE"), False, 0.0)

    assert words in refused.value.details["underlying"][0]


def test_a_broker_failure_while_quoting_is_refused_without_an_order(
        market: InstrumentIndex) -> None:
    chosen, _ = picker(BrokerUnavailable("Kotak timed out"), "2026-12-16T11:00:00")

    with pytest.raises(InvalidSignal) as refused:
        chosen.pick(market, ask("NIFTY", "ATM", "CE"), False, 0.0)

    assert refused.value.code == "quote_unavailable"
    assert "nothing was sent" in refused.value.details["underlying"][0]


@pytest.mark.parametrize(("now", "updated", "amo"), [
    ("2026-12-16T11:00:00", "2026-12-16T10:59:00", False),  # exactly 60 s old
    ("2026-12-16T09:15:30", "2026-12-16T09:07:00", False),  # just opened: pre-open counts
    ("2026-12-16T16:00:00", "2026-12-16T15:29:59", False),  # closed: the last price stands
    ("2026-12-16T16:00:00", "2026-12-16T15:29:59", True),  # an AMO from the last close
    ("2026-12-16T11:00:00", "2026-12-15T15:29:59", True),  # an AMO never waits for a tick
    ("2026-12-19T10:00:00", "2026-12-18T15:29:59", False),  # a Saturday
])
def test_a_quote_is_good_while_the_market_is_live_or_outside_the_session(
        market: InstrumentIndex, now: str, updated: str, amo: bool) -> None:
    chosen, _ = picker(Quote(Decimal(NIFTY_AT), at(updated)), now)

    contract, _ = chosen.pick(market, ask("NIFTY", "ATM", "CE"), amo, 0.0)

    assert contract.trading_symbol == "NIFTY26D2226000CE"


def test_a_quote_from_before_today_is_stale_even_just_after_the_open(
        market: InstrumentIndex) -> None:
    chosen, _ = picker(Quote(Decimal(NIFTY_AT), at("2026-12-15T15:29:59")),
                       "2026-12-16T09:15:30")

    with pytest.raises(InvalidSignal):
        chosen.pick(market, ask("NIFTY", "ATM", "CE"), False, 0.0)


def test_a_quote_without_an_update_time_is_taken(market: InstrumentIndex) -> None:
    chosen, _ = picker(Quote(Decimal(NIFTY_AT)), "2026-12-16T11:00:00")

    contract, _ = chosen.pick(market, ask("NIFTY", "ATM", "CE"), False, 0.0)

    assert contract.trading_symbol == "NIFTY26D2226000CE"


def test_a_mistyped_signal_costs_no_quote(market: InstrumentIndex) -> None:
    for request in (ask("NIFTY", "OTM99", "CE"), ask("NIFTY", "ATM", "CE", "whenever"),
                    ask("SBIN", "ATM", "CE"), ask("FOOBAR", "ATM", "PE")):
        chosen, quotes = picker(Quote(Decimal(NIFTY_AT)), "2026-12-16T11:00:00")
        with pytest.raises(InvalidSignal):
            chosen.pick(market, request, False, 0.0)
        assert quotes.asked == []


def test_on_expiry_day_this_weeks_option_is_todays_until_the_day_ends() -> None:
    index = InstrumentIndex(hand_made_market(), date(2026, 12, 22))
    live = Quote(Decimal(NIFTY_AT), at("2026-12-22T09:30:00"))

    morning, _ = picker(live, "2026-12-22T09:30:00")
    assert morning.pick(index, ask("NIFTY", "ATM", "CE", "current_week"), False, 0.0)[
        0].trading_symbol == "NIFTY26D2226000CE"
    # After the close a plain signal still means today's (the trading window refuses it) ...
    evening, _ = picker(live, "2026-12-22T16:00:00")
    assert evening.pick(index, ask("NIFTY", "ATM", "CE"), False, 0.0)[
        0].trading_symbol == "NIFTY26D2226000CE"
    # ... but an after-market order reaches the exchange tomorrow, after today's expired.
    assert evening.pick(index, ask("NIFTY", "ATM", "CE", "current_week"), True, 0.0)[
        0].trading_symbol == "NIFTY26DEC26000CE"
    with pytest.raises(InvalidSignal) as refused:
        evening.pick(index, ask("NIFTY", "ATM", "CE", "22DEC26"), True, 0.0)
    assert "expires today and the exchange has closed" in refused.value.details[
        "expiry_date"][0]


# --- the sandbox's catalog -----------------------------------------------------------------

SANDBOX_DAY = date(2026, 12, 22)  # a Tuesday: NIFTY's weekly expires today


@pytest.fixture(scope="module")
def sandbox_market() -> Iterator[tuple[Catalog, InstrumentIndex]]:
    catalog = Catalog(SANDBOX_DAY)
    rows: list[Instrument] = []
    for segment in ("nse_cm", "nse_fo"):
        content = catalog.file(SEGMENT_FILES[segment])
        assert content is not None
        rows.extend(parse_scrip_csv(segment, content))
    yield catalog, InstrumentIndex(rows, SANDBOX_DAY)


def test_the_sandbox_nifty_chain_is_picked_from_a_price(
        sandbox_market: tuple[Catalog, InstrumentIndex]) -> None:
    catalog, index = sandbox_market
    chosen, quotes = picker(Quote(Decimal("26012.40"), at("2026-12-22T10:00:00")),
                            "2026-12-22T10:00:10")

    contract, picked = chosen.pick(index, ask("NIFTY", "ATM", "CE", exchange="NSE_INDEX"),
                                   False, 0.0)

    assert contract.trading_symbol == "NIFTY26D2226000CE"
    assert catalog.get("nse_fo", contract.trading_symbol) is not None
    assert (picked.quoted, picked.strike, picked.expiry) == (
        "NSE:Nifty 50", Decimal(26000), SANDBOX_DAY)
    assert str(picked.strike) == "26000"  # not the scrip master's 2.6E+4
    assert quotes.asked[0][0].token == "26000"  # the master's own index row
    _, monthly = chosen.pick(index, ask("NIFTY", "OTM1", "PE", "current_month"), False, 0.0)
    assert monthly.trading_symbol == "NIFTY26DEC25900PE"
    bank, _ = picker(Quote(Decimal("59049"), at("2026-12-22T10:00:00")), "2026-12-22T10:00:10")
    _, banknifty = bank.pick(index, ask("BANKNIFTY", "ITM1", "PE"), False, 0.0)
    assert banknifty.trading_symbol == "BANKNIFTY26DEC59100PE"


def test_a_pick_takes_well_under_a_millisecond(
        sandbox_market: tuple[Catalog, InstrumentIndex]) -> None:
    _, index = sandbox_market
    request = ask("NIFTY", "OTM2", "CE", "current_week", exchange="NSE_INDEX")
    price = Decimal("26012.40")
    choose(index, request, price, SANDBOX_DAY)  # the chain index is built on first use

    best = min(timeit.repeat(lambda: choose(index, request, price, SANDBOX_DAY),
                             number=200, repeat=3)) / 200

    assert best < 0.001


def test_the_picker_reads_the_index_quote_from_kotak(
        sandbox: Sandbox, account: SandboxAccount, server: SandboxServer,
        tmp_path: Path) -> None:
    kotak = make_kotak(sandbox, account, server, AuthFlow.TOTP)
    kotak.login()
    store = InstrumentStore(tmp_path / "scrip", kotak.clock)
    store.refresh(kotak.client)
    index = store.current()
    sandbox.set_price("NSE", "Nifty 50", Decimal("26012.40"))
    chosen = OptionPicker(kotak_quotes(kotak.client), kotak.clock, CALENDAR)

    contract, picked = chosen.pick(index, ask("NIFTY", "ATM", "CE"), False,
                                   time.monotonic() + 2)

    assert picked.underlying_price == Decimal("26012.4")
    assert picked.atm_strike == Decimal(26000)
    chain = index.option_chain(NFO, "NIFTY", "CE")
    assert chain is not None
    assert contract.expiry == chain.expiries_from(kotak.clock.now().date())[0]


def test_quote_rows_carry_their_update_time() -> None:
    row = {"exchange_token": "26000", "display_symbol": "Nifty 50", "exchange": "nse_cm",
           "ltp": "26012.4000"}
    stamps = {"1782374657": datetime.fromtimestamp(1782374657, IST),
              "1782374657123": datetime.fromtimestamp(1782374657, IST),
              "0": None, "": None, "soon": None}

    for stamp, expected in stamps.items():
        (quoted,) = wire.parse_quoted_prices([{**row, "lstup_time": stamp}])
        assert quoted.updated_at == expected
        assert quoted.price == Decimal("26012.4")
    (quoted,) = wire.parse_quoted_prices([row])
    assert quoted.updated_at is None
    assert wire.parse_last_prices([{**row, "lstup_time": "1782374657"}]) == [
        wire.LastPrice(NSE, "26000", "Nifty 50", Decimal("26012.4"))]
