"""The sandbox's scrip-master files must read like Kotak's (kotak-neo-api.md section 7)."""

from __future__ import annotations

import csv
import io
import re
import time
from collections import Counter
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bridge.kotak.sandbox.scripmaster import (
    COLUMNS,
    NSE_EPOCH_OFFSET,
    SEGMENT_FILES,
    SEGMENTS,
    SandboxScrip,
    build_catalog,
    bulk_catalog,
    dated_folder,
    render_csv,
)

IST = ZoneInfo("Asia/Kolkata")

# Kotak's header as the file has it: no quotes, trailing spaces kept, a semicolon in one name.
KOTAK_HEADER = (
    "pSymbol,pGroup,pExchSeg,pInstType,pSymbolName,pTrdSymbol,pOptionType,pScripRefKey,pISIN,"
    "pAssetCode,pSubGroup,pCombinedSymbol,pDesc,pAmcCode,pContractId,dTickSize ,lLotSize,"
    "lExpiryDate ,lMultiplier ,lPrecision,dStrikePrice;,pExchange,pInstName,pExpiryDate,"
    "pIssueDate,pMaturityDate,pListingDate,pNoDelStartDate,pNoDelEndDate,pBookClsStartDate,"
    "pBookClsEndDate,pRecordDate,pCreditRating,pReAdminDate,pExpulsionDate,pLocalUpdateTime,"
    "pDeliveryUnits,pPriceUnits,pLastTradingDate,pTenderPeridEndDate,pTenderPeridStartDate,"
    "pSellVarMargin,pBuyVarMargin,pInstrumentInfo,pRemarksText,pSegment,pNav,pNavDate,pMfAmt,"
    "pSipSecurity,pFaceValue,pTrdUnits,pExerciseStartDate,pExerciseEndDate,pElmMargin,"
    "pVarMargin,pTotProposedLimitValue,pScripBasePrice,pSettlementType,pCurrectionTime,"
    "iPermittedToTrade,iBoardLotQty ,iMaxOrderSize ,iLotSize,dOpenInterest ,dHighPriceRange ,"
    "dLowPriceRange ,dPriceNum   ,dGenDen,dGenNum,dPriceQuatation ,dIssuerate ,dPriceDen,"
    "dWarningQty ,dIssueCapital ,dExposureMargin ,dMinRedemptionQty ,lFreezeQty,CASEligible"
)

# The doc's live nse_fo row (section 7.4), verbatim.
DOC_NSE_FO_ROW = (
    "56526,XX,nse_fo,OPTIDX,NIFTY,NIFTY2692221000PE,PE,NIFTY22SEP2621000.00PE,,26000,,,,,,5,65,"
    "1474554600,-1,2,2.1e+06,NSE,OPTIDX,1474554600,1471564800,1474554600,1471564800,0,0,0,0,0,,"
    "0,0,1472316328,,,,,,,,,,FO,,,,,,,1474502400,1474554600,,,,15.0000,Cash,,1,1,1801.00,65,0,"
    "2015,5,1,1,1,0,0,1,0,1e+12,1,0,1801,false"
)

DOC_SCRIP = SandboxScrip(
    segment="nse_fo",
    token="56526",
    trading_symbol="NIFTY2692221000PE",
    symbol_name="NIFTY",
    group="XX",
    inst_type="OPTIDX",
    option_type="PE",
    expiry=date(2026, 9, 22),
    strike=Decimal("21000"),
    lot_size=65,
    tick_size=Decimal("0.05"),
    freeze_qty=1801,
    ref_price=Decimal("15.00"),
    isin="",
    description="",
    exchange="NSE",
    precision=2,
)

CASH_SCRIP = SandboxScrip(
    segment="nse_cm",
    token="99999",
    trading_symbol="ABC-EQ",
    symbol_name="ABC",
    group="EQ",
    inst_type="",
    option_type="",
    expiry=None,
    strike=None,
    lot_size=1,
    tick_size=Decimal("0.05"),
    freeze_qty=40592,
    ref_price=Decimal("2355.50"),
    isin="INE000A01000",
    description="ABC INDUSTRIES, LTD",
    exchange="NSE",
    precision=2,
)

# Days that have bitten expiry arithmetic: month ends, expiry days, the day after an expiry,
# weekends, the year end.
AWKWARD_DAYS = [
    date(2026, 1, 31),
    date(2026, 2, 6),  # the day after GOLD's February expiry
    date(2026, 6, 20),  # a Saturday
    date(2026, 9, 22),  # a weekly NIFTY expiry
    date(2026, 9, 30),  # the day after September's monthly expiry
    date(2026, 11, 30),
    date(2026, 12, 29),  # December's monthly expiry
    date(2026, 12, 30),
    date(2026, 12, 31),
    date(2027, 2, 28),
]


def names() -> list[str]:
    return [c.rstrip(" ;") for c in COLUMNS]


def read(text: str) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(COLUMNS)
    for row in rows:
        assert len(row) == 79
    return [dict(zip(names(), row, strict=True)) for row in rows[1:]]


def rendered(scrips: list[SandboxScrip]) -> dict[str, list[dict[str, str]]]:
    return {segment: read(render_csv(scrips, segment)) for segment in SEGMENTS}


def ist(seconds: str, segment: str) -> datetime:
    offset = NSE_EPOCH_OFFSET if segment in ("nse_fo", "cde_fo") else 0
    return datetime.fromtimestamp(int(seconds) + offset, IST)


def by_symbol(catalog: list[SandboxScrip], segment: str) -> dict[str, SandboxScrip]:
    return {s.trading_symbol: s for s in catalog if s.segment == segment}


@pytest.fixture(scope="module")
def catalog() -> list[SandboxScrip]:
    return build_catalog(date(2026, 9, 15))


# --- format constants ---------------------------------------------------------------------------


def test_columns_are_kotaks_79_names_with_their_spaces_and_semicolon() -> None:
    assert len(COLUMNS) == 79
    assert ",".join(COLUMNS) == KOTAK_HEADER
    assert "dTickSize " in COLUMNS
    assert "lExpiryDate " in COLUMNS
    assert "dPriceNum   " in COLUMNS
    assert "dStrikePrice;" in COLUMNS
    assert COLUMNS[-1] == "CASEligible"


def test_every_segment_file_starts_with_the_plain_header() -> None:
    for segment in SEGMENTS:
        text = render_csv([], segment)
        assert text == KOTAK_HEADER + "\n"


def test_segment_files_and_dated_folder() -> None:
    assert SEGMENTS == ("nse_cm", "bse_cm", "nse_fo", "bse_fo", "cde_fo", "mcx_fo")
    assert SEGMENT_FILES == {
        "nse_cm": "transformed-v1/nse_cm-v1.csv",
        "bse_cm": "transformed-v1/bse_cm-v1.csv",
        "nse_fo": "transformed/nse_fo.csv",
        "bse_fo": "transformed/bse_fo.csv",
        "cde_fo": "transformed/cde_fo.csv",
        "mcx_fo": "transformed/mcx_fo.csv",
    }
    assert dated_folder(date(2026, 7, 4)) == "2026-07-04"


def test_unknown_segment_is_refused() -> None:
    with pytest.raises(ValueError):
        render_csv([], "bcs-fo")


# --- the doc's samples -------------------------------------------------------------------------


def test_doc_nse_fo_sample_row_is_reproduced() -> None:
    (row,) = read(render_csv([DOC_SCRIP], "nse_fo"))
    sample = dict(zip(names(), DOC_NSE_FO_ROW.split(","), strict=True))
    # Listing and update times and the upper circuit depend on market history we don't model.
    unmodelled = {"pIssueDate", "pListingDate", "pLocalUpdateTime", "dHighPriceRange"}
    assert {k: v for k, v in row.items() if k not in unmodelled} == {
        k: v for k, v in sample.items() if k not in unmodelled
    }
    assert int(row["dHighPriceRange"]) > 1500


def test_nse_epoch_of_22_sep_2026_1430_ist() -> None:
    (row,) = read(render_csv([DOC_SCRIP], "nse_fo"))
    assert row["lExpiryDate"] == row["pExpiryDate"] == "1474554600"
    assert ist(row["lExpiryDate"], "nse_fo") == datetime(2026, 9, 22, 14, 30, tzinfo=IST)
    assert NSE_EPOCH_OFFSET == 315513000


@pytest.mark.parametrize(
    ("strike", "text"),
    [
        ("21000", "2.1e+06"),
        ("26050", "2.605e+06"),
        ("59000", "5.9e+06"),
        ("1450", "145000"),
        ("7.5", "750"),
        ("1234567.5", "1.2345675e+08"),  # %g would drop digits: more are written
    ],
)
def test_strike_is_paise_in_kotaks_g_format(strike: str, text: str) -> None:
    (row,) = read(render_csv([replace(DOC_SCRIP, strike=Decimal(strike))], "nse_fo"))
    assert row["dStrikePrice"] == text
    assert Decimal(float(row["dStrikePrice"])) / 100 == Decimal(strike)


@pytest.mark.parametrize(
    ("tick", "paise"), [("0.05", "5"), ("0.01", "1"), ("1", "100"), ("0.0025", "0.25")]
)
def test_tick_is_written_in_paise(tick: str, paise: str) -> None:
    (row,) = read(render_csv([replace(CASH_SCRIP, tick_size=Decimal(tick))], "nse_cm"))
    assert row["dTickSize"] == paise


def test_cash_row_follows_the_2023_sample() -> None:
    (row,) = read(render_csv([CASH_SCRIP], "nse_cm"))
    assert row["pSymbol"] == "99999"
    assert row["pGroup"] == "EQ"
    assert row["pTrdSymbol"] == "ABC-EQ"
    assert row["pScripRefKey"] == "ABC"
    assert row["pISIN"] == "INE000A01000"
    assert row["dTickSize"] == "5"
    assert row["lLotSize"] == row["iLotSize"] == "1"
    assert row["lExpiryDate"] == row["dStrikePrice"] == row["lMultiplier"] == "-1"
    assert row["pInstType"] == row["pInstName"] == row["pOptionType"] == row["pExpiryDate"] == ""
    assert row["iBoardLotQty"] == "1"
    # Rs 2355.50 +/- 10% is the sample's 2119.95-2591.05 band.
    assert row["pCreditRating"] == "2119.95-2591.05"
    assert (row["dHighPriceRange"], row["dLowPriceRange"]) == ("259105", "211995")
    assert row["lFreezeQty"] == row["iMaxOrderSize"] == "40592"
    assert row["pSegment"] == "CASH"
    assert row["pSettlementType"] == "T+1"
    assert row["pExchange"] == "NSE"
    assert row["CASEligible"] == "true"


def test_fields_with_commas_are_quoted() -> None:
    text = render_csv([CASH_SCRIP], "nse_cm")
    assert '"ABC INDUSTRIES, LTD"' in text
    (row,) = read(text)
    assert row["pDesc"] == "ABC INDUSTRIES, LTD"


def test_rows_are_filtered_by_segment_and_ordered_by_token() -> None:
    scrips = [
        replace(CASH_SCRIP, token="300", trading_symbol="C-EQ"),
        replace(CASH_SCRIP, token="20", trading_symbol="B-EQ"),
        replace(CASH_SCRIP, token="1000", trading_symbol="A-EQ"),
        DOC_SCRIP,
    ]
    rows = read(render_csv(reversed(scrips), "nse_cm"))
    assert [r["pSymbol"] for r in rows] == ["20", "300", "1000"]


# --- the realistic catalog ----------------------------------------------------------------------


def test_catalog_is_deterministic() -> None:
    assert build_catalog(date(2026, 9, 15)) == build_catalog(date(2026, 9, 15))


def test_lean_market_lists_the_same_names_with_short_chains(
        catalog: list[SandboxScrip]) -> None:
    """What the test suite trades: every share, index and future of the full market, the
    index chains 10 strikes each side of the same ATM strike, options on RELIANCE only."""
    lean = build_catalog(date(2026, 9, 15), lean=True)
    options = ("CE", "PE")
    assert len(lean) < len(catalog) / 3
    def plain(scrips: list[SandboxScrip]) -> set[tuple[str, str, str]]:
        return {(s.segment, s.trading_symbol, s.token) for s in scrips
                if s.option_type not in options}

    assert plain(lean) == plain(catalog)
    full_options = {(s.segment, s.trading_symbol) for s in catalog if s.option_type in options}
    lean_options = [s for s in lean if s.option_type in options]
    assert {(s.segment, s.trading_symbol) for s in lean_options} <= full_options
    assert {s.symbol_name for s in lean_options} == {
        "NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "SENSEX", "BANKEX", "RELIANCE"}
    nifty = sorted({s.strike for s in lean_options
                    if s.symbol_name == "NIFTY" and s.expiry == min(
                        o.expiry for o in lean_options if o.symbol_name == "NIFTY")})
    assert (len(nifty), nifty[10]) == (21, Decimal("26000"))


def test_every_segment_has_rows_of_79_fields(catalog: list[SandboxScrip]) -> None:
    files = rendered(catalog)
    for segment in SEGMENTS:
        assert files[segment], segment
        assert {r["pExchSeg"] for r in files[segment]} == {segment}


def test_tokens_and_trading_symbols_are_unique_per_segment(catalog: list[SandboxScrip]) -> None:
    for segment in SEGMENTS:
        scrips = [s for s in catalog if s.segment == segment]
        assert len({s.token for s in scrips}) == len(scrips), segment
        assert len({s.trading_symbol for s in scrips}) == len(scrips), segment
        assert all(s.token.isdigit() for s in scrips)


def test_doc_tokens_are_real(catalog: list[SandboxScrip]) -> None:
    nse = by_symbol(catalog, "nse_cm")
    expected = {
        "RELIANCE-EQ": "2885",
        "INFY-EQ": "1594",
        "SBIN-EQ": "3045",
        "TCS-EQ": "11536",
        "YESBANK-EQ": "11915",
        "HDFCBANK-EQ": "1333",
        "IDEA-EQ": "14366",
    }
    assert {k: nse[k].token for k in expected} == expected
    bse = by_symbol(catalog, "bse_cm")
    assert (bse["RELIANCE"].token, bse["SBIN"].token, bse["INFY"].token) == (
        "500325",
        "500112",
        "500209",
    )
    assert bse["RELIANCE"].group == "A"


def test_symbols_tradingview_mangles_exist(catalog: list[SandboxScrip]) -> None:
    nse = by_symbol(catalog, "nse_cm")
    for symbol in ("M&M-EQ", "GVT&D-EQ", "BAJAJ-AUTO-EQ", "ICICIBANK-EQ", "TATAMOTORS-EQ"):
        assert symbol in nse
    assert nse["M&M-EQ"].symbol_name == "M&M"
    assert "M&M" in by_symbol(catalog, "bse_cm")
    rows = {r["pTrdSymbol"]: r for r in rendered(catalog)["nse_cm"]}
    assert rows["GVT&D-EQ"]["pSymbolName"] == "GVT&D"


def test_one_symbol_in_two_series_and_a_be_only_name(catalog: list[SandboxScrip]) -> None:
    cash = [s for s in catalog if s.segment == "nse_cm" and s.isin]
    series = Counter(s.symbol_name for s in cash)
    twins = [name for name, n in series.items() if n > 1]
    assert twins
    both = {s.trading_symbol for s in cash if s.symbol_name == twins[0]}
    assert both == {f"{twins[0]}-EQ", f"{twins[0]}-BE"}
    be_only = [s for s in cash if s.group == "BE" and series[s.symbol_name] == 1]
    assert be_only
    assert be_only[0].trading_symbol.endswith("-BE")


def test_index_rows_have_no_isin_and_are_not_tradable(catalog: list[SandboxScrip]) -> None:
    rows = rendered(catalog)
    indices = [r for seg in ("nse_cm", "bse_cm") for r in rows[seg] if r["pISIN"] == ""]
    assert {r["pTrdSymbol"] for r in indices} >= {"Nifty 50", "Nifty Bank"}
    for r in indices:
        assert r["pGroup"] not in ("EQ", "BE")
        assert r["iPermittedToTrade"] == "0"
        assert r["CASEligible"] == "false"
    tradable = [r for seg in ("nse_cm", "bse_cm") for r in rows[seg] if r["pISIN"]]
    assert all(r["iPermittedToTrade"] == "1" for r in tradable)


@pytest.mark.parametrize("today", AWKWARD_DAYS, ids=str)
def test_all_derivative_expiries_are_live(today: date) -> None:
    scrips = build_catalog(today)
    derivatives = [s for s in scrips if s.expiry is not None]
    assert all(s.expiry is not None and s.expiry >= today for s in derivatives)
    # Rendered expiries decode to the same IST dates.
    files = rendered(scrips)
    for segment in ("nse_fo", "bse_fo", "cde_fo", "mcx_fo"):
        for r in files[segment]:
            assert ist(r["lExpiryDate"], segment).date() >= today

    def expiries(name: str, segment: str, inst: str) -> list[date]:
        return sorted(
            s.expiry
            for s in scrips
            if s.symbol_name == name and s.segment == segment and s.inst_type == inst
            if s.expiry is not None
        )

    for name, segment, inst, n in [
        ("NIFTY", "nse_fo", "FUTIDX", 3),
        ("BANKNIFTY", "nse_fo", "FUTIDX", 3),
        ("RELIANCE", "nse_fo", "FUTSTK", 3),
        ("SENSEX", "bse_fo", "FUTIDX", 2),
        ("USDINR", "cde_fo", "FUTCUR", 2),
        ("CRUDEOIL", "mcx_fo", "FUTCOM", 3),
        ("CRUDEOILM", "mcx_fo", "FUTCOM", 3),
        ("GOLD", "mcx_fo", "FUTCOM", 3),
    ]:
        found = expiries(name, segment, inst)
        assert len(found) == n, (name, found)
        assert len({(d.year, d.month) for d in found}) == n, (name, found)
        assert all(d.weekday() < 5 for d in found)
    for d in expiries("NIFTY", "nse_fo", "FUTIDX"):
        assert d.weekday() == 1 and (d + timedelta(weeks=1)).month != d.month
    for d in expiries("SENSEX", "bse_fo", "FUTIDX"):
        assert d.weekday() == 3 and (d + timedelta(weeks=1)).month != d.month
    assert all(d.month % 2 == 0 and d.day <= 5 for d in expiries("GOLD", "mcx_fo", "FUTCOM"))
    assert all(17 <= d.day <= 19 for d in expiries("CRUDEOIL", "mcx_fo", "FUTCOM"))

    # NIFTY options: the next two Tuesdays and the nearest monthly.
    next_tuesday = today + timedelta(days=(1 - today.weekday()) % 7)
    option_expiries = set(expiries("NIFTY", "nse_fo", "OPTIDX"))
    assert {next_tuesday, next_tuesday + timedelta(weeks=1)} <= option_expiries
    assert expiries("NIFTY", "nse_fo", "FUTIDX")[0] in option_expiries
    # BANKNIFTY options: monthly only, on every listed future's expiry.
    assert set(expiries("BANKNIFTY", "nse_fo", "OPTIDX")) == set(
        expiries("BANKNIFTY", "nse_fo", "FUTIDX")
    )


def test_expiry_times_of_day(catalog: list[SandboxScrip]) -> None:
    files = rendered(catalog)
    times = {"nse_fo": (14, 30), "cde_fo": (14, 30), "bse_fo": (14, 30), "mcx_fo": (23, 30)}
    expiry_of = {(s.segment, s.token): s.expiry for s in catalog}
    for segment, (hour, minute) in times.items():
        for r in files[segment]:
            when = ist(r["lExpiryDate"], segment)
            assert (when.hour, when.minute) == (hour, minute)
            assert when.date() == expiry_of[segment, r["pSymbol"]]
            assert r["pExpiryDate"] == r["lExpiryDate"]


def test_weekly_and_monthly_option_symbols(catalog: list[SandboxScrip]) -> None:
    nfo = by_symbol(catalog, "nse_fo")
    # 15 Sep 2026 is a Tuesday: weeklies 15 and 22 Sep, monthly 29 Sep.
    assert nfo["NIFTY2691526000CE"].expiry == date(2026, 9, 15)
    assert nfo["NIFTY2692226000PE"].expiry == date(2026, 9, 22)
    assert nfo["NIFTY26SEP26000CE"].expiry == date(2026, 9, 29)
    assert nfo["NIFTY26SEPFUT"].expiry == date(2026, 9, 29)
    assert nfo["BANKNIFTY26SEP59000PE"].strike == Decimal(59000)
    assert nfo["RELIANCE26NOVFUT"].lot_size == 500
    weekly = re.compile(r"^NIFTY(\d\d)([1-9OND])(\d\d)(\d+)(CE|PE)$")
    monthly = re.compile(r"^NIFTY(\d\d)([A-Z]{3})(\d+)(CE|PE)$")
    for symbol, s in nfo.items():
        if s.symbol_name != "NIFTY" or s.inst_type != "OPTIDX":
            continue
        assert s.expiry is not None and s.strike is not None
        if m := weekly.match(symbol):
            yy, code, dd, strike, kind = m.groups()
            assert date(2000 + int(yy), "123456789OND".index(code) + 1, int(dd)) == s.expiry
        else:
            m = monthly.match(symbol)
            assert m is not None, symbol
            assert m.group(2) == s.expiry.strftime("%b").upper()
            strike, kind = m.group(3), m.group(4)
        assert (Decimal(strike), kind) == (s.strike, s.option_type)


@pytest.mark.parametrize(
    ("today", "symbol"),
    [
        (date(2026, 10, 1), "NIFTY26O0626000CE"),
        (date(2026, 11, 2), "NIFTY26N0326000PE"),
        (date(2026, 11, 30), "NIFTY26D0126000CE"),
        (date(2027, 1, 4), "NIFTY2710526000CE"),
    ],
)
def test_weekly_month_codes(today: date, symbol: str) -> None:
    assert symbol in by_symbol(build_catalog(today), "nse_fo")


def test_future_symbols_and_ref_keys(catalog: list[SandboxScrip]) -> None:
    for s in catalog:
        if s.option_type == "XX":
            assert s.expiry is not None
            month = s.expiry.strftime("%b").upper()
            assert s.trading_symbol == f"{s.symbol_name}{s.expiry:%y}{month}FUT"
    rows = {r["pTrdSymbol"]: r for r in rendered(catalog)["nse_fo"]}
    assert rows["NIFTY2692226000PE"]["pScripRefKey"] == "NIFTY22SEP2626000.00PE"
    assert rows["NIFTY26SEPFUT"]["pScripRefKey"].startswith("NIFTY29SEP26")
    assert "CRUDEOIL26OCTFUT" in by_symbol(catalog, "mcx_fo")


def test_lots_ticks_and_freeze_quantities(catalog: list[SandboxScrip]) -> None:
    rows = {(seg, r["pTrdSymbol"]): r for seg, rs in rendered(catalog).items() for r in rs}
    nifty = rows["nse_fo", "NIFTY26SEPFUT"]
    assert (nifty["lLotSize"], nifty["iLotSize"], nifty["lFreezeQty"]) == ("65", "65", "1801")
    assert nifty["pAssetCode"] == "26000"
    bank = rows["nse_fo", "BANKNIFTY26SEPFUT"]
    assert (bank["lLotSize"], bank["lFreezeQty"]) == ("30", "901")
    assert rows["nse_fo", "RELIANCE26SEPFUT"]["pAssetCode"] == "2885"
    assert rows["bse_fo", "SENSEX26SEPFUT"]["lLotSize"] == "20"
    usd = rows["cde_fo", "USDINR26SEPFUT"]
    assert (usd["dTickSize"], usd["lPrecision"], usd["lLotSize"]) == ("0.25", "4", "1000")
    crude = rows["mcx_fo", "CRUDEOIL26OCTFUT"]
    assert (crude["dTickSize"], crude["lLotSize"], crude["pExchange"]) == ("100", "100", "MCX")
    assert rows["mcx_fo", "CRUDEOILM26OCTFUT"]["lLotSize"] == "10"
    assert rows["mcx_fo", "GOLD26OCTFUT"]["lLotSize"] == "100"
    assert rows["nse_cm", "IDEA-EQ"]["dTickSize"] == "1"


def test_reference_prices_sit_on_the_tick_grid_inside_the_band(
    catalog: list[SandboxScrip],
) -> None:
    rows = {(seg, r["pSymbol"]): r for seg, rs in rendered(catalog).items() for r in rs}
    for s in catalog:
        assert s.ref_price > 0
        assert s.ref_price % s.tick_size == 0, s
        r = rows[s.segment, s.token]
        low = Decimal(r["dLowPriceRange"]) / 100
        high = Decimal(r["dHighPriceRange"]) / 100
        assert low <= s.ref_price <= high, s
        assert low % s.tick_size == 0 and high % s.tick_size == 0, s
        assert Decimal(r["pScripBasePrice"]) == s.ref_price


def test_derivative_rows_carry_the_f_and_o_constants(catalog: list[SandboxScrip]) -> None:
    for segment in ("nse_fo", "bse_fo", "cde_fo", "mcx_fo"):
        for r in rendered(catalog)[segment]:
            assert r["pGroup"] == "XX"
            assert r["pInstType"] == r["pInstName"] != ""
            assert r["pOptionType"] in ("CE", "PE", "XX")
            assert r["pISIN"] == ""
            assert r["pAssetCode"].isdigit()
            assert r["lMultiplier"] == "-1"
            assert r["dPriceNum"] == r["dPriceDen"] == r["dGenNum"] == r["dGenDen"] == "1"
            assert r["CASEligible"] == "false"
            if r["pOptionType"] == "XX":
                assert r["dStrikePrice"] == "-1"
            else:
                assert float(r["dStrikePrice"]) > 0


# --- the bulk catalog ---------------------------------------------------------------------------

BULK_ROWS = 60_000


@pytest.fixture(scope="module")
def bulk() -> tuple[list[SandboxScrip], float]:
    # CPU time, not wall time: the figure holds on a machine busy with other work.
    started = time.process_time()
    scrips = bulk_catalog(date(2026, 12, 30), BULK_ROWS)
    return scrips, time.process_time() - started


def test_bulk_size_proportions_and_speed(bulk: tuple[list[SandboxScrip], float]) -> None:
    scrips, seconds = bulk
    assert abs(len(scrips) - BULK_ROWS) <= BULK_ROWS // 100
    assert seconds < 2.0
    share = {seg: n / len(scrips) for seg, n in Counter(s.segment for s in scrips).items()}
    assert share["nse_fo"] == pytest.approx(0.55, abs=0.03)
    assert share["nse_cm"] == pytest.approx(0.15, abs=0.02)
    assert share["bse_cm"] == pytest.approx(0.15, abs=0.02)
    assert share["mcx_fo"] == pytest.approx(0.08, abs=0.02)
    assert share["bse_fo"] == pytest.approx(0.05, abs=0.02)
    assert share["cde_fo"] == pytest.approx(0.02, abs=0.01)
    assert all(s.expiry >= date(2026, 12, 30) for s in scrips if s.expiry is not None)


def test_bulk_is_unique_per_segment(bulk: tuple[list[SandboxScrip], float]) -> None:
    scrips, _ = bulk
    for segment in SEGMENTS:
        chosen = [s for s in scrips if s.segment == segment]
        assert len({s.token for s in chosen}) == len(chosen), segment
        assert len({s.trading_symbol for s in chosen}) == len(chosen), segment


def test_bulk_renders_quickly_in_the_same_format(bulk: tuple[list[SandboxScrip], float]) -> None:
    scrips, _ = bulk
    started = time.process_time()
    files = {segment: render_csv(scrips, segment) for segment in SEGMENTS}
    assert time.process_time() - started < 4.0
    total = 0
    for segment, text in files.items():
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == list(COLUMNS)
        assert all(len(row) == 79 for row in rows)
        assert {row[2] for row in rows[1:]} == {segment}
        total += len(rows) - 1
    assert total == len(scrips)
