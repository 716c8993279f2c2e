"""Kotak Neo scrip-master ("instrument") CSV files, generated for the local Kotak simulator.

The files imitate what Kotak publishes daily (kotak-neo-api.md section 7), because the bridge's
parser must read the sandbox's files and the real ones alike:

* The header is Kotak's 79 names verbatim, trailing spaces and the ``dStrikePrice;`` semicolon
  included, since a parser that forgets to strip them must fail here rather than in production.
* Prices are written in **paise** (tick 5 = Rs 0.05, strike x 100, circuit bands x 100), numbers
  in C ``%g`` style (``2.1e+06`` for a 21000 strike), as Kotak's exporter does. Where ``%g``
  would lose digits, more are written: the sandbox must never hand out a value it cannot parse
  back exactly.
* Expiries are integer seconds: ``nse_fo`` and ``cde_fo`` count from 1980-01-01 IST (the NSE
  epoch, ``unix = value + NSE_EPOCH_OFFSET``); ``bse_fo`` and ``mcx_fo`` use plain Unix seconds.
  Times of day follow the samples (14:30 IST; 23:30 IST for MCX) but carry no meaning.
* Trading symbols follow Kotak: ``SBIN-EQ`` on NSE cash, the bare symbol on BSE cash,
  ``NIFTY26DECFUT`` for futures, ``NIFTY26DEC26000CE`` for monthly options and
  ``NIFTY2612226000PE`` (year, month code 1-9/O/N/D, day) for weekly options.
* ``lFreezeQty`` is written the way the sample writes NIFTY's: exchange freeze limit + 1 (1801),
  so an order is frozen when its quantity reaches the value; 0 means no limit.

The real files have no last-price column: ``ref_price`` only shapes the circuit band (and is
echoed in ``pScripBasePrice``); the simulator takes it from :class:`SandboxScrip` directly.
Standard library only, so the simulator can run without the bridge installed.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache
from itertools import count, islice
from zoneinfo import ZoneInfo

SEGMENTS: tuple[str, ...] = ("nse_cm", "bse_cm", "nse_fo", "bse_fo", "cde_fo", "mcx_fo")

COLUMNS: tuple[str, ...] = (
    "pSymbol", "pGroup", "pExchSeg", "pInstType", "pSymbolName", "pTrdSymbol", "pOptionType",
    "pScripRefKey", "pISIN", "pAssetCode", "pSubGroup", "pCombinedSymbol", "pDesc", "pAmcCode",
    "pContractId", "dTickSize ", "lLotSize", "lExpiryDate ", "lMultiplier ", "lPrecision",
    "dStrikePrice;", "pExchange", "pInstName", "pExpiryDate", "pIssueDate", "pMaturityDate",
    "pListingDate", "pNoDelStartDate", "pNoDelEndDate", "pBookClsStartDate", "pBookClsEndDate",
    "pRecordDate", "pCreditRating", "pReAdminDate", "pExpulsionDate", "pLocalUpdateTime",
    "pDeliveryUnits", "pPriceUnits", "pLastTradingDate", "pTenderPeridEndDate",
    "pTenderPeridStartDate", "pSellVarMargin", "pBuyVarMargin", "pInstrumentInfo",
    "pRemarksText", "pSegment", "pNav", "pNavDate", "pMfAmt", "pSipSecurity", "pFaceValue",
    "pTrdUnits", "pExerciseStartDate", "pExerciseEndDate", "pElmMargin", "pVarMargin",
    "pTotProposedLimitValue", "pScripBasePrice", "pSettlementType", "pCurrectionTime",
    "iPermittedToTrade", "iBoardLotQty ", "iMaxOrderSize ", "iLotSize", "dOpenInterest ",
    "dHighPriceRange ", "dLowPriceRange ", "dPriceNum   ", "dGenDen", "dGenNum",
    "dPriceQuatation ", "dIssuerate ", "dPriceDen", "dWarningQty ", "dIssueCapital ",
    "dExposureMargin ", "dMinRedemptionQty ", "lFreezeQty", "CASEligible",
)  # fmt: skip

SEGMENT_FILES: dict[str, str] = {
    "nse_cm": "transformed-v1/nse_cm-v1.csv",
    "bse_cm": "transformed-v1/bse_cm-v1.csv",
    "nse_fo": "transformed/nse_fo.csv",
    "bse_fo": "transformed/bse_fo.csv",
    "cde_fo": "transformed/cde_fo.csv",
    "mcx_fo": "transformed/mcx_fo.csv",
}

NSE_EPOCH_OFFSET: int = 315513000

_IST = ZoneInfo("Asia/Kolkata")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKLY_MONTH_CODES = "123456789OND"
_TUESDAY, _THURSDAY = 1, 3


@dataclass(frozen=True, slots=True)
class SandboxScrip:
    """One contract of the sandbox: what a scrip-master row says, plus a price to trade at."""

    segment: str  # one of SEGMENTS
    token: str  # pSymbol, the exchange token, digits
    trading_symbol: str  # pTrdSymbol
    symbol_name: str  # pSymbolName, the underlying
    group: str  # pGroup: series on cash ("" on index rows), "XX" on derivatives
    inst_type: str  # pInstType/pInstName, "" on cash
    option_type: str  # "CE"/"PE", "XX" for futures, "" for cash
    expiry: date | None  # None for cash
    strike: Decimal | None  # rupees, None for cash and futures
    lot_size: int
    tick_size: Decimal  # rupees
    freeze_qty: int  # lFreezeQty as Kotak writes it: exchange limit + 1; 0 = none
    ref_price: Decimal  # rupees, on the tick grid; the simulator fills market orders here
    isin: str  # "" for derivatives and indices
    description: str  # pDesc
    exchange: str  # pExchange: "NSE", "BSE", "MCX"
    precision: int  # lPrecision


def dated_folder(today: date) -> str:
    """The day's folder in the file list's URLs, e.g. ``2026-07-14``."""
    return today.isoformat()


# ---------------------------------------------------------------------------------------------
# Calendar: exchange holidays are ignored; every rule lands on a weekday.


def _last_weekday_of_month(year: int, month: int, weekday: int) -> date:
    last = _month_end(year, month)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _month_end(year: int, month: int) -> date:
    first_of_next = date(year + month // 12, month % 12 + 1, 1)
    return first_of_next - timedelta(days=1)


def _back_to_weekday(day: date) -> date:
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def _minus_weekdays(day: date, n: int) -> date:
    for _ in range(n):
        day = _back_to_weekday(day - timedelta(days=1))
    return day


def _monthly(today: date, n: int, rule: Callable[[int, int], date | None]) -> list[date]:
    """The next ``n`` expiries on or after ``today``, one per month where ``rule`` gives one."""
    found: list[date] = []
    year, month = today.year, today.month
    while len(found) < n:
        expiry = rule(year, month)
        if expiry is not None and expiry >= today:
            found.append(expiry)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def _nse_monthly(year: int, month: int) -> date:
    return _last_weekday_of_month(year, month, _TUESDAY)


def _bse_monthly(year: int, month: int) -> date:
    return _last_weekday_of_month(year, month, _THURSDAY)


def _currency_monthly(year: int, month: int) -> date:
    # NSE currency futures stop two working days before the month's last working day.
    return _minus_weekdays(_back_to_weekday(_month_end(year, month)), 2)


def _crude_monthly(year: int, month: int) -> date:
    return _back_to_weekday(date(year, month, 19))


def _gold_bimonthly(year: int, month: int) -> date | None:
    return _back_to_weekday(date(year, month, 5)) if month % 2 == 0 else None


def _weekly(today: date, n: int, weekday: int) -> list[date]:
    first = today + timedelta(days=(weekday - today.weekday()) % 7)
    return [first + timedelta(weeks=i) for i in range(n)]


# ---------------------------------------------------------------------------------------------
# Trading symbols, Kotak style.


@lru_cache(maxsize=1024)
def _symbol_date(expiry: date, weekly: bool) -> str:
    """``26DEC`` (monthly) or ``26D22`` (weekly: month code 1-9/O/N/D, then the day)."""
    if weekly:
        return f"{expiry.year % 100:02d}{_WEEKLY_MONTH_CODES[expiry.month - 1]}{expiry.day:02d}"
    return f"{expiry.year % 100:02d}{_MONTHS[expiry.month - 1]}"


@lru_cache(maxsize=1024)
def _ref_key_date(expiry: date) -> str:
    return f"{expiry.day:02d}{_MONTHS[expiry.month - 1]}{expiry.year % 100:02d}"


def _future_symbol(underlying: str, expiry: date) -> str:
    return f"{underlying}{_symbol_date(expiry, False)}FUT"


def _option_symbol(underlying: str, expiry: date, strike: str, kind: str, weekly: bool) -> str:
    return f"{underlying}{_symbol_date(expiry, weekly)}{strike}{kind}"


def _ref_key(scrip: SandboxScrip) -> str:
    if scrip.expiry is None:
        return scrip.symbol_name
    when = _ref_key_date(scrip.expiry)
    if scrip.strike is None:
        return f"{scrip.symbol_name}{when}FUT"
    return f"{scrip.symbol_name}{when}{scrip.strike:.2f}{scrip.option_type}"


# ---------------------------------------------------------------------------------------------
# Prices.

_TICK_PAISA = Decimal("0.01")
_TICK_5_PAISE = Decimal("0.05")
_TICK_RUPEE = Decimal("1")
_TICK_CURRENCY = Decimal("0.0025")


def _on_grid(price: float, tick: Decimal) -> Decimal:
    """``price`` rounded to the tick grid, never below one tick."""
    return tick * max(1, round(price / float(tick)))


def _equity_tick(price: float) -> Decimal:
    # NSE and BSE quote cheap shares in paise and the rest in 5-paise steps.
    return _TICK_PAISA if price < 250 else _TICK_5_PAISE


def _future_price(spot: float, today: date, expiry: date) -> float:
    return spot * (1 + 0.065 * (expiry - today).days / 365)


def _option_price(spot: float, strike: float, kind: str, today: date, expiry: date) -> float:
    """A premium that looks right: intrinsic value plus a bell of time value around the money."""
    intrinsic = max(0.0, spot - strike) if kind == "CE" else max(0.0, strike - spot)
    spread = 0.15 * math.sqrt(max((expiry - today).days, 1) / 365)
    distance = (strike - spot) / (spot * spread)
    return intrinsic + 0.4 * spot * spread * math.exp(-0.5 * distance * distance)


# ---------------------------------------------------------------------------------------------
# The realistic catalog.


@dataclass(frozen=True, slots=True)
class _Equity:
    symbol: str
    token: str
    isin: str
    name: str
    price: str
    series: str = "EQ"


# Tokens the doc gives are real (RELIANCE..IDEA); the others are illustrative.
_NSE_EQUITIES = (
    _Equity("RELIANCE", "2885", "INE002A01018", "RELIANCE INDUSTRIES LTD", "1450"),
    _Equity("INFY", "1594", "INE009A01021", "INFOSYS LIMITED", "1550"),
    _Equity("SBIN", "3045", "INE062A01020", "STATE BANK OF INDIA", "850"),
    _Equity("TCS", "11536", "INE467B01029", "TATA CONSULTANCY SERV LT", "3100"),
    _Equity("YESBANK", "11915", "INE528G01035", "YES BANK LIMITED", "21.5"),
    _Equity("HDFCBANK", "1333", "INE040A01034", "HDFC BANK LTD", "980"),
    _Equity("IDEA", "14366", "INE669E01016", "VODAFONE IDEA LIMITED", "8.45"),
    _Equity("ICICIBANK", "4963", "INE090A01021", "ICICI BANK LTD.", "1400"),
    _Equity("ITC", "1660", "INE154A01025", "ITC LTD", "410"),
    _Equity("LT", "11483", "INE018A01030", "LARSEN & TOUBRO LTD.", "3900"),
    _Equity("AXISBANK", "5900", "INE238A01034", "AXIS BANK LIMITED", "1200"),
    _Equity("KOTAKBANK", "1922", "INE237A01028", "KOTAK MAHINDRA BANK LTD", "2100"),
    _Equity("TATAMOTORS", "3456", "INE155A01022", "TATA MOTORS LIMITED", "680"),
    _Equity("BAJAJ-AUTO", "16669", "INE917I01010", "BAJAJ AUTO LIMITED", "8900"),
    _Equity("M&M", "2031", "INE101A01026", "MAHINDRA & MAHINDRA LTD", "3500"),
    _Equity("GVT&D", "522", "INE200A01026", "GE VERNOVA T&D INDIA LTD", "2900"),
    # One symbol listed in two series: a lookup by symbol must choose EQ.
    _Equity("RPOWER", "15259", "INE614G01033", "RELIANCE POWER LTD.", "42.5"),
    _Equity("RPOWER", "20363", "INE614G01033", "RELIANCE POWER LTD.", "42.5", "BE"),
    # Trade-to-trade only.
    _Equity("RCOM", "13187", "INE330H01018", "RELIANCE COMMUNICATIONS LTD", "1.6", "BE"),
)

_BSE_EQUITIES = (
    _Equity("RELIANCE", "500325", "INE002A01018", "RELIANCE INDUSTRIES LTD.", "1450", "A"),
    _Equity("SBIN", "500112", "INE062A01020", "STATE BANK OF INDIA", "850", "A"),
    _Equity("INFY", "500209", "INE009A01021", "INFOSYS LTD.", "1550", "A"),
    _Equity("TCS", "532540", "INE467B01029", "TATA CONSULTANCY SERVICES LTD.", "3100", "A"),
    _Equity("HDFCBANK", "500180", "INE040A01034", "HDFC BANK LTD.", "980", "A"),
    _Equity("ICICIBANK", "532174", "INE090A01021", "ICICI BANK LTD.", "1400", "A"),
    _Equity("ITC", "500875", "INE154A01025", "ITC LTD.", "410", "A"),
    _Equity("M&M", "500520", "INE101A01026", "MAHINDRA & MAHINDRA LTD.", "3500", "A"),
    _Equity("BAJAJ-AUTO", "532977", "INE917I01010", "BAJAJ AUTO LTD.", "8900", "A"),
)


@dataclass(frozen=True, slots=True)
class _Index:
    symbol_name: str
    trading_symbol: str
    token: str
    price: str


_NSE_INDICES = (
    _Index("NIFTY 50", "Nifty 50", "26000", "26000"),
    _Index("NIFTY BANK", "Nifty Bank", "26009", "59000"),
)
_BSE_INDICES = (_Index("SENSEX", "SENSEX", "1", "85000"),)

# pAssetCode of a derivative: the token of its underlying (index tokens as in the sample's 26000).
_ASSET_CODES: dict[tuple[str, str], str] = {
    ("nse_fo", "NIFTY"): "26000",
    ("nse_fo", "BANKNIFTY"): "26009",
    ("bse_fo", "SENSEX"): "1",
    ("cde_fo", "USDINR"): "1",
    ("mcx_fo", "CRUDEOIL"): "294",
    ("mcx_fo", "CRUDEOILM"): "294",
    ("mcx_fo", "GOLD"): "114",
    **{("nse_fo", e.symbol): e.token for e in _NSE_EQUITIES if e.series == "EQ"},
}

# Synthetic underlyings of bulk_catalog: the name encodes the cash token.
_BULK_NSE_CASH_BASE = 100000
_BULK_BSE_CASH_BASE = 700000
_BULK_OTHER_ASSET_BASE = 900000


@dataclass(frozen=True, slots=True)
class _Underlying:
    name: str
    spot: float
    lot: int
    freeze: int
    tick: Decimal
    inst: str  # "IDX", "STK", "COM", "CUR": the suffix of pInstType


class _Tokens:
    def __init__(self, start: int) -> None:
        self._next = count(start)

    def take(self) -> str:
        return str(next(self._next))


def _cash(equity: _Equity, segment: str, exchange: str, trading_symbol: str) -> SandboxScrip:
    price = float(equity.price)
    tick = _equity_tick(price)
    ref = _on_grid(price, tick)
    return SandboxScrip(
        segment=segment,
        token=equity.token,
        trading_symbol=trading_symbol,
        symbol_name=equity.symbol,
        group=equity.series,
        inst_type="",
        option_type="",
        expiry=None,
        strike=None,
        lot_size=1,
        tick_size=tick,
        # Exchanges freeze cash orders worth more than about Rs 10 crore.
        freeze_qty=int(100_000_000 / price) + 1,
        ref_price=ref,
        isin=equity.isin,
        description=equity.name,
        exchange=exchange,
        precision=2,
    )


def _index(index: _Index, segment: str, exchange: str) -> SandboxScrip:
    return SandboxScrip(
        segment=segment,
        token=index.token,
        trading_symbol=index.trading_symbol,
        symbol_name=index.symbol_name,
        group="",
        inst_type="",
        option_type="",
        expiry=None,
        strike=None,
        lot_size=1,
        tick_size=_TICK_5_PAISE,
        freeze_qty=0,
        ref_price=_on_grid(float(index.price), _TICK_5_PAISE),
        isin="",
        description=f"{index.trading_symbol} Index",
        exchange=exchange,
        precision=2,
    )


def _future(
    segment: str, exchange: str, token: str, und: _Underlying, today: date, expiry: date
) -> SandboxScrip:
    return SandboxScrip(
        segment=segment,
        token=token,
        trading_symbol=_future_symbol(und.name, expiry),
        symbol_name=und.name,
        group="XX",
        inst_type=f"FUT{und.inst}",
        option_type="XX",
        expiry=expiry,
        strike=None,
        lot_size=und.lot,
        tick_size=und.tick,
        freeze_qty=und.freeze,
        ref_price=_on_grid(_future_price(und.spot, today, expiry), und.tick),
        isin="",
        description="",
        exchange=exchange,
        precision=4 if segment == "cde_fo" else 2,
    )


def _option(
    segment: str,
    exchange: str,
    token: str,
    und: _Underlying,
    today: date,
    expiry: date,
    strike: int,
    kind: str,
    weekly: bool,
) -> SandboxScrip:
    premium = _option_price(und.spot, strike, kind, today, expiry)
    strike_decimal = Decimal(strike)
    # MCX options are on futures (OPTFUT); the rest are OPTIDX/OPTSTK/OPTCUR.
    inst = "OPTFUT" if und.inst == "COM" else f"OPT{und.inst}"
    return SandboxScrip(
        segment=segment,
        token=token,
        trading_symbol=_option_symbol(und.name, expiry, str(strike), kind, weekly),
        symbol_name=und.name,
        group="XX",
        inst_type=inst,
        option_type=kind,
        expiry=expiry,
        strike=strike_decimal,
        lot_size=und.lot,
        tick_size=und.tick,
        freeze_qty=und.freeze,
        ref_price=_on_grid(premium, und.tick),
        isin="",
        description="",
        exchange=exchange,
        precision=4 if segment == "cde_fo" else 2,
    )


def _strikes(spot: float, step: int, each_side: int) -> list[int]:
    centre = round(spot / step) * step
    return [centre + step * i for i in range(-each_side, each_side + 1)]


def _option_chain(
    segment: str,
    exchange: str,
    tokens: _Tokens,
    und: _Underlying,
    today: date,
    expiries: Iterable[date],
    strikes: list[int],
    monthly: Collection[date],
) -> Iterator[SandboxScrip]:
    """CE and PE at every strike; expiries not in ``monthly`` get weekly trading symbols."""
    for expiry in expiries:
        weekly = expiry not in monthly
        for strike in strikes:
            for kind in ("CE", "PE"):
                token = tokens.take()
                yield _option(segment, exchange, token, und, today, expiry, strike, kind, weekly)


_NIFTY = _Underlying("NIFTY", 26000, 65, 1801, _TICK_5_PAISE, "IDX")
_BANKNIFTY = _Underlying("BANKNIFTY", 59000, 30, 901, _TICK_5_PAISE, "IDX")
_SENSEX = _Underlying("SENSEX", 85000, 20, 1001, _TICK_5_PAISE, "IDX")
_STOCK_FUTURES = (
    _Underlying("RELIANCE", 1450, 500, 10001, _TICK_5_PAISE, "STK"),
    _Underlying("M&M", 3500, 200, 4001, _TICK_5_PAISE, "STK"),
    _Underlying("BAJAJ-AUTO", 8900, 75, 1501, _TICK_5_PAISE, "STK"),
)
_USDINR = _Underlying("USDINR", 90.125, 1000, 10001, _TICK_CURRENCY, "CUR")
_CRUDEOIL = _Underlying("CRUDEOIL", 5500, 100, 10001, _TICK_RUPEE, "COM")
_CRUDEOILM = _Underlying("CRUDEOILM", 5500, 10, 1001, _TICK_RUPEE, "COM")
_GOLD = _Underlying("GOLD", 128000, 100, 1001, _TICK_RUPEE, "COM")


def build_catalog(today: date) -> list[SandboxScrip]:
    """A small, realistic, deterministic instrument set; every contract is live on ``today``."""
    scrips: list[SandboxScrip] = []

    for equity in _NSE_EQUITIES:
        scrips.append(_cash(equity, "nse_cm", "NSE", f"{equity.symbol}-{equity.series}"))
    scrips.extend(_index(index, "nse_cm", "NSE") for index in _NSE_INDICES)
    for equity in _BSE_EQUITIES:
        scrips.append(_cash(equity, "bse_cm", "BSE", equity.symbol))
    scrips.extend(_index(index, "bse_cm", "BSE") for index in _BSE_INDICES)

    nse_fo = _Tokens(35001)
    months = _monthly(today, 3, _nse_monthly)
    for und in (_NIFTY, _BANKNIFTY, *_STOCK_FUTURES):
        scrips.extend(_future("nse_fo", "NSE", nse_fo.take(), und, today, m) for m in months)
    nifty_expiries = sorted({*_weekly(today, 2, _TUESDAY), months[0]})
    for expiry in nifty_expiries:
        # Monthly chains are listed wider and coarser than the weeklies.
        step, each_side = (100, 15) if expiry in months else (50, 10)
        strikes = _strikes(_NIFTY.spot, step, each_side)
        scrips.extend(
            _option_chain("nse_fo", "NSE", nse_fo, _NIFTY, today, [expiry], strikes, months)
        )
    strikes = _strikes(_BANKNIFTY.spot, 100, 10)
    scrips.extend(
        _option_chain("nse_fo", "NSE", nse_fo, _BANKNIFTY, today, months[:1], strikes, months)
    )
    reliance = _STOCK_FUTURES[0]
    strikes = _strikes(reliance.spot, 20, 3)
    scrips.extend(
        _option_chain("nse_fo", "NSE", nse_fo, reliance, today, months[:1], strikes, months)
    )

    bse_fo = _Tokens(1100001)
    scrips.extend(
        _future("bse_fo", "BSE", bse_fo.take(), _SENSEX, today, expiry)
        for expiry in _monthly(today, 2, _bse_monthly)
    )

    cde_fo = _Tokens(1001)
    scrips.extend(
        _future("cde_fo", "NSE", cde_fo.take(), _USDINR, today, expiry)
        for expiry in _monthly(today, 2, _currency_monthly)
    )

    mcx_fo = _Tokens(430001)
    for und, rule in (
        (_CRUDEOIL, _crude_monthly),
        (_CRUDEOILM, _crude_monthly),
        (_GOLD, _gold_bimonthly),
    ):
        scrips.extend(
            _future("mcx_fo", "MCX", mcx_fo.take(), und, today, expiry)
            for expiry in _monthly(today, 3, rule)
        )
    return scrips


# ---------------------------------------------------------------------------------------------
# The bulk catalog, for benchmarks: synthetic names, real formats, real proportions.

_BULK_SHARES = (
    ("nse_cm", 0.15),
    ("bse_cm", 0.15),
    ("bse_fo", 0.05),
    ("cde_fo", 0.02),
    ("mcx_fo", 0.08),
)  # nse_fo takes the rest, about 55%


def _bulk_price(i: int) -> float:
    return 5 + (i * 7919) % 4000 + (i % 20) * 0.05


def _bulk_nse_cash(today: date) -> Iterator[SandboxScrip]:
    for i in count(1):
        series = "BE" if i % 10 == 0 else "EQ"
        equity = _Equity(
            f"SYM{i:05d}",
            str(_BULK_NSE_CASH_BASE + i),
            f"INE{i:06d}01{i % 10}",
            f"SYNTHETIC COMPANY {i} LTD",
            str(_bulk_price(i)),
            series,
        )
        yield _cash(equity, "nse_cm", "NSE", f"{equity.symbol}-{series}")


def _bulk_bse_cash(today: date) -> Iterator[SandboxScrip]:
    for i in count(1):
        equity = _Equity(
            f"SYM{i:05d}",
            str(_BULK_BSE_CASH_BASE + i),
            f"INE{i:06d}01{i % 10}",
            f"SYNTHETIC COMPANY {i} LTD.",
            str(_bulk_price(i)),
            "A" if i % 3 else "B",
        )
        yield _cash(equity, "bse_cm", "BSE", equity.symbol)


@dataclass(frozen=True, slots=True)
class _BulkFamily:
    segment: str
    exchange: str
    first_token: int
    prefix: str
    lot: int
    freeze: int
    tick: Decimal
    inst: str

    def underlying(self, i: int) -> _Underlying:
        if self.inst == "CUR":
            spot = 50.0 + i % 100
        elif self.inst == "COM":
            spot = 1000 + _bulk_price(i) * 10
        else:
            spot = 100 + _bulk_price(i)
        return _Underlying(
            f"{self.prefix}{i:05d}", spot, self.lot, self.freeze, self.tick, self.inst
        )

    def strike_step(self, spot: float) -> int:
        if self.inst == "CUR":
            return 1
        if self.inst == "COM":
            return 50 if spot < 20000 else 100
        return 1 if spot < 100 else 10 if spot < 1000 else 50


def _bulk_derivatives(
    family: _BulkFamily, today: date, futures: list[date], options: list[date], monthly: list[date]
) -> Iterator[SandboxScrip]:
    """Per synthetic underlying: its futures, then 19 strikes x CE/PE on each option expiry."""
    tokens = _Tokens(family.first_token)
    segment, exchange = family.segment, family.exchange
    for i in count(1):
        und = family.underlying(i)
        for expiry in futures:
            yield _future(segment, exchange, tokens.take(), und, today, expiry)
        strikes = _strikes(und.spot, family.strike_step(und.spot), 9)
        yield from _option_chain(segment, exchange, tokens, und, today, options, strikes, monthly)


def _bulk_nse_fo(today: date) -> Iterator[SandboxScrip]:
    family = _BulkFamily("nse_fo", "NSE", 35001, "SYM", 250, 5001, _TICK_5_PAISE, "STK")
    months = _monthly(today, 3, _nse_monthly)
    weeklies = sorted({*_weekly(today, 2, _TUESDAY), months[0]})
    return _bulk_derivatives(family, today, months, weeklies, months)


def _bulk_bse_fo(today: date) -> Iterator[SandboxScrip]:
    family = _BulkFamily("bse_fo", "BSE", 1100001, "SYM", 250, 5001, _TICK_5_PAISE, "STK")
    months = _monthly(today, 3, _bse_monthly)
    return _bulk_derivatives(family, today, months, months[:2], months)


def _bulk_cde_fo(today: date) -> Iterator[SandboxScrip]:
    family = _BulkFamily("cde_fo", "NSE", 1001, "CUR", 1000, 10001, _TICK_CURRENCY, "CUR")
    months = _monthly(today, 12, _currency_monthly)
    return _bulk_derivatives(family, today, months, months[:2], months)


def _bulk_mcx_fo(today: date) -> Iterator[SandboxScrip]:
    family = _BulkFamily("mcx_fo", "MCX", 430001, "COM", 100, 10001, _TICK_RUPEE, "COM")
    months = _monthly(today, 6, _crude_monthly)
    return _bulk_derivatives(family, today, months, months[:2], months)


_BULK_GENERATORS: dict[str, Callable[[date], Iterator[SandboxScrip]]] = {
    "nse_cm": _bulk_nse_cash,
    "bse_cm": _bulk_bse_cash,
    "nse_fo": _bulk_nse_fo,
    "bse_fo": _bulk_bse_fo,
    "cde_fo": _bulk_cde_fo,
    "mcx_fo": _bulk_mcx_fo,
}


def bulk_catalog(today: date, rows: int) -> list[SandboxScrip]:
    """``rows`` synthetic scrips across all segments, in roughly the real files' proportions."""
    if rows < 0:
        raise ValueError("rows must not be negative")
    counts = {segment: int(rows * share) for segment, share in _BULK_SHARES}
    counts["nse_fo"] = rows - sum(counts.values())
    scrips: list[SandboxScrip] = []
    for segment in SEGMENTS:
        scrips.extend(islice(_BULK_GENERATORS[segment](today), counts[segment]))
    return scrips


# ---------------------------------------------------------------------------------------------
# Rendering.

_INDEX = {name.rstrip(" ;"): i for i, name in enumerate(COLUMNS)}

_EPOCH_SHIFT = {"nse_fo": NSE_EPOCH_OFFSET, "cde_fo": NSE_EPOCH_OFFSET, "bse_fo": 0, "mcx_fo": 0}
_EXPIRY_TIME = {
    "nse_fo": time(14, 30),
    "cde_fo": time(14, 30),
    "bse_fo": time(14, 30),
    "mcx_fo": time(23, 30),
}
_SEGMENT_NAMES = {"nse_fo": "FO", "bse_fo": "FO", "cde_fo": "CD", "mcx_fo": "COMM"}
_BAND_PERCENT = {"nse_fo": 10, "bse_fo": 10, "cde_fo": 3, "mcx_fo": 6}

# Kotak's 2023 nse_cm sample row: listing dates and correction time, NSE epoch.
_CASH_ISSUE_DATE = "467424000"
_CASH_LISTING_DATE = "502070400"


def _g(value: float) -> str:
    """C's ``%g`` as Kotak writes numbers, with more digits only where six would lose some."""
    text = f"{value:g}"
    precision = 6
    while float(text) != value and precision < 17:
        precision += 1
        text = f"{value:.{precision}g}"
    return text


@lru_cache(maxsize=65536)
def _paise(rupees: Decimal) -> str:
    return _g(float(rupees * 100))


def _template(values: dict[str, str]) -> list[str]:
    row = [""] * len(COLUMNS)
    for name, value in values.items():
        row[_INDEX[name]] = value
    return row


_COMMON = {
    "lMultiplier": "-1",
    "pNoDelStartDate": "0",
    "pNoDelEndDate": "0",
    "pBookClsStartDate": "0",
    "pBookClsEndDate": "0",
    "pRecordDate": "0",
    "pReAdminDate": "0",
    "pExpulsionDate": "0",
    "iBoardLotQty": "1",
    "dOpenInterest": "0",
    "dPriceNum": "1",
    "dGenDen": "1",
    "dGenNum": "1",
    "dPriceQuatation": "0",
    "dIssuerate": "0",
    "dPriceDen": "1",
    "dWarningQty": "0",
    "dMinRedemptionQty": "0",
}
_CASH_TEMPLATE = _template(
    {
        **_COMMON,
        "lExpiryDate": "-1",
        "dStrikePrice": "-1",
        "pIssueDate": _CASH_ISSUE_DATE,
        "pListingDate": _CASH_LISTING_DATE,
        "pSegment": "CASH",
        "pSettlementType": "T+1",
        "pCurrectionTime": str(NSE_EPOCH_OFFSET),
        "dIssueCapital": "0",
        "dExposureMargin": "0",
    }
)
_DERIVATIVE_TEMPLATE = _template(
    {
        **_COMMON,
        "pGroup": "XX",
        "iPermittedToTrade": "1",
        "dIssueCapital": "1e+12",
        "dExposureMargin": "1",
        "CASEligible": "false",
    }
)


@lru_cache(maxsize=4096)
def _seconds(segment: str, day: date, at: time) -> str:
    unix = int(datetime.combine(day, at, tzinfo=_IST).timestamp())
    return str(unix - _EPOCH_SHIFT[segment])


def _band(scrip: SandboxScrip) -> tuple[Decimal, Decimal]:
    """Circuit limits (low, high) in rupees; an option's band is lopsided: it floors at a tick."""
    tick, ref = scrip.tick_size, scrip.ref_price
    if scrip.strike is not None:
        return tick, _round(ref * 3 + tick * 200, tick, ROUND_FLOOR)
    if scrip.expiry is not None:
        percent = _BAND_PERCENT[scrip.segment]
    else:
        percent = 5 if scrip.group in ("BE", "B") else 10
    high = _round(ref * (100 + percent) / 100, tick, ROUND_FLOOR)
    low = max(tick, _round(ref * (100 - percent) / 100, tick, ROUND_CEILING))
    return low, high


def _round(price: Decimal, tick: Decimal, rounding: str) -> Decimal:
    return (price / tick).to_integral_value(rounding) * tick


def _asset_code(scrip: SandboxScrip) -> str:
    known = _ASSET_CODES.get((scrip.segment, scrip.symbol_name))
    if known is not None:
        return known
    prefix, digits = scrip.symbol_name[:3], scrip.symbol_name[3:]
    if not digits.isdigit():
        return ""
    if prefix == "SYM":
        base = _BULK_BSE_CASH_BASE if scrip.segment == "bse_fo" else _BULK_NSE_CASH_BASE
        return str(base + int(digits))
    return str(_BULK_OTHER_ASSET_BASE + int(digits))


def _cash_row(scrip: SandboxScrip) -> list[str]:
    row = _CASH_TEMPLATE.copy()
    low, high = _band(scrip)
    tradable = scrip.isin != ""
    row[_INDEX["pSymbol"]] = scrip.token
    row[_INDEX["pGroup"]] = scrip.group
    row[_INDEX["pExchSeg"]] = scrip.segment
    row[_INDEX["pSymbolName"]] = scrip.symbol_name
    row[_INDEX["pTrdSymbol"]] = scrip.trading_symbol
    row[_INDEX["pScripRefKey"]] = scrip.symbol_name
    row[_INDEX["pISIN"]] = scrip.isin
    row[_INDEX["pDesc"]] = scrip.description
    row[_INDEX["dTickSize"]] = _paise(scrip.tick_size)
    row[_INDEX["lLotSize"]] = row[_INDEX["iLotSize"]] = str(scrip.lot_size)
    row[_INDEX["lPrecision"]] = str(scrip.precision)
    row[_INDEX["pExchange"]] = scrip.exchange
    row[_INDEX["pCreditRating"]] = f"{low:.{scrip.precision}f}-{high:.{scrip.precision}f}"
    row[_INDEX["pScripBasePrice"]] = f"{scrip.ref_price:.4f}"
    row[_INDEX["iPermittedToTrade"]] = "1" if tradable else "0"
    row[_INDEX["iMaxOrderSize"]] = row[_INDEX["lFreezeQty"]] = str(scrip.freeze_qty)
    row[_INDEX["dHighPriceRange"]] = _paise(high)
    row[_INDEX["dLowPriceRange"]] = _paise(low)
    row[_INDEX["CASEligible"]] = "true" if tradable and scrip.group in ("EQ", "A") else "false"
    return row


def _derivative_row(scrip: SandboxScrip, expiry: date) -> list[str]:
    row = _DERIVATIVE_TEMPLATE.copy()
    segment = scrip.segment
    low, high = _band(scrip)
    expires = _seconds(segment, expiry, _EXPIRY_TIME[segment])
    listed = _seconds(segment, expiry - timedelta(days=91), time(0))
    row[_INDEX["pSymbol"]] = scrip.token
    row[_INDEX["pGroup"]] = scrip.group
    row[_INDEX["pExchSeg"]] = segment
    row[_INDEX["pInstType"]] = row[_INDEX["pInstName"]] = scrip.inst_type
    row[_INDEX["pSymbolName"]] = scrip.symbol_name
    row[_INDEX["pTrdSymbol"]] = scrip.trading_symbol
    row[_INDEX["pOptionType"]] = scrip.option_type
    row[_INDEX["pScripRefKey"]] = _ref_key(scrip)
    row[_INDEX["pISIN"]] = scrip.isin
    row[_INDEX["pAssetCode"]] = _asset_code(scrip)
    row[_INDEX["pDesc"]] = scrip.description
    row[_INDEX["dTickSize"]] = _paise(scrip.tick_size)
    row[_INDEX["lLotSize"]] = row[_INDEX["iLotSize"]] = str(scrip.lot_size)
    row[_INDEX["lExpiryDate"]] = row[_INDEX["pExpiryDate"]] = expires
    row[_INDEX["pMaturityDate"]] = expires
    row[_INDEX["lPrecision"]] = str(scrip.precision)
    row[_INDEX["dStrikePrice"]] = "-1" if scrip.strike is None else _paise(scrip.strike)
    row[_INDEX["pExchange"]] = scrip.exchange
    row[_INDEX["pIssueDate"]] = row[_INDEX["pListingDate"]] = listed
    row[_INDEX["pLocalUpdateTime"]] = listed
    row[_INDEX["pSegment"]] = _SEGMENT_NAMES[segment]
    if scrip.strike is not None:
        row[_INDEX["pExerciseStartDate"]] = _seconds(segment, expiry, time(0))
        row[_INDEX["pExerciseEndDate"]] = expires
    row[_INDEX["pScripBasePrice"]] = f"{scrip.ref_price:.4f}"
    row[_INDEX["pSettlementType"]] = "Physical" if scrip.inst_type.endswith("STK") else "Cash"
    row[_INDEX["iMaxOrderSize"]] = f"{scrip.freeze_qty}.00"
    row[_INDEX["lFreezeQty"]] = str(scrip.freeze_qty)
    row[_INDEX["dHighPriceRange"]] = _paise(high)
    row[_INDEX["dLowPriceRange"]] = _paise(low)
    return row


def _token_order(scrip: SandboxScrip) -> tuple[int, str]:
    return int(scrip.token), scrip.trading_symbol


def render_csv(scrips: Iterable[SandboxScrip], segment: str) -> str:
    """The scrip-master file of ``segment``: Kotak's header, then that segment's rows by token."""
    if segment not in SEGMENTS:
        raise ValueError(f"unknown segment {segment!r}")
    chosen = sorted((s for s in scrips if s.segment == segment), key=_token_order)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(
        _cash_row(s) if s.expiry is None else _derivative_row(s, s.expiry) for s in chosen
    )
    return out.getvalue()
