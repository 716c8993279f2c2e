"""OpenAlgo's symbol format against Kotak's trading symbols, through a scrip master."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from bridge.api import symbols
from bridge.api.symbols import Contract
from bridge.domain import Exchange, Instrument, InstrumentKind
from bridge.kotak.instruments import InstrumentIndex, UnknownInstrument

DAY = date(2026, 12, 1)
MONTHLY = date(2026, 12, 29)
WEEKLY = date(2026, 12, 22)


def contract(exchange: Exchange, trading_symbol: str, symbol: str, kind: InstrumentKind,
             expiry: date | None = None, strike: str | None = None, option_type: str = "",
             lot: int = 1) -> Instrument:
    return Instrument(exchange=exchange, trading_symbol=trading_symbol, symbol=symbol,
                      token=str(abs(hash(trading_symbol)) % 100000), kind=kind, lot_size=lot,
                      tick_size=Decimal("0.05"), series="EQ" if kind is InstrumentKind.EQUITY
                      else "", expiry=expiry, strike=Decimal(strike) if strike else None,
                      option_type=option_type)


LISTED = [
    contract(Exchange.NSE, "SBIN-EQ", "SBIN", InstrumentKind.EQUITY),
    contract(Exchange.NSE, "M&M-EQ", "M&M", InstrumentKind.EQUITY),
    contract(Exchange.NSE, "Nifty 50", "NIFTY 50", InstrumentKind.INDEX),
    contract(Exchange.BSE, "SENSEX", "SENSEX", InstrumentKind.INDEX),
    contract(Exchange.NFO, "NIFTY26DECFUT", "NIFTY", InstrumentKind.FUTURE, MONTHLY, lot=65),
    contract(Exchange.NFO, "NIFTY27JANFUT", "NIFTY", InstrumentKind.FUTURE, date(2027, 1, 26),
             lot=65),
    contract(Exchange.NFO, "M&M26DECFUT", "M&M", InstrumentKind.FUTURE, MONTHLY, lot=200),
    # Kotak keeps the strike in paise and reads it back normalised: 2.6E+4, not 26000.
    contract(Exchange.NFO, "NIFTY26DEC26000CE", "NIFTY", InstrumentKind.OPTION, MONTHLY,
             "2.6E+4", "CE", 65),
    contract(Exchange.NFO, "NIFTY2612226000PE", "NIFTY", InstrumentKind.OPTION, WEEKLY,
             "26000", "PE", 65),
    contract(Exchange.NFO, "NIFTY2612226050PE", "NIFTY", InstrumentKind.OPTION, WEEKLY,
             "26050", "PE", 65),
    contract(Exchange.NFO, "NIFTY26D0126000CE", "NIFTY", InstrumentKind.OPTION,
             date(2026, 11, 24), "26000", "CE", 65),  # expired before DAY
    contract(Exchange.CDS, "USDINR26DEC83.25CE", "USDINR", InstrumentKind.OPTION,
             date(2026, 12, 29), "83.25", "CE", 1000),
]


@pytest.fixture
def index() -> InstrumentIndex:
    return InstrumentIndex(LISTED, DAY)


@pytest.mark.parametrize(("text", "expected"), [
    ("NIFTY29DEC26FUT", Contract("NIFTY", MONTHLY)),
    ("nifty29dec26fut", Contract("NIFTY", MONTHLY)),
    ("M&M29DEC26FUT", Contract("M&M", MONTHLY)),
    ("NIFTY29DEC2626000CE", Contract("NIFTY", MONTHLY, Decimal(26000), "CE")),
    ("NIFTY22DEC2626000PE", Contract("NIFTY", WEEKLY, Decimal(26000), "PE")),
    ("USDINR29DEC2683.25CE", Contract("USDINR", MONTHLY, Decimal("83.25"), "CE")),
    ("SBIN", None),
    ("NIFTY26DECFUT", None),  # Kotak's spelling: no expiry day
    ("NIFTY26DEC26000CE", None),  # Kotak's monthly: reads as a strike of 0
    ("NIFTY31FEB27FUT", None),  # no such day
    ("NIFTY29DEC26FUTX", None),
])
def test_parse_reads_openalgos_derivatives_only(text: str, expected: Contract | None) -> None:
    assert symbols.parse(text) == expected


@pytest.mark.parametrize(("name", "exchange", "trading_symbol"), [
    ("NIFTY29DEC26FUT", Exchange.NFO, "NIFTY26DECFUT"),
    ("NIFTY26JAN27FUT", Exchange.NFO, "NIFTY27JANFUT"),
    ("M&M29DEC26FUT", Exchange.NFO, "M&M26DECFUT"),
    ("NIFTY29DEC2626000CE", Exchange.NFO, "NIFTY26DEC26000CE"),
    ("NIFTY22DEC2626000PE", Exchange.NFO, "NIFTY2612226000PE"),
    ("NIFTY22DEC2626050PE", Exchange.NFO, "NIFTY2612226050PE"),
    ("USDINR29DEC2683.25CE", Exchange.CDS, "USDINR26DEC83.25CE"),
])
def test_openalgo_names_map_to_the_listed_contract_and_back(
        index: InstrumentIndex, name: str, exchange: Exchange, trading_symbol: str) -> None:
    found = symbols.derivative(index, name, exchange)

    assert found is not None and found.trading_symbol == trading_symbol
    assert symbols.openalgo_symbol(found) == name
    assert symbols.kotak_symbol(index, name, exchange.value) == trading_symbol


@pytest.mark.parametrize(("name", "exchange"), [
    ("NIFTY22DEC2626000CE", "NFO"),  # the weekly lists only PEs here
    ("NIFTY29DEC2626050CE", "NFO"),  # no such strike in the monthly
    ("NIFTY28DEC26FUT", "NFO"),  # a day off the future's expiry
    ("NIFTY29DEC26FUT", "BFO"),  # listed on NFO, not BFO
    ("NIFTY29DEC26FUT", "NSE"),  # a cash market lists no futures
])
def test_a_name_that_only_looks_right_maps_to_nothing(index: InstrumentIndex, name: str,
                                                     exchange: str) -> None:
    assert symbols.derivative(index, name, Exchange(exchange)) is None
    assert symbols.kotak_symbol(index, name, exchange) == name  # the signal says what fails


def test_every_listed_derivative_round_trips(index: InstrumentIndex) -> None:
    for item in LISTED:
        if item.kind in (InstrumentKind.FUTURE, InstrumentKind.OPTION) and \
                item.expiry is not None and item.expiry >= DAY:
            assert symbols.derivative(index, symbols.openalgo_symbol(item),
                                      item.exchange) == item


def test_shares_and_indices_keep_their_names(index: InstrumentIndex) -> None:
    by_symbol = {i.trading_symbol: i for i in LISTED}

    assert symbols.openalgo_symbol(by_symbol["SBIN-EQ"]) == "SBIN"
    assert symbols.openalgo_symbol(by_symbol["M&M-EQ"]) == "M&M"
    assert symbols.openalgo_symbol(by_symbol["Nifty 50"]) == "NIFTY"
    assert symbols.openalgo_symbol(by_symbol["SENSEX"]) == "SENSEX"
    assert symbols.openalgo_name(index, Exchange.NSE, "SBIN-EQ") == "SBIN"
    assert symbols.openalgo_name(index, Exchange.NSE, "NOTLISTED-EQ") == "NOTLISTED-EQ"
    assert symbols.openalgo_name(None, Exchange.NFO, "NIFTY26DECFUT") == "NIFTY26DECFUT"


@pytest.mark.parametrize(("symbol", "exchange", "trading_symbol"), [
    ("SBIN", "NSE", "SBIN-EQ"),
    ("NSE:SBIN", "NSE", "SBIN-EQ"),
    ("SBIN-EQ", "nse", "SBIN-EQ"),
    ("M_M", "NSE", "M&M-EQ"),
    ("NIFTY26DECFUT", "NFO", "NIFTY26DECFUT"),
    ("NIFTY29DEC26FUT", "NFO", "NIFTY26DECFUT"),
    ("NIFTY1!", "NFO", "NIFTY26DECFUT"),
    ("NIFTY29DEC2626000CE", "NFO", "NIFTY26DEC26000CE"),
    ("NIFTY", "NSE_INDEX", "Nifty 50"),
    ("Nifty 50", "NSE_INDEX", "Nifty 50"),
    ("SENSEX", "BSE_INDEX", "SENSEX"),
])
def test_find_reads_every_spelling_a_call_may_carry(index: InstrumentIndex, symbol: str,
                                                   exchange: str, trading_symbol: str) -> None:
    assert symbols.find(index, symbol, exchange).trading_symbol == trading_symbol


@pytest.mark.parametrize(("symbol", "exchange", "hint"), [
    ("NOSUCH", "NSE", "not in today's scrip master"),
    ("SENSEX", "NSE_INDEX", "no index"),
    ("SBIN", "NASDAQ", "not an exchange"),
])
def test_find_names_what_is_wrong(index: InstrumentIndex, symbol: str, exchange: str,
                                  hint: str) -> None:
    with pytest.raises(UnknownInstrument, match=hint):
        symbols.find(index, symbol, exchange)


def test_symbols_that_are_not_openalgos_derivatives_pass_through(index: InstrumentIndex) -> None:
    assert symbols.kotak_symbol(index, "SBIN", "NSE") == "SBIN"
    assert symbols.kotak_symbol(index, "NSE:SBIN", "NSE") == "NSE:SBIN"
    assert symbols.kotak_symbol(index, "NIFTY26DEC26000CE", "NFO") == "NIFTY26DEC26000CE"
    assert symbols.kotak_symbol(index, "NIFTY", "NSE_INDEX") == "NIFTY"
    assert symbols.kotak_symbol(None, "NIFTY29DEC26FUT", "NFO") == "NIFTY29DEC26FUT"


def test_expiries_lists_unexpired_dates_nearest_first(index: InstrumentIndex) -> None:
    assert symbols.expiries(index, "nifty", Exchange.NFO, options=True) == [WEEKLY, MONTHLY]
    assert symbols.expiries(index, "NIFTY", Exchange.NFO, options=False) == [
        MONTHLY, date(2027, 1, 26)]
    assert symbols.expiries(index, "SBIN", Exchange.NFO, options=True) == []
    assert [symbols.listed_expiry_text(d) for d in (WEEKLY, date(2027, 1, 5))] == [
        "22-DEC-26", "05-JAN-27"]


@pytest.mark.parametrize(("exchange", "derivatives"), [
    ("NSE_INDEX", Exchange.NFO), ("nse", Exchange.NFO), ("NFO", Exchange.NFO),
    ("BSE_INDEX", Exchange.BFO), ("BSE", Exchange.BFO), ("MCX", Exchange.MCX),
    ("CDS", Exchange.CDS), ("NASDAQ", None),
])
def test_where_an_underlyings_derivatives_trade(exchange: str,
                                                derivatives: Exchange | None) -> None:
    assert symbols.derivatives_exchange(exchange) is derivatives
