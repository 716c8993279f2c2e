"""The bridge's Kotak client and Kotak's own SDK (kotakneoapi 3.0.9) put the same bytes on the
wire for every call both make.

Both log in to one sandbox account (two sessions) and make the same calls; the sandbox's
request log, which keeps each request target exactly as it came over the socket, is compared
call by call: method, the host it went to, the target (path and query; order numbers aside),
the ``Authorization`` header, whether the trade session (``Sid`` + ``Auth``) was presented, a
form body where there is one, and every ``jData`` key and value.

The differences that remain are deliberate and asserted as such:

* SL-M: the SDK sends ``pt: SL-M``, which Kotak rejects from API sessions; the bridge sends an
  SL with a limit one protection band beyond the trigger (wire.py).
* check-margin: the SDK adds its defaults ``brkName``/``brnchId`` and nulls for the bracket
  fields it does not use; the bridge sends only what the margin depends on, ``trgPrc`` "0"
  where the SDK sends null.
* Headers that change nothing at Kotak: the bridge adds ``neo-fin-key`` and ``Accept`` and
  sends no ``Content-Type`` on a GET; the SDK adds its tracing headers.
* An order without a tag: the SDK sends ``"ig": null``, the bridge leaves ``ig`` out (it
  always tags its orders anyway).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyotp
import pytest
from neo_api_client import NeoAPI

from bridge.clock import IST, ManualClock
from bridge.domain import (
    Exchange,
    Instrument,
    InstrumentKind,
    ModifyRequest,
    OrderRequest,
    OrderType,
    Product,
    Side,
)
from bridge.kotak.auth import AuthFlow
from bridge.kotak.instruments import InstrumentIndex, InstrumentStore
from bridge.kotak.sandbox import Sandbox, SandboxAccount, SandboxConfig, SandboxServer
from bridge.kotak.sandbox.app import RequestRecord
from bridge.kotak.sandbox.hosts import Role
from tests.conftest import Kotak, make_kotak
from tests.kotak.sdk import sdk_against

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=IST)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def sandbox(account: SandboxAccount, clock: ManualClock) -> Sandbox:
    return Sandbox([account], config=SandboxConfig(order_rate=0), clock=clock)


@pytest.fixture
def sdk(account: SandboxAccount, server: SandboxServer, clock: ManualClock, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[NeoAPI]:
    with sdk_against(server, account, tmp_path, monkeypatch) as client:
        totp = str(pyotp.TOTP(account.totp_secret).at(clock.now()))
        assert "data" in client.totp_login(mobile_number=f"+91{account.mobile}",
                                           ucc=account.ucc, totp=totp)
        assert "data" in client.totp_validate(mpin=account.mpin)
        yield client


@pytest.fixture
def ours(sandbox: Sandbox, account: SandboxAccount, server: SandboxServer,
         clock: ManualClock) -> Kotak:
    kotak = make_kotak(sandbox, account, server, AuthFlow.TOTP, clock=clock)
    kotak.login()
    return kotak


@pytest.fixture
def index(ours: Kotak, tmp_path: Path) -> InstrumentIndex:
    store = InstrumentStore(tmp_path / "scrip", ours.clock)
    store.refresh(ours.client)
    return store.current()


# --- what the wire carried ----------------------------------------------------------------


def wire(record: RequestRecord, names: dict[str, str]) -> dict[str, Any]:
    """What matters of one request, with order numbers and tags named rather than valued."""
    headers = {key.lower(): value for key, value in record.headers}
    target = record.target
    body: dict[str, Any] | None = json.loads(record.jdata) if record.jdata else None
    for value, name in names.items():
        target = target.replace(value, name)
        if body is not None:
            body = {k: (name if v == value else v) for k, v in body.items()}
    if body is not None:
        body = {k: v for k, v in body.items() if v is not None}
    return {
        "method": record.method, "host": record.role, "target": target,
        "authorization": headers.get("authorization"),
        "session": "sid" in headers and "auth" in headers,
        "form": ("x-www-form-urlencoded" in headers.get("content-type", "")
                 if record.method == "POST" else None),
        "jData": body,
    }


class Pair:
    """Runs one call through the SDK and through the bridge and keeps both requests."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def run(self, endpoint: str, sdk_call: Callable[[], Any], our_call: Callable[[], Any],
            names: dict[str, str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        before = len(self.sandbox.requests.snapshot(endpoint))
        sdk_answer = sdk_call()
        middle = self.sandbox.requests.snapshot(endpoint)
        our_call()
        after = self.sandbox.requests.snapshot(endpoint)
        assert len(middle) == before + 1, f"the SDK's {endpoint}: {sdk_answer!r}"
        assert len(after) == before + 2, f"the bridge's {endpoint}"
        assert middle[-1].status == after[-1].status == 200, (middle[-1], after[-1])
        return wire(middle[-1], names or {}), wire(after[-1], names or {})


@pytest.fixture
def pair(sandbox: Sandbox, sdk: NeoAPI, ours: Kotak) -> Pair:
    return Pair(sandbox)


def sbin() -> Instrument:
    return Instrument(Exchange.NSE, "SBIN-EQ", "SBIN", "3045", InstrumentKind.EQUITY, 1,
                      Decimal("0.05"), series="EQ")


def sdk_place(sdk: NeoAPI, *, order_type: str, price: str = "0", trigger: str = "0",
              symbol: str = "SBIN-EQ", segment: str = "nse_cm", product: str = "MIS",
              quantity: str = "1", tag: str) -> str:
    reply = sdk.place_order(exchange_segment=segment, product=product, price=price,
                            order_type=order_type, quantity=quantity, validity="DAY",
                            trading_symbol=symbol, transaction_type="B",
                            trigger_price=trigger, tag=tag)
    assert reply.get("stat") == "Ok", reply
    order_id: str = reply["nOrdNo"]
    return order_id


# --- orders -------------------------------------------------------------------------------


@pytest.mark.parametrize(("sdk_type", "ours_type", "price", "trigger"), [
    ("MKT", OrderType.MARKET, None, None),
    ("L", OrderType.LIMIT, "820.5", None),
    ("SL", OrderType.SL, "861", "860"),
])
def test_place_is_byte_for_byte_the_sdks(pair: Pair, sdk: NeoAPI, ours: Kotak, sdk_type: str,
                                         ours_type: OrderType, price: str | None,
                                         trigger: str | None) -> None:
    request = OrderRequest(sbin(), Side.BUY, 1, Product.MIS, ours_type,
                           price=Decimal(price) if price else None,
                           trigger_price=Decimal(trigger) if trigger else None, tag="ours-1")

    theirs, mine = pair.run(
        "place",
        lambda: sdk_place(sdk, order_type=sdk_type, price=price or "0",
                          trigger=trigger or "0", tag="sdk-1"),
        lambda: ours.client.place_order(request), {"sdk-1": "<tag>", "ours-1": "<tag>"})

    assert mine == theirs
    assert mine["authorization"] == ours.account.consumer_key and mine["form"]
    assert mine["host"] == Role.TRADING.value


def test_an_nfo_future_goes_out_as_the_sdk_sends_it(pair: Pair, sdk: NeoAPI, ours: Kotak,
                                                    index: InstrumentIndex) -> None:
    future = index.resolve("NIFTY1!")
    lots = str(future.lot_size)

    theirs, mine = pair.run(
        "place",
        lambda: sdk_place(sdk, order_type="MKT", symbol=future.trading_symbol,
                          segment="nse_fo", product="NRML", quantity=lots, tag="sdk-fut"),
        lambda: ours.client.place_order(OrderRequest(future, Side.BUY, future.lot_size,
                                                     Product.NRML, tag="ours-fut")),
        {"sdk-fut": "<tag>", "ours-fut": "<tag>"})

    assert mine == theirs and mine["jData"]["es"] == "nse_fo"


def test_sl_m_is_the_one_deliberate_difference(pair: Pair, sdk: NeoAPI, ours: Kotak) -> None:
    request = OrderRequest(sbin(), Side.BUY, 1, Product.MIS, OrderType.SL_M,
                           trigger_price=Decimal("860"), tag="ours-slm")
    sdk_id: list[str] = []
    our_id: list[str] = []

    theirs, mine = pair.run(
        "place",
        lambda: sdk_id.append(sdk_place(sdk, order_type="SL-M", trigger="860", tag="sdk-slm")),
        lambda: our_id.append(ours.client.place_order(request)),
        {"sdk-slm": "<tag>", "ours-slm": "<tag>"})

    assert theirs["jData"]["pt"] == "SL-M" and theirs["jData"]["pr"] == "0"
    assert mine["jData"]["pt"] == "SL" and Decimal(mine["jData"]["pr"]) > Decimal("860")
    rest = {k: v for k, v in mine["jData"].items() if k not in ("pt", "pr")}
    assert rest == {k: v for k, v in theirs["jData"].items() if k not in ("pt", "pr")}
    rows = {row["nOrdNo"]: row for row in ours.sandbox.orders(ours.account.ucc)}
    assert rows[sdk_id[0]]["ordSt"] == "rejected"  # Kotak's answer to SL-M from the API
    assert rows[our_id[0]]["ordSt"] == "trigger pending"


def test_modify_and_cancel_match_the_sdk(pair: Pair, sdk: NeoAPI, ours: Kotak) -> None:
    sdk_id = sdk_place(sdk, order_type="L", price="820", tag="sdk-mod")
    our_id = ours.client.place_order(OrderRequest(sbin(), Side.BUY, 1, Product.MIS,
                                                  OrderType.LIMIT, price=Decimal("820"),
                                                  tag="ours-mod"))
    names = {sdk_id: "<order>", our_id: "<order>"}

    theirs, mine = pair.run(
        "modify",
        lambda: sdk.modify_order(order_id=sdk_id, price="821.5", order_type="L", quantity="2",
                                 validity="DAY"),
        lambda: ours.client.modify_order(ModifyRequest(our_id, sbin(), Side.BUY, 2,
                                                       OrderType.LIMIT, price=Decimal("821.5"))),
        names)
    assert mine == theirs

    theirs, mine = pair.run("cancel", lambda: sdk.cancel_order(order_id=sdk_id),
                            lambda: ours.client.cancel_order(our_id), names)
    assert mine == theirs


def test_order_reports_match_the_sdk(pair: Pair, sdk: NeoAPI, ours: Kotak) -> None:
    sdk_id = sdk_place(sdk, order_type="MKT", tag="sdk-rep")
    our_id = ours.client.place_order(OrderRequest(sbin(), Side.BUY, 1, Product.MIS,
                                                  tag="ours-rep"))
    names = {sdk_id: "<order>", our_id: "<order>"}

    calls: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        ("order", lambda: sdk.order_report(sdk_id), lambda: ours.client.order(our_id)),
        ("history", lambda: sdk.order_history(sdk_id),
         lambda: ours.client.order_history(our_id)),
        ("orders", sdk.order_report, ours.client.order_book),
        ("trades", sdk.trade_report, ours.client.trade_book),
        ("positions", sdk.positions, ours.client.positions),
        ("holdings", sdk.holdings, ours.client.holdings),
        ("limits", sdk.limits, ours.client.funds),
    ]
    for endpoint, theirs_call, our_call in calls:
        theirs, mine = pair.run(endpoint, theirs_call, our_call, names)
        assert mine == theirs, endpoint
        assert mine["authorization"] is None and mine["session"], endpoint
    assert ours.sandbox.requests.snapshot("positions")[-1].path == "/portfolio/v2/positions"


def test_check_margin_sends_what_the_margin_depends_on(pair: Pair, sdk: NeoAPI,
                                                       ours: Kotak) -> None:
    theirs, mine = pair.run(
        "margin",
        lambda: sdk.margin_required(exchange_segment="nse_cm", price="850", order_type="L",
                                    product="CNC", quantity="10", instrument_token="3045",
                                    transaction_type="B"),
        lambda: ours.client.margin(OrderRequest(sbin(), Side.BUY, 10, Product.CNC,
                                                OrderType.LIMIT, price=Decimal("850"))))

    sdk_only = {"brkName": "KOTAK", "brnchId": "ONLINE"}  # and nulls, dropped by wire()
    ours_only = {"trgPrc": "0"}  # the SDK's null: no trigger
    assert {k: v for k, v in mine["jData"].items() if k not in ours_only} == \
        {k: v for k, v in theirs["jData"].items() if k not in sdk_only}
    assert {k: mine["jData"][k] for k in ours_only} == ours_only
    assert {k: v for k, v in theirs.items() if k != "jData"} == \
        {k: v for k, v in mine.items() if k != "jData"}


def test_market_data_and_whatsmyip_match_the_sdk(pair: Pair, sdk: NeoAPI, ours: Kotak,
                                                 index: InstrumentIndex) -> None:
    nifty = index.get(Exchange.NSE, "Nifty 50")
    assert nifty is not None

    theirs, mine = pair.run(
        "quotes",
        lambda: sdk.quotes(instrument_tokens=[
            {"instrument_token": "3045", "exchange_segment": "nse_cm"},
            {"instrument_token": "Nifty 50", "exchange_segment": "nse_cm"}], quote_type="ltp"),
        lambda: ours.client.last_prices([sbin(), nifty]))
    assert mine == theirs
    assert mine["target"].endswith("/nse_cm|3045,nse_cm|Nifty%2050/ltp")
    assert mine["authorization"] == ours.account.consumer_key and not mine["session"]

    theirs, mine = pair.run("scrip-files", sdk.scrip_master, ours.client.scrip_files)
    assert mine == theirs

    theirs, mine = pair.run("client-ip", sdk.whatsmyip, ours.client.client_ip)
    assert mine == theirs and mine["host"] == Role.LOGIN.value
