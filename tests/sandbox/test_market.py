"""The sandbox's market: index rows and quotes, option chains on the exchanges' calendars,
the NIFTY 100 shares, and prices that walk (DESIGN.md section 4a)."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from werkzeug.test import Client

from bridge.clock import IST, ManualClock
from bridge.domain import Exchange, InstrumentKind
from bridge.kotak.instruments import InstrumentIndex, parse_scrip_csv
from bridge.kotak.sandbox import Sandbox, SandboxAccount, SandboxConfig
from bridge.kotak.sandbox.catalog import Catalog
from bridge.kotak.sandbox.scripmaster import SEGMENT_FILES, SandboxScrip

ACCOUNT = SandboxAccount.generate("MK123")
#: a Tuesday with a weekly NIFTY expiry, two weeks before September's monthly one
TUESDAY = date(2026, 9, 15)
#: the day after December's NSE monthly expiry; BSE's falls on the 31st
AFTER_EXPIRY = date(2026, 12, 30)

INDICES = {  # quote key -> (derivatives' name, level)
    ("nse_cm", "Nifty 50"): ("NIFTY", 26000),
    ("nse_cm", "Nifty Bank"): ("BANKNIFTY", 59000),
    ("nse_cm", "Nifty Fin Service"): ("FINNIFTY", 27500),
    ("nse_cm", "NIFTY MID SELECT"): ("MIDCPNIFTY", 13500),
    ("bse_cm", "SENSEX"): ("SENSEX", 85000),
    ("bse_cm", "BANKEX"): ("BANKEX", 66000),
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 9, 15, 10, 0, tzinfo=IST))


def make_sandbox(clock: ManualClock, **config: Any) -> Sandbox:
    return Sandbox([ACCOUNT], config=SandboxConfig(order_rate=0, **config), clock=clock)


@pytest.fixture
def walking(clock: ManualClock) -> Sandbox:
    return make_sandbox(clock, price_walk=True)


def price(sandbox: Sandbox, segment: str, symbol: str, at: datetime | None = None) -> Decimal:
    with sandbox.store.transaction() as state:
        found = sandbox.engine.price(state, segment, symbol, at or sandbox.clock.now())
    assert found is not None, symbol
    return found


def quotes(sandbox: Sandbox, keys: list[str]) -> Any:
    client = Client(sandbox)
    response = client.get(f"/script-details/1.0/quotes/neosymbol/{','.join(keys)}/all",
                          headers={"Authorization": ACCOUNT.consumer_key})
    assert response.status_code == 200
    return json.loads(response.get_data())


def options(catalog: Catalog, name: str) -> list[SandboxScrip]:
    return [s for s in catalog.all() if s.symbol_name == name and s.strike is not None]


# --- the calendar, written out independently of the catalogue ----------------------------------


def last_weekday(year: int, month: int, weekday: int) -> date:
    day = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return day - timedelta(days=(day.weekday() - weekday) % 7)


def monthlies(today: date, weekday: int, n: int) -> list[date]:
    found, year, month = [], today.year, today.month
    while len(found) < n:
        if (expiry := last_weekday(year, month, weekday)) >= today:
            found.append(expiry)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def weeklies(today: date, weekday: int, n: int) -> list[date]:
    first = today + timedelta(days=(weekday - today.weekday()) % 7)
    return [first + timedelta(weeks=i) for i in range(n)]


# family: (segment, expiry weekday, weekly?, lot, strike step, futures listed)
FAMILIES = {
    "NIFTY": ("nse_fo", 1, True, 65, 50, 3),
    "BANKNIFTY": ("nse_fo", 1, False, 30, 100, 3),
    "FINNIFTY": ("nse_fo", 1, False, 60, 50, 3),
    "MIDCPNIFTY": ("nse_fo", 1, False, 120, 25, 3),
    "SENSEX": ("bse_fo", 3, True, 20, 100, 2),
    "BANKEX": ("bse_fo", 3, False, 30, 100, 2),
}
LEVELS = {name: level for name, level in INDICES.values()}
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@pytest.mark.parametrize("today", [TUESDAY, AFTER_EXPIRY], ids=str)
@pytest.mark.parametrize("name", list(FAMILIES))
def test_index_chains_follow_the_exchanges_calendar(name: str, today: date) -> None:
    segment, weekday, weekly, lot, step, n_futures = FAMILIES[name]
    catalog = Catalog(today)
    months = monthlies(today, weekday, 3)
    expected = set(months) | (set(weeklies(today, weekday, 2)) if weekly else set())
    chain = options(catalog, name)

    assert {s.expiry for s in chain} == expected
    assert {s.segment for s in chain} == {segment}
    assert {s.lot_size for s in chain} == {lot}
    monthly = re.compile(rf"^{name}(\d\d)([A-Z]{{3}})(\d+)(CE|PE)$")
    weekly_form = re.compile(rf"^{name}(\d\d)([1-9OND])(\d\d)(\d+)(CE|PE)$")
    for s in chain:
        assert s.expiry is not None and s.strike is not None
        if s.expiry in months:
            match = monthly.match(s.trading_symbol)
            assert match is not None, s.trading_symbol
            assert match.group(2) == MONTHS[s.expiry.month - 1]
        else:
            match = weekly_form.match(s.trading_symbol)
            assert match is not None, s.trading_symbol
            assert int(match.group(3)) == s.expiry.day
        strike, kind = match.groups()[-2:]
        assert (Decimal(strike), kind) == (s.strike, s.option_type)
    for expiry in expected:
        strikes = sorted({s.strike for s in chain if s.expiry == expiry and s.strike})
        listed_step = 100 if name == "NIFTY" and expiry in months else step
        assert {b - a for a, b in itertools.pairwise(strikes)} == {Decimal(listed_step)}
        level = LEVELS[name]
        # The index sits inside the chain, with room for offsets up to 20 either way.
        assert len([k for k in strikes if k < level]) >= 20
        assert len([k for k in strikes if k > level]) >= 20
        assert level in strikes
        calls = {s.strike for s in chain if s.expiry == expiry and s.option_type == "CE"}
        assert calls == set(strikes)
    futures = sorted(s.expiry for s in catalog.all()
                     if s.symbol_name == name and s.inst_type == "FUTIDX" and s.expiry)
    assert futures == months[:n_futures]


def test_expiry_weekdays_on_a_monthly_expiry_day() -> None:
    # 29 Dec 2026 is December's last Tuesday: this week's NIFTY expiry is the monthly.
    catalog = Catalog(date(2026, 12, 29))
    nifty = {s.expiry: s.trading_symbol for s in options(catalog, "NIFTY")}
    assert sorted(nifty) == [date(2026, 12, 29), date(2027, 1, 5), date(2027, 1, 26),
                             date(2027, 2, 23)]
    assert nifty[date(2026, 12, 29)].startswith("NIFTY26DEC")
    assert nifty[date(2027, 1, 5)].startswith("NIFTY27105")
    sensex = sorted({s.expiry for s in options(catalog, "SENSEX") if s.expiry})
    assert sensex == [date(2026, 12, 31), date(2027, 1, 7), date(2027, 1, 28),
                      date(2027, 2, 25)]
    assert all(d.weekday() == 3 for d in sensex)


def test_the_first_listed_contracts_keep_their_tokens() -> None:
    catalog = Catalog(TUESDAY)
    futures = [s for s in catalog.all() if s.segment == "nse_fo" and s.option_type == "XX"]
    first = sorted(futures, key=lambda s: int(s.token))[:15]
    assert [s.symbol_name for s in first] == [
        name for name in ("NIFTY", "BANKNIFTY", "RELIANCE", "M&M", "BAJAJ-AUTO")
        for _ in range(3)]
    assert first[0].token == "35001"
    sensex = catalog.get("bse_fo", "SENSEX26SEPFUT")
    assert sensex is not None and sensex.token == "1100001"


def test_nifty_100_shares_on_both_exchanges() -> None:
    catalog = Catalog(TUESDAY)
    nse = {s.symbol_name for s in catalog.all() if s.segment == "nse_cm" and s.group == "EQ"}
    bse = {s.symbol_name for s in catalog.all() if s.segment == "bse_cm" and s.isin}
    assert len(nse) >= 100 and len(bse) >= 100
    assert {"BAJFINANCE", "ETERNAL", "ADANIENT", "IRFC", "RELIANCE", "HDFCBANK"} <= nse & bse
    # Renamed to ETERNAL in 2025: Kotak no longer lists it, so neither does the sandbox.
    assert "ZOMATO" not in nse | bse
    isin = re.compile(r"^INE[0-9A-Z]{9}$")
    assert all(isin.match(s.isin) for s in catalog.all() if s.isin)


def test_stock_options_and_futures_have_their_share() -> None:
    catalog = Catalog(TUESDAY)
    derivatives = [s for s in catalog.all() if s.inst_type in ("OPTSTK", "FUTSTK")]
    with_options = {s.symbol_name for s in derivatives if s.inst_type == "OPTSTK"}
    assert {"RELIANCE", "HDFCBANK", "ICICIBANK", "SBIN", "INFY", "TCS", "M&M",
            "BAJAJ-AUTO"} <= with_options
    for name in {s.symbol_name for s in derivatives}:
        share = catalog.get("nse_cm", f"{name}-EQ")
        assert share is not None, name
        futures = [s for s in derivatives if s.symbol_name == name and s.inst_type == "FUTSTK"]
        assert len(futures) == 3, name
    sbin = [s for s in derivatives if s.symbol_name == "SBIN"]
    assert {s.lot_size for s in sbin} == {750}
    chain = sorted({s.strike for s in sbin if s.strike and s.expiry == sbin[-1].expiry})
    assert len(chain) == 41 and chain[20] == 850 and chain[1] - chain[0] == 10
    assert len({s.expiry for s in sbin if s.strike}) == 2


def test_the_bridges_parser_reads_every_row() -> None:
    catalog = Catalog(TUESDAY)
    parsed = []
    for segment, path in SEGMENT_FILES.items():
        file = catalog.file(path)
        assert file is not None
        rows = parse_scrip_csv(segment, file)
        assert len(rows) == len([s for s in catalog.all() if s.segment == segment])
        parsed.extend(rows)
    index = InstrumentIndex(parsed, TUESDAY)
    for (segment, key), (name, _) in INDICES.items():
        exchange = Exchange.NSE if segment == "nse_cm" else Exchange.BSE
        row = index.get(exchange, key)
        assert row is not None and row.kind is InstrumentKind.INDEX, key
        derivatives = Exchange.NFO if segment == "nse_cm" else Exchange.BFO
        assert index.resolve(f"{name}1!", derivatives).symbol == name
    option = index.get(Exchange.BFO, "BANKEX26SEP66000PE")
    assert option is not None and option.kind is InstrumentKind.OPTION
    assert (option.strike, option.lot_size, option.expiry) == (66000, 30, date(2026, 9, 24))
    assert index.resolve("NSE:ETERNAL").isin == "INE758T01015"
    assert index.resolve("BSE:IRFC").exchange is Exchange.BSE


# --- quotes ----------------------------------------------------------------------------------


def test_every_index_quotes_by_its_exact_name(clock: ManualClock) -> None:
    sandbox = make_sandbox(clock)
    rows = quotes(sandbox, [f"{segment}|{key}" for segment, key in INDICES])

    assert {(r["exchange"], r["display_symbol"]): Decimal(r["ltp"]) for r in rows} == {
        key: Decimal(level) for key, (_, level) in INDICES.items()}
    # Exact and case-sensitive, as at Kotak.
    assert quotes(sandbox, ["nse_cm|Nifty Mid Select"])["stCode"] == 1009


def test_index_quotes_sit_at_the_money_of_their_chains(walking: Sandbox,
                                                       clock: ManualClock) -> None:
    clock.advance(timedelta(hours=4))
    catalog = walking.engine.catalog(clock.now().date())
    for (segment, key), (name, level) in INDICES.items():
        (row,) = quotes(walking, [f"{segment}|{key}"])
        ltp = Decimal(row["ltp"])
        assert ltp != level  # it walked
        chain = options(catalog, name)
        nearest = min(s.expiry for s in chain if s.expiry)
        step = FAMILIES[name][4]
        atm = min((s.strike for s in chain if s.strike and s.expiry == nearest),
                  key=lambda k: abs(k - ltp))
        assert abs(atm - ltp) <= step / 2
        assert Decimal(row["ohlc"]["low"]) <= ltp <= Decimal(row["ohlc"]["high"])
        assert Decimal(row["ohlc"]["close"]) == level


# --- the walk --------------------------------------------------------------------------------


def test_prices_stay_put_with_the_walk_off(clock: ManualClock) -> None:
    sandbox = make_sandbox(clock)
    future = sandbox.engine.catalog(TUESDAY).get("nse_fo", "NIFTY26SEPFUT")
    assert future is not None
    before = price(sandbox, "nse_cm", "Nifty 50"), price(sandbox, "nse_fo", "NIFTY26SEPFUT")
    clock.advance(timedelta(hours=3))
    after = price(sandbox, "nse_cm", "Nifty 50"), price(sandbox, "nse_fo", "NIFTY26SEPFUT")
    assert before == after == (Decimal(26000), future.ref_price)


def test_the_walk_moves_prices_and_replays_from_its_seed(clock: ManualClock) -> None:
    first = make_sandbox(clock, price_walk=True)
    second = make_sandbox(clock, price_walk=True)
    other_seed = make_sandbox(clock, price_walk=True, walk_seed=7)
    moments = [clock.now() + timedelta(minutes=m) for m in (0, 7, 31, 95, 300)]
    symbols = [("nse_cm", "Nifty 50"), ("nse_cm", "SBIN-EQ"), ("bse_cm", "SBIN"),
               ("nse_fo", "NIFTY26SEPFUT"), ("mcx_fo", "CRUDEOIL26OCTFUT")]

    # Asked in another order (latest first), the same seed gives the same prices.
    walked = [[price(first, seg, sym, at) for seg, sym in symbols] for at in moments]
    replay = [[price(second, seg, sym, at) for seg, sym in symbols] for at in reversed(moments)]
    assert walked == replay[::-1]
    assert len({row[0] for row in walked}) == len(moments)  # the index moves
    assert len({row[1] for row in walked}) > 1 and len({row[4] for row in walked}) > 1
    assert walked != [[price(other_seed, seg, sym, at) for seg, sym in symbols]
                      for at in moments]
    for row in walked:
        nse, bse = row[1], row[2]
        assert abs(nse - bse) <= Decimal("0.10")  # one share, one walk, two tick grids
        assert row[3] > row[0]  # the future keeps its carry over the index


def test_another_process_walks_the_same_way(clock: ManualClock) -> None:
    # Paper mode's workers are separate processes: the walk must not hang on anything a
    # process draws for itself, such as Python's string hashing.
    at = clock.now() + timedelta(minutes=42)
    config = SandboxConfig()
    walk = f"PriceWalk({config.walk_seed}, {config.walk_step_s}, {config.walk_volatility}, True)"
    script = (
        "import sys; from datetime import datetime; from bridge.kotak.sandbox.market import "
        f"PriceWalk; at = datetime.fromisoformat(sys.argv[1]); "
        f"print(repr({walk}.level('NIFTY', at).now))")
    done = subprocess.run([sys.executable, "-c", script, at.isoformat()], check=True,
                          capture_output=True, text=True, env={**os.environ,
                                                               "PYTHONHASHSEED": "12345"})
    here = make_sandbox(clock, price_walk=True).engine.walk.level("NIFTY", at).now
    assert float(done.stdout) == here != 1.0


def test_futures_and_options_follow_their_underlying(walking: Sandbox) -> None:
    start = walking.clock.now()
    moments = [start + timedelta(minutes=m) for m in range(0, 600, 10)]
    levels = {at: price(walking, "nse_cm", "Nifty 50", at) for at in moments}
    up = max(levels, key=lambda at: levels[at])
    down = min(levels, key=lambda at: levels[at])
    assert levels[up] - levels[down] > 100
    for symbol, rises in (("NIFTY26SEP26000CE", True), ("NIFTY26SEP26000PE", False),
                          ("NIFTY26SEPFUT", True), ("NIFTY2692226500CE", True),
                          ("NIFTY2692225500PE", False)):
        high, low = price(walking, "nse_fo", symbol, up), price(walking, "nse_fo", symbol, down)
        assert (high > low) is rises, symbol
    tick = Decimal("0.05")
    for scrip in options(walking.engine.catalog(TUESDAY), "NIFTY"):
        premium = price(walking, "nse_fo", scrip.trading_symbol, up)
        assert premium >= tick and premium % tick == 0


def test_a_set_price_wins_and_its_derivatives_follow_it(walking: Sandbox,
                                                        clock: ManualClock) -> None:
    walking.set_price("NFO", "NIFTY26SEP26000CE", Decimal("321.15"))
    walking.set_price("NSE", "RELIANCE-EQ", Decimal("1500"))
    ce_before = price(walking, "nse_fo", "RELIANCE26SEP1500CE")
    pe_before = price(walking, "nse_fo", "RELIANCE26SEP1500PE")
    clock.advance(timedelta(hours=2))

    assert price(walking, "nse_fo", "NIFTY26SEP26000CE") == Decimal("321.15")
    assert price(walking, "nse_cm", "RELIANCE-EQ") == Decimal("1500")
    assert price(walking, "nse_fo", "RELIANCE26SEP1500CE") == ce_before
    walking.set_price("NSE", "RELIANCE-EQ", Decimal("1560"))
    assert price(walking, "nse_fo", "RELIANCE26SEP1500CE") > ce_before + 50
    assert price(walking, "nse_fo", "RELIANCE26SEP1500PE") < pe_before
    (row,) = quotes(walking, ["nse_cm|2885"])
    assert Decimal(row["ltp"]) == Decimal("1560")


def test_freezing_stops_the_walk_and_unfreezing_resumes_it(clock: ManualClock) -> None:
    frozen = make_sandbox(clock, price_walk=True)
    twin = make_sandbox(clock, price_walk=True)
    clock.advance(timedelta(minutes=30))
    at_freeze = price(frozen, "nse_cm", "Nifty 50")
    frozen.freeze_prices()
    assert not frozen.prices_walking
    clock.advance(timedelta(hours=1))
    assert price(frozen, "nse_cm", "Nifty 50") == at_freeze

    frozen.unfreeze_prices()
    assert price(frozen, "nse_cm", "Nifty 50") == at_freeze
    clock.advance(timedelta(minutes=10))
    # It goes on from where it stood: an hour behind its twin that never stopped.
    behind = clock.now() - timedelta(hours=1)
    assert price(frozen, "nse_cm", "Nifty 50") == price(twin, "nse_cm", "Nifty 50", behind)


def test_the_control_route_freezes_and_resumes(walking: Sandbox) -> None:
    client = Client(walking)

    assert json.loads(client.get("/_sandbox/walk").get_data()) == {"running": True}
    answer = client.post("/_sandbox/walk", json={"running": False})
    assert json.loads(answer.get_data()) == {"running": False}
    assert not walking.prices_walking
    client.post("/_sandbox/walk", json={"running": True})
    assert walking.prices_walking


def test_working_orders_fill_when_the_walk_reaches_them(clock: ManualClock) -> None:
    sandbox = make_sandbox(clock, price_walk=True, walk_volatility=0.05)
    start = clock.now()
    path = [(start + timedelta(minutes=m), price(sandbox, "nse_cm", "SBIN-EQ",
                                                 start + timedelta(minutes=m)))
            for m in range(0, 60)]
    low = min(p for _, p in path)
    first_reach = next(at for at, p in path if p <= low)
    assert low < path[0][1]
    with sandbox.store.transaction() as state:
        reply = sandbox.engine.place(state, ACCOUNT.ucc, {
            "am": "NO", "dq": "0", "es": "nse_cm", "mp": "0", "pc": "CNC", "pr": str(low),
            "pt": "L", "qt": "1", "rt": "DAY", "tp": "0", "ts": "SBIN-EQ", "tt": "B"},
            start)
    assert reply[1]["stat"] == "Ok"

    clock.set(first_reach - timedelta(minutes=1))
    assert [o["ordSt"] for o in sandbox.orders(ACCOUNT.ucc)] == ["open"]
    clock.set(first_reach)
    (order,) = sandbox.orders(ACCOUNT.ucc)
    assert order["ordSt"] == "complete" and Decimal(order["avgPrc"]) <= low


def test_late_prices_are_not_replayed_from_midnight(walking: Sandbox) -> None:
    # 300 prices late in the day, a second apart: replaying 80,000 steps of the walk for
    # each would take minutes, not a fraction of a second.
    late = datetime(2026, 9, 15, 22, 0, tzinfo=IST)
    started = time.perf_counter()
    for second in range(300):
        price(walking, "nse_fo", "NIFTY26SEP26000CE", late + timedelta(seconds=second))
    assert time.perf_counter() - started < 1.0
