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
echoed in ``pScripBasePrice``); the simulator takes it from :class:`SandboxScrip` directly
(the day's opening price, which market.py's walk moves from).
Standard library only, so the simulator can run without the bridge installed.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import re
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
    #: the price walk that moves this contract (see market.py): an index's derivatives' name
    #: on its cash row (NIFTY on "Nifty 50"), the share's symbol on both exchanges and on its
    #: derivatives; "" for a row that never moves
    underlying: str = ""
    #: the underlying's level ``ref_price`` was computed from (a derivative re-prices from it)
    spot: float = 0.0


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


def on_grid(price: float, tick: Decimal) -> Decimal:
    """``price`` rounded to the tick grid, never below one tick."""
    return tick * max(1, round(price / float(tick)))


def _equity_tick(price: float) -> Decimal:
    # NSE and BSE quote cheap shares in paise and the rest in 5-paise steps.
    return _TICK_PAISA if price < 250 else _TICK_5_PAISE


def future_price(spot: float, today: date, expiry: date) -> float:
    """A future's fair price: the underlying's level carried to expiry at 6.5 % a year."""
    return spot * (1 + 0.065 * (expiry - today).days / 365)


class _Premium:
    """Premiums of one expiry's options at one level of the underlying: intrinsic value plus
    a bell of time value around the money. A CE's premium rises with the underlying and a
    PE's falls (the bell is never steeper than the intrinsic value)."""

    __slots__ = ("_peak", "_spot", "_width")

    def __init__(self, spot: float, today: date, expiry: date) -> None:
        spread = 0.15 * math.sqrt(max((expiry - today).days, 1) / 365)
        self._spot = spot
        self._width = spot * spread
        self._peak = 0.4 * spot * spread

    def __call__(self, strike: float, kind: str) -> float:
        spot = self._spot
        intrinsic = max(0.0, spot - strike) if kind == "CE" else max(0.0, strike - spot)
        distance = (strike - spot) / self._width
        return intrinsic + self._peak * math.exp(-0.5 * distance * distance)


def option_price(spot: float, strike: float, kind: str, today: date, expiry: date) -> float:
    """A premium that looks right (see :class:`_Premium`), before rounding to the tick grid."""
    return _Premium(spot, today, expiry)(strike, kind)


# ---------------------------------------------------------------------------------------------
# The realistic catalog.
#
# Levels are late-2026 guesses, lots and strike steps follow the exchanges' circulars of 2025
# in spirit (NSE sizes lots to a contract value of Rs 15-20 lakh). Tokens the doc gives are
# real (RELIANCE..IDEA); NSE tokens, BSE codes and ISINs of the other shares are written from
# memory of the real files and may be stale or wrong: nothing in the bridge checks them, and
# the sandbox only needs them unique and well formed.


@dataclass(frozen=True, slots=True)
class _Equity:
    symbol: str
    token: str
    isin: str
    name: str
    price: str
    series: str = "EQ"
    lot: int = 0  # F&O lot; 0: no derivatives
    step: int = 0  # option strike step in rupees; 0: futures only


# The NIFTY 100 and a few names traders ask for. Columns: NSE symbol, NSE token, BSE code ("-":
# not on BSE here), ISIN, price, F&O lot (0: none), option strike step (0: futures only), name.
# Options are listed for the most traded names only, to keep the day's files small enough to
# build at every start; every F&O name has its futures. ZOMATO is not listed: NSE renamed it
# ETERNAL in 2025 and Kotak's files carry only ETERNAL, so a paper signal for ZOMATO must fail
# as it would live. TATAMOTORS keeps its pre-demerger listing, which tests use.
_EQUITY_TABLE = """
RELIANCE    2885   500325 INE002A01018 1450   500  20  RELIANCE INDUSTRIES LTD
HDFCBANK    1333   500180 INE040A01034 980    550  10  HDFC BANK LTD
ICICIBANK   4963   532174 INE090A01021 1400   700  10  ICICI BANK LTD.
INFY        1594   500209 INE009A01021 1550   400  20  INFOSYS LIMITED
TCS         11536  532540 INE467B01029 3100   175  20  TATA CONSULTANCY SERV LT
SBIN        3045   500112 INE062A01020 850    750  10  STATE BANK OF INDIA
ITC         1660   500875 INE154A01025 410    1600 0   ITC LTD
LT          11483  500510 INE018A01030 3900   175  0   LARSEN & TOUBRO LTD.
AXISBANK    5900   532215 INE238A01034 1200   625  10  AXIS BANK LIMITED
KOTAKBANK   1922   500247 INE237A01028 2100   400  0   KOTAK MAHINDRA BANK LTD
TATAMOTORS  3456   500570 INE155A01022 680    800  0   TATA MOTORS LIMITED
BAJAJ-AUTO  16669  532977 INE917I01010 8900   75   100 BAJAJ AUTO LIMITED
M&M         2031   500520 INE101A01026 3500   200  50  MAHINDRA & MAHINDRA LTD
BAJFINANCE  317    500034 INE296A01032 1000   750  10  BAJAJ FINANCE LIMITED
BHARTIARTL  10604  532454 INE397D01024 2050   475  0   BHARTI AIRTEL LIMITED
TATASTEEL   3499   500470 INE081A01020 170    5500 0   TATA STEEL LIMITED
ETERNAL     5097   543320 INE758T01015 300    2425 5   ETERNAL LIMITED
ADANIENT    25     512599 INE423A01024 2400   300  20  ADANI ENTERPRISES LIMITED
MARUTI      10999  532500 INE585B01010 16000  50   0   MARUTI SUZUKI INDIA LTD.
IRFC        2029   543257 INE053F01010 125    4250 0   INDIAN RAILWAY FIN CORP L
ADANIPORTS  15083  532921 INE742F01042 1450   475  0   ADANI PORTS AND SEZ LTD
APOLLOHOSP  157    508869 INE437A01024 7500   125  0   APOLLO HOSPITALS ENTER. L
ASIANPAINT  236    500820 INE021A01026 2450   250  0   ASIAN PAINTS LIMITED
BAJAJFINSV  16675  532978 INE918I01026 2000   250  0   BAJAJ FINSERV LTD.
BEL         383    500049 INE263A01024 410    1425 0   BHARAT ELECTRONICS LTD
CIPLA       694    500087 INE059A01026 1550   375  0   CIPLA LTD
COALINDIA   20374  533278 INE522F01014 390    1350 0   COAL INDIA LTD
DRREDDY     881    500124 INE089A01031 1250   625  0   DR. REDDY S LABORATORIES
EICHERMOT   910    505200 INE066A01021 7000   175  0   EICHER MOTORS LTD
GRASIM      1232   500300 INE047A01021 2800   250  0   GRASIM INDUSTRIES LTD
HCLTECH     7229   532281 INE860A01027 1600   350  0   HCL TECHNOLOGIES LTD
HDFCLIFE    467    540777 INE795G01014 760    1100 0   HDFC LIFE INS CO LTD
HINDALCO    1363   500440 INE038A01020 800    1400 0   HINDALCO INDUSTRIES LTD
HINDUNILVR  1394   500696 INE030A01027 2450   300  0   HINDUSTAN UNILEVER LTD.
INDIGO      11195  539448 INE646L01027 5800   150  0   INTERGLOBE AVIATION LTD
JIOFIN      18143  543940 INE758E01017 310    2350 0   JIO FIN SERVICES LTD
JSWSTEEL    11723  500228 INE019A01038 1150   675  0   JSW STEEL LIMITED
MAXHEALTH   22377  543220 INE027H01010 1150   525  0   MAX HEALTHCARE INS LTD
NESTLEIND   17963  500790 INE239A01024 1250   500  0   NESTLE INDIA LIMITED
NTPC        11630  532555 INE733E01010 340    1500 0   NTPC LTD
ONGC        2475   500312 INE213A01029 245    2250 0   OIL AND NATURAL GAS CORP.
POWERGRID   14977  532898 INE752E01010 290    1900 0   POWER GRID CORP. LTD.
SBILIFE     21808  540719 INE123W01016 1900   375  0   SBI LIFE INSURANCE CO LTD
SHRIRAMFIN  4306   511218 INE721A01047 700    825  0   SHRIRAM FINANCE LIMITED
SUNPHARMA   3351   524715 INE044A01036 1700   350  0   SUN PHARMACEUTICAL IND L
TATACONSUM  3432   500800 INE192A01025 1150   550  0   TATA CONSUMER PRODUCT LTD
TECHM       13538  532755 INE669C01036 1500   600  0   TECH MAHINDRA LIMITED
TITAN       3506   500114 INE280A01028 3700   175  0   TITAN COMPANY LIMITED
TRENT       1964   500251 INE849A01020 4700   100  0   TRENT LTD
ULTRACEMCO  11532  532538 INE481G01011 12000  50   0   ULTRATECH CEMENT LIMITED
WIPRO       3787   507685 INE075A01022 250    3000 0   WIPRO LTD
ABB         13     500002 INE117A01022 5500   125  0   ABB INDIA LIMITED
ADANIENSOL  10217  539254 INE931S01010 900    675  0   ADANI ENERGY SOLUTION LTD
ADANIGREEN  3563   541450 INE364U01010 1000   600  0   ADANI GREEN ENERGY LTD
ADANIPOWER  17388  533096 INE814H01011 150    0    0   ADANI POWER LTD
AMBUJACEM   1270   500425 INE079A01024 570    1050 0   AMBUJA CEMENTS LTD
BAJAJHLDNG  305    500490 INE118A01012 13000  0    0   BAJAJ HOLDINGS & INVS LTD
BAJAJHFL    25270  544252 INE377Y01014 110    0    0   BAJAJ HOUSING FINANCE LTD
BANKBARODA  4668   532134 INE028A01039 250    2925 0   BANK OF BARODA
BOSCHLTD    2181   500530 INE323A01026 38000  25   0   BOSCH LIMITED
BPCL        526    500547 INE029A01011 330    1975 0   BHARAT PETROLEUM CORP LT
BRITANNIA   547    500825 INE216A01030 5800   125  0   BRITANNIA INDUSTRIES LTD
CANBK       10794  532483 INE476A01022 110    6750 0   CANARA BANK
CGPOWER     760    500093 INE067A01029 700    850  0   CG POWER AND IND SOL LTD
CHOLAFIN    685    511243 INE121A01024 1600   625  0   CHOLAMANDALAM IN & FIN CO
DABUR       772    500096 INE016A01026 500    1250 0   DABUR INDIA LTD
DIVISLAB    10940  532488 INE361B01024 6200   100  0   DIVI S LABORATORIES LTD
DLF         14732  532868 INE271C01023 780    825  0   DLF LIMITED
DMART       19913  540376 INE192R01011 4200   150  0   AVENUE SUPERMARTS LIMITED
GAIL        4717   532155 INE129A01019 180    3150 0   GAIL (INDIA) LTD
GODREJCP    10099  532424 INE102D01028 1200   500  0   GODREJ CONSUMER PRODUCTS
HAL         2303   541154 INE066F01020 4700   150  0   HINDUSTAN AERONAUTICS LTD
HAVELLS     9819   517354 INE176B01034 1550   500  0   HAVELLS INDIA LIMITED
HEROMOTOCO  1348   500182 INE158A01026 5400   150  0   HERO MOTOCORP LIMITED
HINDZINC    1424   500188 INE267A01025 470    1225 0   HINDUSTAN ZINC LIMITED
HYUNDAI     25844  544274 INE0V6F01027 2300   0    0   HYUNDAI MOTOR INDIA LTD
ICICIGI     21770  540716 INE765G01017 1900   325  0   ICICI LOMBARD GIC LIMITED
ICICIPRULI  18652  540133 INE726G01019 620    925  0   ICICI PRU LIFE INS CO LTD
INDHOTEL    1512   500850 INE053A01029 750    1000 0   THE INDIAN HOTELS CO. LTD
INDUSINDBK  5258   532187 INE095A01012 800    700  0   INDUSIND BANK LIMITED
IOC         1624   530965 INE242A01010 145    4875 0   INDIAN OIL CORP LTD
JINDALSTEL  6733   532286 INE749A01030 1000   625  0   JINDAL STEEL LIMITED
JSWENERGY   17869  533148 INE121E01018 520    1000 0   JSW ENERGY LIMITED
LICI        9480   543526 INE0J1Y01017 900    700  0   LIFE INSURA CORP OF INDIA
LODHA       3220   543287 INE670K01029 1200   450  0   LODHA DEVELOPERS LIMITED
LTIM        17818  540005 INE214T01019 5500   150  0   LTIMINDTREE LIMITED
MAZDOCK     509    543237 INE249Z01020 2800   175  0   MAZAGON DOCK SHIPBUIL LTD
MOTHERSON   4204   517334 INE775A01035 100    6150 0   SAMVRDHNA MTHRSN INTL LTD
NAUKRI      13751  532777 INE663F01032 1400   375  0   INFO EDGE (I) LTD
PFC         14299  532810 INE134E01011 410    1300 0   POWER FIN CORP LTD.
PIDILITIND  2664   500331 INE318A01026 1500   500  0   PIDILITE INDUSTRIES LTD
PNB         10666  532461 INE160A01022 110    8000 0   PUNJAB NATIONAL BANK
RECLTD      15355  532955 INE020B01018 380    1400 0   REC LIMITED
SHREECEM    3103   500387 INE070A01015 29000  25   0   SHREE CEMENT LIMITED
SIEMENS     3150   500550 INE003A01024 3100   175  0   SIEMENS LTD
SOLARINDS   13332  532725 INE343H01029 14000  75   0   SOLAR INDUSTRIES (I) LTD
SWIGGY      27066  544285 INE00H001014 420    0    0   SWIGGY LIMITED
TATAPOWER   3426   500400 INE245A01021 390    1450 0   TATA POWER CO LTD
TORNTPHARM  3518   500420 INE685A01028 3500   250  0   TORRENT PHARMACEUTICALS L
TVSMOTOR    8479   532343 INE494B01023 3400   175  0   TVS MOTOR COMPANY LTD
UNITDSPR    10447  532432 INE854D01024 1400   400  0   UNITED SPIRITS LIMITED
VBL         18921  540180 INE200M01039 470    1025 0   VARUN BEVERAGES LIMITED
VEDL        3063   500295 INE205A01025 450    1150 0   VEDANTA LIMITED
ZYDUSLIFE   7929   532321 INE010B01027 950    900  0   ZYDUS LIFESCIENCES LTD
YESBANK     11915  532648 INE528G01035 21.5   0    0   YES BANK LIMITED
IDEA        14366  532822 INE669E01016 8.45   0    0   VODAFONE IDEA LIMITED
GVT&D       522    522275 INE200A01026 2900   0    0   GE VERNOVA T&D INDIA LTD
"""


def _equity_table(table: str) -> tuple[tuple[_Equity, str], ...]:
    """The table's rows as (NSE listing, BSE code)."""
    rows: list[tuple[_Equity, str]] = []
    for line in table.strip().splitlines():
        symbol, token, bse, isin, price, lot, step, name = line.split(maxsplit=7)
        equity = _Equity(symbol, token, isin, name, price, lot=int(lot), step=int(step))
        rows.append((equity, "" if bse == "-" else bse))
    return tuple(rows)


_LISTED = _equity_table(_EQUITY_TABLE)
_NSE_EQUITIES = (
    *(equity for equity, _ in _LISTED),
    # One symbol listed in two series: a lookup by symbol must choose EQ.
    _Equity("RPOWER", "15259", "INE614G01033", "RELIANCE POWER LTD.", "42.5"),
    _Equity("RPOWER", "20363", "INE614G01033", "RELIANCE POWER LTD.", "42.5", "BE"),
    # Trade-to-trade only.
    _Equity("RCOM", "13187", "INE330H01018", "RELIANCE COMMUNICATIONS LTD", "1.6", "BE"),
)
# BSE lists the same shares in group A under their BSE codes.
_BSE_EQUITIES = tuple(
    _Equity(equity.symbol, code, equity.isin, equity.name, equity.price, "A")
    for equity, code in _LISTED
    if code
)


@dataclass(frozen=True, slots=True)
class _Index:
    symbol_name: str
    trading_symbol: str  # the name quotes ask for, exact and case-sensitive
    token: str
    price: str


@dataclass(frozen=True, slots=True)
class _IndexFamily:
    """An index, its cash row, and how the exchange lists its derivatives."""

    name: str  # the derivatives' pSymbolName
    index: _Index
    lot: int
    freeze: int
    step: int  # strike step
    weekly: bool  # options also expire every week, besides the month's last expiry day


_NSE_FAMILIES = (
    _IndexFamily("NIFTY", _Index("NIFTY 50", "Nifty 50", "26000", "26000"), 65, 1801, 50, True),
    _IndexFamily(
        "BANKNIFTY", _Index("NIFTY BANK", "Nifty Bank", "26009", "59000"), 30, 901, 100, False
    ),
    _IndexFamily(
        "FINNIFTY",
        _Index("NIFTY FIN SERVICE", "Nifty Fin Service", "26037", "27500"),
        60,
        1801,
        50,
        False,
    ),
    _IndexFamily(
        "MIDCPNIFTY",
        _Index("NIFTY MID SELECT", "NIFTY MID SELECT", "26074", "13500"),
        120,
        2801,
        25,
        False,
    ),
)
_BSE_FAMILIES = (
    _IndexFamily("SENSEX", _Index("SENSEX", "SENSEX", "1", "85000"), 20, 1001, 100, True),
    _IndexFamily("BANKEX", _Index("BANKEX", "BANKEX", "12", "66000"), 30, 901, 100, False),
)
#: index strikes listed each side of the index: at least 30, and 6 % of the level, so the
#: chain straddles the index wherever the walk takes it (5 % at most, see market.py) and
#: offsets up to 20 resolve after moves of up to about 2 % (a day's walk is about 1 %)
_INDEX_STRIKES_EACH_SIDE = 30
_INDEX_CHAIN_REACH = 0.06
_STOCK_STRIKES_EACH_SIDE = 20
#: monthly expiries of stock options (near and next month; the far month is thinly traded)
_STOCK_OPTION_EXPIRIES = 2
#: NIFTY's monthly chains are listed coarser than its weeklies, at Rs 100
_NIFTY_MONTHLY_STEP = 100
#: weekly expiries listed ahead, where an index has them
_WEEKLY_EXPIRIES = 2
#: the lean market (SandboxConfig.market): strikes each side of every chain, and the only
#: stock with options; prices there never walk, so short chains always straddle them
_LEAN_STRIKES_EACH_SIDE = 10
_LEAN_STOCK_OPTIONS = ("RELIANCE",)

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
    walk: str = ""  # the price walk it follows, when not its own (a mini contract)

    @property
    def moved_by(self) -> str:
        return self.walk or self.name


def _family_underlying(family: _IndexFamily) -> _Underlying:
    return _Underlying(
        family.name, float(family.index.price), family.lot, family.freeze, _TICK_5_PAISE, "IDX"
    )


def _stock_underlying(equity: _Equity) -> _Underlying:
    # Exchanges freeze a stock derivative order above about 20 lots.
    return _Underlying(
        equity.symbol, float(equity.price), equity.lot, equity.lot * 20 + 1, _TICK_5_PAISE, "STK"
    )


_STOCK_FUTURES = tuple(_stock_underlying(e) for e, _ in _LISTED if e.lot)
_STOCK_OPTIONS = tuple(_stock_underlying(e) for e, _ in _LISTED if e.step)
_STRIKE_STEPS = {e.symbol: e.step for e, _ in _LISTED if e.step}
_FIRST_STOCK_FUTURES = ("RELIANCE", "M&M", "BAJAJ-AUTO")
_USDINR = _Underlying("USDINR", 90.125, 1000, 10001, _TICK_CURRENCY, "CUR")
_CRUDEOIL = _Underlying("CRUDEOIL", 5500, 100, 10001, _TICK_RUPEE, "COM")
_CRUDEOILM = _Underlying("CRUDEOILM", 5500, 10, 1001, _TICK_RUPEE, "COM", walk="CRUDEOIL")
_GOLD = _Underlying("GOLD", 128000, 100, 1001, _TICK_RUPEE, "COM")

# pAssetCode of a derivative: the token of its underlying (index tokens as in the sample's 26000).
_ASSET_CODES: dict[tuple[str, str], str] = {
    **{("nse_fo", f.name): f.index.token for f in _NSE_FAMILIES},
    **{("bse_fo", f.name): f.index.token for f in _BSE_FAMILIES},
    ("cde_fo", "USDINR"): "1",
    ("mcx_fo", "CRUDEOIL"): "294",
    ("mcx_fo", "CRUDEOILM"): "294",
    ("mcx_fo", "GOLD"): "114",
    **{("nse_fo", e.symbol): e.token for e in _NSE_EQUITIES if e.series == "EQ"},
}


class _Tokens:
    def __init__(self, start: int) -> None:
        self._next = count(start)

    def take(self) -> str:
        return str(next(self._next))


def _cash(equity: _Equity, segment: str, exchange: str, trading_symbol: str) -> SandboxScrip:
    price = float(equity.price)
    tick = _equity_tick(price)
    ref = on_grid(price, tick)
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
        underlying=equity.symbol,
        spot=price,
    )


def _index(family: _IndexFamily, segment: str, exchange: str) -> SandboxScrip:
    index = family.index
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
        ref_price=on_grid(float(index.price), _TICK_5_PAISE),
        isin="",
        description=f"{index.trading_symbol} Index",
        exchange=exchange,
        precision=2,
        underlying=family.name,
        spot=float(index.price),
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
        ref_price=on_grid(future_price(und.spot, today, expiry), und.tick),
        isin="",
        description="",
        exchange=exchange,
        precision=4 if segment == "cde_fo" else 2,
        underlying=und.moved_by,
        spot=und.spot,
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
    # MCX options are on futures (OPTFUT); the rest are OPTIDX/OPTSTK/OPTCUR.
    inst = "OPTFUT" if und.inst == "COM" else f"OPT{und.inst}"
    precision = 4 if segment == "cde_fo" else 2
    tick, spot, walk = und.tick, und.spot, und.moved_by
    for expiry in expiries:
        head = f"{und.name}{_symbol_date(expiry, expiry not in monthly)}"
        premium = _Premium(spot, today, expiry)
        for strike in strikes:
            strike_decimal = Decimal(strike)
            for kind in ("CE", "PE"):
                yield SandboxScrip(
                    segment=segment,
                    token=tokens.take(),
                    trading_symbol=f"{head}{strike}{kind}",
                    symbol_name=und.name,
                    group="XX",
                    inst_type=inst,
                    option_type=kind,
                    expiry=expiry,
                    strike=strike_decimal,
                    lot_size=und.lot,
                    tick_size=tick,
                    freeze_qty=und.freeze,
                    ref_price=on_grid(premium(strike, kind), tick),
                    isin="",
                    description="",
                    exchange=exchange,
                    precision=precision,
                    underlying=walk,
                    spot=spot,
                )


def _index_options(
    family: _IndexFamily,
    segment: str,
    exchange: str,
    tokens: _Tokens,
    today: date,
    monthly: list[date],
    weekday: int,
    lean: bool,
) -> Iterator[SandboxScrip]:
    und = _family_underlying(family)
    weeklies = _weekly(today, _WEEKLY_EXPIRIES, weekday) if family.weekly else []
    for expiry in sorted({*weeklies, *monthly}):
        step = family.step
        if family.name == "NIFTY" and expiry in monthly:
            step = _NIFTY_MONTHLY_STEP
        if lean:
            each_side = _LEAN_STRIKES_EACH_SIDE
        else:
            reach = math.ceil(und.spot * _INDEX_CHAIN_REACH / step)
            each_side = max(_INDEX_STRIKES_EACH_SIDE, reach)
        strikes = _strikes(und.spot, step, each_side)
        yield from _option_chain(segment, exchange, tokens, und, today, [expiry], strikes, monthly)


def build_catalog(today: date, lean: bool = False,
                  listings: tuple[Listing, ...] = ()) -> list[SandboxScrip]:
    """A realistic, deterministic instrument set; every contract is live on ``today``.

    Index options: NIFTY every Tuesday (the next two) and SENSEX every Thursday (the next
    two), each also on its next three monthly expiries (the month's last Tuesday or
    Thursday); BANKNIFTY, FINNIFTY and MIDCPNIFTY on their next three monthly (last Tuesday)
    expiries, BANKEX on its next three last Thursdays; strikes 6 % (at least 30 strikes)
    each side of the index.
    Index futures: three monthlies on NSE, two on BSE. Stock futures: three monthlies for
    every F&O name; stock options: the near and next month, 20 strikes each side, for the
    most traded names.

    The size is a compromise: every sandbox start builds it and every bridge start parses it
    (about 5,900 rows where Kotak's files hold over 100,000). ``lean`` lists the same cash,
    index and futures rows with chains of 10 strikes each side and stock options on RELIANCE
    only (about 1,600 rows), for test suites that start hundreds of bridges.

    ``listings``: shares a user added (:func:`read_listings`), listed after the built-in ones
    the way the built-in shares are: NSE and BSE cash, and with a lot their futures, with a
    strike step their options.
    """
    scrips: list[SandboxScrip] = []

    for equity in _NSE_EQUITIES:
        scrips.append(_cash(equity, "nse_cm", "NSE", f"{equity.symbol}-{equity.series}"))
    scrips.extend(_index(family, "nse_cm", "NSE") for family in _NSE_FAMILIES)
    for equity in _BSE_EQUITIES:
        scrips.append(_cash(equity, "bse_cm", "BSE", equity.symbol))
    scrips.extend(_index(family, "bse_cm", "BSE") for family in _BSE_FAMILIES)

    nse_fo = _Tokens(35001)
    months = _monthly(today, 3, _nse_monthly)
    nifty, banknifty, *other_indices = (_family_underlying(f) for f in _NSE_FAMILIES)
    stocks = {und.name: und for und in _STOCK_FUTURES}
    # The futures the sandbox first listed come first, so they keep their tokens.
    first = [stocks.pop(name) for name in _FIRST_STOCK_FUTURES]
    for und in (nifty, banknifty, *first, *other_indices, *stocks.values()):
        scrips.extend(_future("nse_fo", "NSE", nse_fo.take(), und, today, m) for m in months)
    for family in _NSE_FAMILIES:
        scrips.extend(
            _index_options(family, "nse_fo", "NSE", nse_fo, today, months, _TUESDAY, lean)
        )
    for und in _STOCK_OPTIONS:
        if lean and und.name not in _LEAN_STOCK_OPTIONS:
            continue
        each_side = _LEAN_STRIKES_EACH_SIDE if lean else _STOCK_STRIKES_EACH_SIDE
        strikes = _strikes(und.spot, _STRIKE_STEPS[und.name], each_side)
        expiries = months[:_STOCK_OPTION_EXPIRIES]
        scrips.extend(
            _option_chain("nse_fo", "NSE", nse_fo, und, today, expiries, strikes, months)
        )

    bse_fo = _Tokens(1100001)
    bse_months = _monthly(today, 3, _bse_monthly)
    for family in _BSE_FAMILIES:
        und = _family_underlying(family)
        scrips.extend(
            _future("bse_fo", "BSE", bse_fo.take(), und, today, m) for m in bse_months[:2]
        )
    for family in _BSE_FAMILIES:
        scrips.extend(
            _index_options(family, "bse_fo", "BSE", bse_fo, today, bse_months, _THURSDAY, lean)
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
    scrips.extend(_listed_by_user(listings, today, months))
    return scrips


# ---------------------------------------------------------------------------------------------
# Shares a user adds to the paper market: a CSV in the data folder.

LISTINGS_HEADER = ("symbol", "price", "lot", "step", "name")
#: where a user's shares are numbered, far from the built-in tokens and codes
_LISTED_NSE_BASE = 800000
_LISTED_BSE_BASE = 880000
_LISTED_FO_BASE = 2000001
_LISTED_MAX = 500
_LISTED_NAME = re.compile(r"^[A-Z0-9][A-Z0-9&_-]{0,24}$")


@dataclass(frozen=True, slots=True)
class Listing:
    """A share a user added: its NSE symbol, price in rupees, F&O lot (0: cash only) and
    option strike step in rupees (0: no options)."""

    symbol: str
    price: str
    lot: int = 0
    step: int = 0
    name: str = ""


class ListingError(ValueError):
    """The user's instruments file cannot be read; ``problems`` names each bad line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def read_listings(text: str) -> tuple[tuple[Listing, ...], list[str]]:
    """The shares of a user's CSV (``symbol,price,lot,step,name``; a header row, blank lines
    and ``#`` comments skipped; ``lot``, ``step`` and ``name`` may be left out), and a note
    for each one the built-in market already lists (it is left as it is).

    :raises ListingError: naming every bad line, so nothing is half added.
    """
    listings: dict[str, Listing] = {}
    notes: list[str] = []
    problems: list[str] = []
    known = {equity.symbol for equity in _NSE_EQUITIES}
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#") or cells[0].lower() == "symbol":
            continue
        problem = _listing_problem(cells)
        if problem:
            problems.append(f"line {number}: {problem}")
            continue
        symbol = cells[0].upper()
        if symbol in known:
            notes.append(f"line {number}: {symbol} is already in the paper market; kept as "
                         "it is")
            continue
        if symbol in listings:
            problems.append(f"line {number}: {symbol} is listed twice")
            continue
        listings[symbol] = Listing(symbol, cells[1], _count(cells, 2), _count(cells, 3),
                                   (cells[4] if len(cells) > 4 else "")[:25].upper())
    if len(listings) > _LISTED_MAX:
        problems.append(f"{len(listings)} shares; at most {_LISTED_MAX} can be added")
    if problems:
        raise ListingError(problems)
    return tuple(listings.values()), notes


def _listing_problem(cells: list[str]) -> str:
    if not _LISTED_NAME.match(cells[0].upper()):
        return (f"symbol {cells[0][:30]!r} is not an NSE symbol (letters, digits, & _ -; up "
                "to 25)")
    if len(cells) < 2 or not cells[1]:
        return f"{cells[0]}: a price in rupees is required (symbol,price,lot,step,name)"
    try:
        price = Decimal(cells[1])
    except ArithmeticError:
        return f"{cells[0]}: price {cells[1][:20]!r} is not a number"
    if not price.is_finite() or not Decimal("0.05") <= price <= Decimal(1_000_000):
        return f"{cells[0]}: price {cells[1][:20]} is not between 0.05 and 10,00,000"
    for column, field in ((2, "lot"), (3, "step")):
        text = cells[column] if len(cells) > column else ""
        if text and not (text.isdigit() and int(text) <= 100_000):
            return f"{cells[0]}: {field} {text[:20]!r} is not a whole number (0 for none)"
    if _count(cells, 3) and not _count(cells, 2):
        return f"{cells[0]}: options (a step) need a lot size"
    return ""


def _count(cells: list[str], column: int) -> int:
    text = cells[column] if len(cells) > column else ""
    return int(text) if text else 0


def _listed_by_user(listings: tuple[Listing, ...], today: date,
                    months: list[date]) -> Iterator[SandboxScrip]:
    """Each user's share as the built-in ones are listed: NSE (EQ) and BSE (group A) cash,
    with a lot three monthly futures, with a step near and next month options."""
    tokens = _Tokens(_LISTED_FO_BASE)
    for number, listing in enumerate(listings):
        isin = f"INE{number:06d}U{number % 10}"[:12].ljust(12, "0")
        name = listing.name or f"{listing.symbol} (ADDED BY YOU)"
        equity = _Equity(listing.symbol, str(_LISTED_NSE_BASE + number), isin, name,
                         listing.price, lot=listing.lot, step=listing.step)
        yield _cash(equity, "nse_cm", "NSE", f"{listing.symbol}-EQ")
        yield _cash(dataclasses.replace(equity, token=str(_LISTED_BSE_BASE + number),
                                        series="A"), "bse_cm", "BSE", listing.symbol)
        if not listing.lot:
            continue
        und = _stock_underlying(equity)
        yield from (_future("nse_fo", "NSE", tokens.take(), und, today, month)
                    for month in months)
        if listing.step:
            strikes = _strikes(und.spot, listing.step, _STOCK_STRIKES_EACH_SIDE)
            yield from _option_chain("nse_fo", "NSE", tokens, und, today,
                                     months[:_STOCK_OPTION_EXPIRIES], strikes, months)


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
