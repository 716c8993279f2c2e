"""Scrip master: Kotak's real format in, lookups by every spelling a signal uses, and a cache
that is replaced whole or not at all."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bridge.clock import IST, ManualClock
from bridge.domain import Exchange, InstrumentKind
from bridge.kotak.instruments import (
    AmbiguousInstrument,
    InstrumentIndex,
    InstrumentStore,
    InstrumentsUnavailable,
    ScripMasterError,
    UnknownInstrument,
    parse_scrip_csv,
)
from bridge.kotak.sandbox import scripmaster
from bridge.kotak.wire import ScripFiles

TODAY = date(2026, 9, 15)

# Section 7.2's header and 7.4's rows, verbatim (trailing spaces and "dStrikePrice;").
HEADER = ("pSymbol,pGroup,pExchSeg,pInstType,pSymbolName,pTrdSymbol,pOptionType,pScripRefKey,"
          "pISIN,pAssetCode,pSubGroup,pCombinedSymbol,pDesc,pAmcCode,pContractId,dTickSize ,"
          "lLotSize,lExpiryDate ,lMultiplier ,lPrecision,dStrikePrice;,pExchange,pInstName,"
          "pExpiryDate,pIssueDate,pMaturityDate,pListingDate,pNoDelStartDate,pNoDelEndDate,"
          "pBookClsStartDate,pBookClsEndDate,pRecordDate,pCreditRating,pReAdminDate,"
          "pExpulsionDate,pLocalUpdateTime,pDeliveryUnits,pPriceUnits,pLastTradingDate,"
          "pTenderPeridEndDate,pTenderPeridStartDate,pSellVarMargin,pBuyVarMargin,"
          "pInstrumentInfo,pRemarksText,pSegment,pNav,pNavDate,pMfAmt,pSipSecurity,pFaceValue,"
          "pTrdUnits,pExerciseStartDate,pExerciseEndDate,pElmMargin,pVarMargin,"
          "pTotProposedLimitValue,pScripBasePrice,pSettlementType,pCurrectionTime,"
          "iPermittedToTrade,iBoardLotQty ,iMaxOrderSize ,iLotSize,dOpenInterest ,"
          "dHighPriceRange ,dLowPriceRange ,dPriceNum   ,dGenDen,dGenNum,dPriceQuatation ,"
          "dIssuerate ,dPriceDen,dWarningQty ,dIssueCapital ,dExposureMargin ,"
          "dMinRedemptionQty ,lFreezeQty,CASEligible")
NFO_ROW = ("56526,XX,nse_fo,OPTIDX,NIFTY,NIFTY2692221000PE,PE,NIFTY22SEP2621000.00PE,,26000,,,,"
           ",,5,65,1474554600,-1,2,2.1e+06,NSE,OPTIDX,1474554600,1471564800,1474554600,"
           "1471564800,0,0,0,0,0,,0,0,1472316328,,,,,,,,,,FO,,,,,,,1474502400,1474554600,,,,"
           "15.0000,Cash,,1,1,1801.00,65,0,2015,5,1,1,1,0,0,1,0,1e+12,1,0,1801,false")


def csv_bytes(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join((header, *rows)) + "\n").encode()


def test_documented_option_row_reads_as_the_doc_says() -> None:
    (pe,) = parse_scrip_csv("nse_fo", csv_bytes(NFO_ROW))

    assert (pe.token, pe.trading_symbol, pe.symbol) == ("56526", "NIFTY2692221000PE", "NIFTY")
    assert pe.kind is InstrumentKind.OPTION and pe.option_type == "PE"
    assert pe.lot_size == 65 and pe.tick_size == Decimal("0.05")
    assert pe.strike == Decimal(21000)
    assert pe.expiry == date(2026, 9, 22)  # NSE epoch: 1474554600 + 315513000 -> 22-Sep-2026
    assert pe.freeze_quantity == 1801 and pe.max_order_quantity == 1755  # 27 lots
    assert pe.exchange is Exchange.NFO


def test_the_older_78_column_file_still_reads() -> None:
    header = HEADER.rsplit(",", 1)[0]
    row = NFO_ROW.rsplit(",", 1)[0]

    (pe,) = parse_scrip_csv("nse_fo", csv_bytes(row, header=header))

    assert pe.trading_symbol == "NIFTY2692221000PE"


@pytest.mark.parametrize(("content", "words"), [
    (csv_bytes(NFO_ROW)[:-80], "fields"),
    (csv_bytes(NFO_ROW.replace("nse_fo", "bse_fo", 1)), "belongs to segment"),
    (csv_bytes(NFO_ROW, header=HEADER.replace("pTrdSymbol", "pTradingSym")), "missing columns"),
    (b"", "empty file"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (csv_bytes(), "no instruments"),
])
def test_broken_files_are_typed_errors(content: bytes, words: str) -> None:
    with pytest.raises(ScripMasterError) as broken:
        parse_scrip_csv("nse_fo", content)

    assert words in str(broken.value)


def test_a_few_unreadable_rows_are_skipped_but_many_fail_the_file() -> None:
    good = [NFO_ROW.replace("56526", str(60000 + i), 1) for i in range(200)]
    bad = NFO_ROW.replace(",5,65,", ",five,65,", 1)

    assert len(parse_scrip_csv("nse_fo", csv_bytes(*good, bad))) == 200
    with pytest.raises(ScripMasterError):
        parse_scrip_csv("nse_fo", csv_bytes(*good[:10], *[bad] * 5))


def test_unknown_segment_is_refused() -> None:
    with pytest.raises(ScripMasterError):
        parse_scrip_csv("bcs-fo", csv_bytes(NFO_ROW))


@pytest.fixture(scope="module")
def index() -> InstrumentIndex:
    catalog = scripmaster.build_catalog(TODAY)
    instruments = []
    for segment in scripmaster.SEGMENTS:
        content = scripmaster.render_csv(catalog, segment).encode()
        instruments.extend(parse_scrip_csv(segment, content))
    return InstrumentIndex(instruments, TODAY)


@pytest.mark.parametrize(("symbol", "exchange", "expected"), [
    ("SBIN-EQ", None, "NSE:SBIN-EQ"),
    ("SBIN", Exchange.NSE, "NSE:SBIN-EQ"),
    ("NSE:SBIN", None, "NSE:SBIN-EQ"),
    ("nse:sbin", None, "NSE:SBIN-EQ"),
    ("BSE:SBIN", None, "BSE:SBIN"),
    ("M_M", Exchange.NSE, "NSE:M&M-EQ"),
    ("NSE:BAJAJ_AUTO", None, "NSE:BAJAJ-AUTO-EQ"),
    ("NSE:GVT_D", None, "NSE:GVT&D-EQ"),
    ("RPOWER", Exchange.NSE, "NSE:RPOWER-EQ"),  # EQ preferred over the BE series
])
def test_signal_spellings_resolve(index: InstrumentIndex, symbol: str,
                                  exchange: Exchange | None, expected: str) -> None:
    found = index.resolve(symbol, exchange)

    assert f"{found.exchange}:{found.trading_symbol}" == expected


def test_continuous_futures_roll_to_the_nearest_unexpired(index: InstrumentIndex) -> None:
    first, second = index.resolve("NIFTY1!"), index.resolve("NSE:NIFTY2!")

    assert first.kind is InstrumentKind.FUTURE and first.exchange is Exchange.NFO
    assert first.expiry is not None and second.expiry is not None
    assert TODAY <= first.expiry < second.expiry
    assert index.resolve(first.trading_symbol) == first
    day_after_expiry = first.expiry + timedelta(days=1)
    assert index.resolve("NIFTY1!", on=day_after_expiry) == second
    crude = index.resolve("MCX:CRUDEOIL1!")
    assert crude.exchange is Exchange.MCX and crude.lot_size == 100


@pytest.mark.parametrize(("symbol", "exchange", "error", "words"), [
    ("SBIN", None, AmbiguousInstrument, "NSE:SBIN-EQ"),
    ("NOSUCH", Exchange.NSE, UnknownInstrument, "not in today's scrip master"),
    ("NIFTY", Exchange.NSE, UnknownInstrument, "NIFTY1!"),
    ("NIFTY9!", None, UnknownInstrument, "only"),
    ("XYZ:SBIN", None, UnknownInstrument, "unknown exchange prefix"),
    ("NSE:SBIN", Exchange.MCX, UnknownInstrument, "disagrees"),
    ("   ", None, UnknownInstrument, "empty"),
])
def test_lookups_that_cannot_be_answered_say_why(index: InstrumentIndex, symbol: str,
                                                 exchange: Exchange | None, error: type,
                                                 words: str) -> None:
    with pytest.raises(error) as failed:
        index.resolve(symbol, exchange)

    assert words in str(failed.value)


class FakeSource:
    """A scrip-master source serving files from memory (no HTTP involved here)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def scrip_files(self) -> ScripFiles:
        return ScripFiles("https://files.test",
                          tuple(f"https://files.test/{name}" for name in self.files))

    def download(self, url: str) -> bytes:
        return self.files[url.rsplit("/", 1)[-1]]


def catalog_files(day: date) -> dict[str, bytes]:
    # The lean market: these tests are about the store's files, not the market's size.
    catalog = scripmaster.build_catalog(day, lean=True)
    return {path.rsplit("/", 1)[-1]: scripmaster.render_csv(catalog, seg).encode()
            for seg, path in scripmaster.SEGMENT_FILES.items()}


def test_store_replaces_the_index_whole_or_not_at_all(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 9, 15, 8, 0, tzinfo=IST))
    store = InstrumentStore(tmp_path, clock)
    with pytest.raises(InstrumentsUnavailable):
        store.current()
    store.refresh(FakeSource({**catalog_files(TODAY), "nse_com.csv": b"old format"}))
    before = store.current()
    assert before.resolve("NIFTY1!").exchange is Exchange.NFO

    clock.advance(timedelta(days=1))
    broken = catalog_files(TODAY + timedelta(days=1))
    broken["nse_fo.csv"] = broken["nse_fo.csv"][:-500]
    with pytest.raises(ScripMasterError):
        store.refresh(FakeSource(broken))

    assert store.current() is before  # yesterday's stays in use until today's is whole
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "2026-09-15"]


def test_a_list_without_the_nse_files_is_refused(tmp_path: Path) -> None:
    files = catalog_files(TODAY)
    del files["nse_fo.csv"]
    store = InstrumentStore(tmp_path, ManualClock(datetime(2026, 9, 15, 8, tzinfo=IST)))

    with pytest.raises(ScripMasterError) as refused:
        store.refresh(FakeSource(files))

    assert "lacks nse_fo" in str(refused.value)


def test_another_process_picks_up_the_published_cache(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 9, 15, 8, 0, tzinfo=IST))
    InstrumentStore(tmp_path, clock).refresh(FakeSource(catalog_files(TODAY)))

    reader = InstrumentStore(tmp_path, clock)

    assert reader.current().resolve("NSE:SBIN").token == "3045"


def test_a_same_day_refresh_never_leaves_a_new_process_without_the_scrip_master(
        tmp_path: Path) -> None:
    """A worker taking its first signal while another process refreshes the same day (the
    scheduler's catch-up right after start) finds the old files or the new, never none."""
    clock = ManualClock(datetime(2026, 9, 15, 8, 0, tzinfo=IST))
    source = FakeSource(catalog_files(TODAY))
    writer = InstrumentStore(tmp_path, clock)
    writer.refresh(source)
    missing: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                InstrumentStore(tmp_path, clock).current()
            except InstrumentsUnavailable as exc:
                missing.append(str(exc))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    try:
        for _ in range(15):
            writer.refresh(source)
    finally:
        done.set()
        for thread in readers:
            thread.join(10)

    assert missing == []
    # What is kept: the day's name, the version in use and the one before it.
    assert len([p for p in tmp_path.iterdir() if p.name.startswith(".2026-09-15.")]) <= 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".staging", ".link"))]
