"""Kotak's official Python SDK (``kotakneoapi`` 3.0.9, ``neo_api_client``) against the sandbox.

The sandbox claims to speak Kotak's wire protocol. The strongest evidence a second party can
give is Kotak's own client: this module runs the SDK *unchanged* over loopback against a
:class:`~bridge.kotak.sandbox.SandboxServer`, redirecting nothing but the SDK's host constants
(the login host ``mis.kotaksecurities.com`` and the feed-config service on
``lapi.kotaksecurities.com``); the trading host is whatever ``baseUrl`` the sandbox's
tradeApiValidate hands out, and the scrip-master CSV links are whatever its file list says, as
at Kotak.

Every public REST call a user makes is driven and checked in the shape a user reads it: the
TOTP login, whatsmyip, orders of every type on NSE cash and an NFO future (SL-M ends rejected,
as Kotak rejects it from API sessions), modify, cancel, the single-order report, order history,
the order and trade books, positions, holdings (a CNC position carried from the previous day),
limits, margin, the scrip master and scrip search, quotes of a stock and an index, and the
SDK's local logout. The sandbox's request log then proves each request reached the host Kotak
serves it on (a request to the wrong host would have answered 404) and that the quotes call
kept ``|`` and ``,`` literal in its path.

The SDK writes a log file into ``./logs`` when it is first imported, unless told not to, and
caches scrip CSVs and holdings under ``~/.kotak_neo``: the first is switched off by
tests/conftest.py and the caches go to the test's temporary directory (tests/kotak/sdk.py),
so nothing is written outside it. The sandbox runs on a manual clock (2026-11-25 10:00 IST,
the day after a CNC buy was seeded), so the run is deterministic; the TOTP is computed for
that time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyotp
import pytest
from neo_api_client import NeoAPI

from bridge.clock import IST, ManualClock
from bridge.kotak.sandbox import Sandbox, SandboxAccount, SandboxConfig, SandboxServer
from bridge.kotak.sandbox.app import RequestRecord
from bridge.kotak.sandbox.hosts import Role
from tests.kotak.sdk import sdk_against

#: the sandbox's day: the seeded CNC buy was made the day before, so it is a holding now
TODAY_10AM = datetime(2026, 11, 25, 10, 0, tzinfo=IST)
HELD_QUANTITY = 10
HELD_PRICE = Decimal("840.00")
SBIN = "SBIN-EQ"  # the sandbox's catalogue prices it at Rs 850.00, tick 0.05
SBIN_TOKEN = "3045"
#: the host each sandbox endpoint must have been reached on, once logged in
LOGIN_HOST_ENDPOINTS = frozenset({"login", "validate", "client-ip"})
FILES_HOST_ENDPOINTS = frozenset({"config", "scrip-file"})
PRE_SESSION_ENDPOINTS = frozenset({"scrip-files", "quotes"})


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(TODAY_10AM - timedelta(days=1))


@pytest.fixture
def sandbox(account: SandboxAccount, clock: ManualClock) -> Sandbox:
    """The default sandbox (no order rate limit) on a manual clock, holding CNC shares bought
    yesterday: the book rolls over at the first call of the new day and carries them."""
    sandbox = Sandbox([account], config=SandboxConfig(order_rate=0), clock=clock)
    sandbox.seed_position(account.ucc, "NSE", SBIN, "CNC", HELD_QUANTITY, HELD_PRICE)
    clock.advance(timedelta(days=1))
    return sandbox


@pytest.fixture
def sdk(account: SandboxAccount, server: SandboxServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[NeoAPI]:
    """The SDK as a user creates it, its Kotak host constants pointed at the sandbox."""
    with sdk_against(server, account, tmp_path, monkeypatch) as client:
        yield client


@pytest.fixture
def client(sdk: NeoAPI, account: SandboxAccount, clock: ManualClock) -> NeoAPI:
    """A client through both steps of the TOTP login."""
    login = sdk.totp_login(mobile_number=f"+91{account.mobile}", ucc=account.ucc,
                           totp=totp_at(account, clock))
    assert login.get("data", {}).get("kType") == "View", login
    validate = sdk.totp_validate(mpin=account.mpin)
    assert validate.get("data", {}).get("kType") == "Trade", validate
    return sdk


# --- helpers ------------------------------------------------------------------------------


def totp_at(account: SandboxAccount, clock: ManualClock) -> str:
    """The code an authenticator shows at the sandbox's time (it checks TOTPs against it)."""
    return str(pyotp.TOTP(account.totp_secret).at(clock.now()))


def place(client: NeoAPI, *, order_type: str, price: str = "0", trigger: str = "0",
          symbol: str = SBIN, segment: str = "nse_cm", product: str = "CNC",
          quantity: str = "1", side: str = "B", tag: str | None = None) -> str:
    """Place an order through the SDK; assert Kotak's synchronous "Ok"; return nOrdNo."""
    reply = client.place_order(exchange_segment=segment, product=product, price=price,
                               order_type=order_type, quantity=quantity, validity="DAY",
                               trading_symbol=symbol, transaction_type=side,
                               trigger_price=trigger, tag=tag)
    assert reply.get("stat") == "Ok", reply
    assert reply.get("stCode") == 200, reply
    order_id = reply.get("nOrdNo")
    assert isinstance(order_id, str), reply
    assert order_id, reply
    return order_id


def one_order(client: NeoAPI, order_id: str) -> dict[str, Any]:
    """The single-order report (``order_report(order_id)``): the book's envelope, one row."""
    reply = client.order_report(order_id)
    assert reply.get("stat") == "Ok", reply
    rows = reply.get("data")
    assert isinstance(rows, list), reply
    assert len(rows) == 1, reply
    row: dict[str, Any] = rows[0]
    assert row["nOrdNo"] == order_id
    return row


def nearest_nifty_future(client: NeoAPI) -> dict[str, Any]:
    """The nearest NIFTY future, found the way a user finds it: the SDK's scrip search."""
    found = client.search_scrip("nse_fo", "NIFTY", option_type="FUT")
    assert isinstance(found, list), found
    futures = [row for row in found if str(row["pSymbolName"]).strip() == "NIFTY"]
    assert futures, found
    for row in futures:
        assert row["pOptionType"] == "xx"  # the SDK lowercases it while filtering
        assert str(row["pTrdSymbol"]).endswith("FUT")
    nearest: dict[str, Any] = min(futures, key=lambda row: int(row["lExpiryDate"]))
    return nearest


def expected_role(endpoint: str, logged_in: bool) -> Role:
    if endpoint in LOGIN_HOST_ENDPOINTS:
        return Role.LOGIN
    if endpoint in FILES_HOST_ENDPOINTS:
        return Role.FILES
    if endpoint in PRE_SESSION_ENDPOINTS and not logged_in:
        return Role.LOGIN
    return Role.TRADING


def assert_routed(sandbox: Sandbox, *, logged_in: bool = True) -> list[RequestRecord]:
    """Every request the SDK sent matched a route, on the host Kotak serves it from."""
    records = sandbox.requests.snapshot()
    assert records
    for record in records:
        where = f"{record.method} {record.target} on the {record.role} host"
        assert record.endpoint, f"{where}: no such route"
        assert record.status != 404, f"{where}: 404"
        assert record.role == expected_role(record.endpoint, logged_in), where
    return records


def endpoints(sandbox: Sandbox) -> list[str]:
    return [record.endpoint for record in sandbox.requests.snapshot()]


# --- login --------------------------------------------------------------------------------


def test_totp_login_and_validate_set_the_session(sdk: NeoAPI, sandbox: Sandbox,
                                                 server: SandboxServer,
                                                 account: SandboxAccount,
                                                 clock: ManualClock) -> None:
    login = sdk.totp_login(mobile_number=f"+91{account.mobile}", ucc=account.ucc,
                           totp=totp_at(account, clock))

    data = login["data"]
    assert (data["kType"], data["status"], data["ucc"]) == ("View", "success", account.ucc)
    assert sdk.configuration.view_token == data["token"]
    assert sdk.configuration.sid == data["sid"]
    assert sdk.configuration.edit_token is None

    validate = sdk.totp_validate(mpin=account.mpin)

    data = validate["data"]
    assert (data["kType"], data["status"]) == ("Trade", "success")
    assert data["baseUrl"] == server.url_of(Role.TRADING)
    config = sdk.configuration
    assert config.base_url == server.url_of(Role.TRADING)
    assert (config.edit_token, config.edit_sid) == (data["token"], data["sid"])
    assert config.edit_token != config.view_token
    assert config.data_center == data["dataCenter"]
    assert endpoints(sandbox) == ["login", "validate", "config"]
    login_record, validate_record, config_record = assert_routed(sandbox)
    assert login_record.status == validate_record.status == 200
    # The feed-config lookup after validate is best effort in the SDK: check it succeeded.
    assert config_record.status == 200
    assert config_record.target.startswith("/5config/config?")


def test_whatsmyip_reports_the_loopback_address(client: NeoAPI, sandbox: Sandbox) -> None:
    reply = client.whatsmyip()

    assert reply.get("status") == "success", reply
    assert reply["data"][0]["ip"] == "127.0.0.1"
    assert endpoints(sandbox)[-1] == "client-ip"
    assert_routed(sandbox)


# --- orders -------------------------------------------------------------------------------


def test_market_order_completes(client: NeoAPI, sandbox: Sandbox) -> None:
    order_id = place(client, order_type="MKT")

    row = one_order(client, order_id)
    assert (row["ordSt"], row["trdSym"], row["exSeg"]) == ("complete", SBIN, "nse_cm")
    assert (row["fldQty"], row["avgPrc"]) == (1, "850.00")
    assert_routed(sandbox)


def test_limit_order_is_modified_then_cancelled(client: NeoAPI, sandbox: Sandbox) -> None:
    order_id = place(client, order_type="L", price="800.00")
    assert one_order(client, order_id)["ordSt"] == "open"

    modified = client.modify_order(order_id=order_id, price="805.50", order_type="L",
                                   quantity="2", validity="DAY")

    assert (modified.get("stat"), modified.get("nOrdNo")) == ("Ok", order_id), modified
    row = one_order(client, order_id)
    assert (row["ordSt"], row["prc"], row["qty"]) == ("open", "805.50", 2)

    cancelled = client.cancel_order(order_id=order_id)

    assert (cancelled.get("stat"), cancelled.get("nOrdNo")) == ("Ok", order_id), cancelled
    row = one_order(client, order_id)
    assert (row["ordSt"], row["fldQty"], row["cnlQty"]) == ("cancelled", 0, 2)
    assert_routed(sandbox)


def test_stop_loss_order_waits_for_its_trigger(client: NeoAPI, sandbox: Sandbox) -> None:
    order_id = place(client, order_type="SL", price="905.00", trigger="900.00")
    row = one_order(client, order_id)
    assert (row["ordSt"], row["prcTp"], row["trgPrc"]) == ("trigger pending", "SL", "900.00")

    sandbox.set_price("NSE", SBIN, Decimal("901.00"))

    row = one_order(client, order_id)
    assert (row["ordSt"], row["avgPrc"]) == ("complete", "901.00")
    assert_routed(sandbox)


def test_stop_loss_market_order_is_accepted_then_rejected(client: NeoAPI,
                                                          sandbox: Sandbox) -> None:
    """Kotak takes an SL-M from an API session ("Ok" and an order number), then the order
    ends rejected: market orders carrying an algo id are not allowed."""
    order_id = place(client, order_type="SL-M", trigger="900.00")

    row = one_order(client, order_id)
    assert row["ordSt"] == "rejected"
    assert row["rejRsn"] == "Market order with Algo Id not allowed"
    assert_routed(sandbox)


def test_nfo_future_order_completes(client: NeoAPI, sandbox: Sandbox) -> None:
    future = nearest_nifty_future(client)
    symbol, lot = str(future["pTrdSymbol"]), str(future["lLotSize"])

    order_id = place(client, order_type="MKT", symbol=symbol, segment="nse_fo",
                     product="NRML", quantity=lot)

    row = one_order(client, order_id)
    assert (row["ordSt"], row["trdSym"], row["exSeg"]) == ("complete", symbol, "nse_fo")
    assert str(row["fldQty"]) == lot
    assert_routed(sandbox)


def test_untagged_orders_are_all_accepted_and_a_tag_is_echoed(client: NeoAPI,
                                                              sandbox: Sandbox) -> None:
    """The SDK sends ``"ig": null`` in jData when no tag is given: that is no tag, so a
    second untagged order is no repeated tag. A tag given comes back as ``GuiOrdId``."""
    first = place(client, order_type="MKT")
    second = place(client, order_type="MKT")
    tagged = place(client, order_type="MKT", tag="sdk-conformance")

    assert len({first, second, tagged}) == 3
    # No tag is no tag: not Python's word for null (Kotak's servers are not Python).
    assert one_order(client, first)["GuiOrdId"] != "None"
    assert one_order(client, tagged)["GuiOrdId"] == "sdk-conformance"
    assert_routed(sandbox)


# --- books --------------------------------------------------------------------------------


def test_order_history_order_book_and_trade_book(client: NeoAPI, sandbox: Sandbox) -> None:
    # Tagged, so this test does not depend on how untagged orders are told apart (above).
    filled = place(client, order_type="MKT", tag="books-1")
    resting = place(client, order_type="L", price="800.00", tag="books-2")

    history = client.order_history(filled)

    rows = history["data"]["data"]
    assert history["data"]["stat"] == "Ok", history
    assert {row["nOrdNo"] for row in rows} == {filled}
    assert rows[0]["ordSt"] == "complete"  # newest first
    assert [row["ordSt"] for row in rows][-1] == "put order req received"

    book = client.order_report()

    assert book.get("stat") == "Ok", book
    states = {row["nOrdNo"]: row["ordSt"] for row in book["data"]}
    assert states == {filled: "complete", resting: "open"}

    trades = client.trade_report()

    assert str(trades.get("stat")).lower() == "ok", trades
    (fill,) = trades["data"]
    assert (fill["nOrdNo"], fill["trdSym"], fill["fldQty"]) == (filled, SBIN, 1)
    assert_routed(sandbox)


def test_positions_show_todays_buy_and_the_carried_shares(client: NeoAPI,
                                                         sandbox: Sandbox) -> None:
    place(client, order_type="MKT", quantity="2")

    reply = client.positions()

    assert str(reply.get("stat")).lower() == "ok", reply
    (row,) = reply["data"]
    assert (row["trdSym"], row["exSeg"], row["prod"]) == (SBIN, "nse_cm", "CNC")
    assert (row["cfBuyQty"], row["flBuyQty"]) == (str(HELD_QUANTITY), "2")
    assert_routed(sandbox)


def test_holdings_show_the_shares_bought_yesterday(client: NeoAPI, sandbox: Sandbox,
                                                   tmp_path: Path,
                                                   account: SandboxAccount) -> None:
    reply = client.holdings()

    (row,) = reply["data"]
    assert (row["displaySymbol"], row["exchangeSegment"]) == ("SBIN", "nse_cm")
    assert (row["quantity"], row["sellableQuantity"]) == (HELD_QUANTITY, HELD_QUANTITY)
    assert row["exchangeIdentifier"] == SBIN_TOKEN
    assert row["averagePrice"] == float(HELD_PRICE)
    # The SDK caches a good holdings reply for the day, in the directory it was given.
    assert list((tmp_path / "holdings_cache").glob(f"{account.ucc}_*.json"))
    assert_routed(sandbox)


def test_limits_and_margin(client: NeoAPI, sandbox: Sandbox) -> None:
    limits = client.limits()

    assert limits.get("stat") == "Ok", limits
    assert Decimal(limits["Net"]) > 0
    assert Decimal(limits["CollateralValue"]) > 0

    margin = client.margin_required(exchange_segment="nse_cm", price="850.00", order_type="L",
                                    product="CNC", quantity="10", instrument_token=SBIN_TOKEN,
                                    transaction_type="B")

    data = margin["data"]
    assert (data.get("stat"), data.get("rmsVldtd")) == ("Ok", "OK"), margin
    assert Decimal(data["ordMrgn"]) == Decimal("8500")  # CNC: the full value
    assert Decimal(data["insufFund"]) == 0
    assert_routed(sandbox)


# --- instruments and market data ----------------------------------------------------------


def test_scrip_master_lists_every_segment_file(client: NeoAPI, sandbox: Sandbox,
                                               server: SandboxServer) -> None:
    listing = client.scrip_master()

    files = listing["filesPaths"]
    assert listing["baseFolder"].startswith(server.url_of(Role.FILES))
    assert all(path.startswith(server.url_of(Role.FILES)) for path in files)
    for segment in ("nse_cm", "bse_cm", "nse_fo", "bse_fo", "cde_fo", "mcx_fo"):
        assert any(f"{segment}" in path.rsplit("/", 1)[-1] for path in files), segment

    nse_cm = client.scrip_master("nse_cm")

    assert isinstance(nse_cm, str), nse_cm
    assert nse_cm in files
    assert nse_cm.endswith(".csv")
    assert "nse_cm" in nse_cm
    assert_routed(sandbox)


def test_search_scrip_reads_the_downloaded_files(client: NeoAPI, sandbox: Sandbox,
                                                 tmp_path: Path) -> None:
    cash = client.search_scrip("nse_cm", "sbin")

    assert isinstance(cash, list), cash
    (row,) = [r for r in cash if r["pTrdSymbol"] == SBIN]
    assert (str(row["pSymbol"]), row["pExchSeg"]) == (SBIN_TOKEN, "nse_cm")

    future = nearest_nifty_future(client)

    assert future["pExchSeg"] == "nse_fo"
    assert int(future["lLotSize"]) > 0
    downloads = sandbox.requests.snapshot("scrip-file")
    assert [r.status for r in downloads] == [200, 200]
    assert {r.path.rsplit("/", 1)[-1] for r in downloads} == {"nse_cm-v1.csv", "nse_fo.csv"}
    cached = sorted(p.name.rsplit("_", 1)[0] for p in (tmp_path / "scrip_cache").iterdir())
    assert cached == ["nse_cm", "nse_fo"]
    assert_routed(sandbox)


def test_ltp_quotes_of_a_stock_and_an_index(client: NeoAPI, sandbox: Sandbox) -> None:
    sandbox.set_price("NSE", SBIN, Decimal("851.35"))

    stock = client.quotes([{"instrument_token": SBIN_TOKEN, "exchange_segment": "nse_cm"}],
                          quote_type="ltp")
    index = client.quotes([{"instrument_token": "Nifty 50", "exchange_segment": "nse_cm"}],
                          quote_type="ltp")

    assert isinstance(stock, list), stock
    (quote,) = stock
    assert (quote["exchange_token"], quote["exchange"]) == (SBIN_TOKEN, "nse_cm")
    assert Decimal(quote["ltp"]) == Decimal("851.35")
    assert isinstance(index, list), index
    (quote,) = index
    assert quote["display_symbol"] == "Nifty 50"
    assert Decimal(quote["ltp"]) == Decimal("26000")
    stock_call, index_call = sandbox.requests.snapshot("quotes")
    assert stock_call.target.endswith(f"/neosymbol/nse_cm|{SBIN_TOKEN}/ltp")
    assert index_call.target.endswith("/neosymbol/nse_cm|Nifty%2050/ltp")
    assert_routed(sandbox)


def test_full_quotes_of_two_instruments_carry_depth(client: NeoAPI, sandbox: Sandbox) -> None:
    reply = client.quotes([{"instrument_token": SBIN_TOKEN, "exchange_segment": "nse_cm"},
                           {"instrument_token": "2885", "exchange_segment": "nse_cm"}],
                          quote_type="all")

    assert isinstance(reply, list), reply
    assert [quote["exchange_token"] for quote in reply] == [SBIN_TOKEN, "2885"]
    for quote in reply:
        depth = quote["depth"]
        assert isinstance(depth, dict), quote
        assert isinstance(depth["buy"], list)
        assert isinstance(depth["sell"], list)
        assert depth["buy"]
        assert depth["sell"]
        assert Decimal(depth["buy"][0]["price"]) < Decimal(quote["ltp"])
        assert Decimal(depth["sell"][0]["price"]) > Decimal(quote["ltp"])
        assert set(quote["ohlc"]) == {"open", "high", "low", "close"}
    (record,) = sandbox.requests.snapshot("quotes")
    # The SDK keeps the delimiters literal, and Kotak splits on them as sent.
    assert record.target.endswith(f"/neosymbol/nse_cm|{SBIN_TOKEN},nse_cm|2885/all")
    assert "%7C" not in record.target.upper()
    assert "%2C" not in record.target.upper()
    assert_routed(sandbox)


def test_access_token_calls_work_before_login(sdk: NeoAPI, sandbox: Sandbox) -> None:
    """scrip_master and quotes need only the consumer key: without a session's baseUrl the
    SDK sends them to the login host, which serves them."""
    listing = sdk.scrip_master()
    quotes = sdk.quotes([{"instrument_token": SBIN_TOKEN, "exchange_segment": "nse_cm"}],
                        quote_type="ltp")

    assert listing.get("filesPaths"), listing
    assert isinstance(quotes, list), quotes
    assert quotes[0]["exchange_token"] == SBIN_TOKEN
    assert endpoints(sandbox) == ["scrip-files", "quotes"]
    assert_routed(sandbox, logged_in=False)


# --- logout -------------------------------------------------------------------------------


def test_logout_forgets_the_session_locally(client: NeoAPI, sandbox: Sandbox) -> None:
    before = len(sandbox.requests.snapshot())

    reply = client.logout()

    assert reply == {"State": "OK", "message": "You have been successfully logged out"}
    assert (client.configuration.edit_token, client.configuration.edit_sid) == (None, None)
    assert len(sandbox.requests.snapshot()) == before  # 3.x logs out without a request
    assert "Error Message" in client.order_report()
    assert len(sandbox.requests.snapshot()) == before
