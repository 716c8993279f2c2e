"""Where the bridge's own Kotak client follows Kotak's SDK (kotakneoapi 3.0.9) because live
trading depends on it: the positions path, the access token on order calls, a login without
a baseUrl, the calls the SDK has that the bridge needs (one order, holdings, margin, the IP
Kotak sees), the 1.x modify body, and Kotak's unhelpful codes in plain words."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest

from bridge.domain import (
    Exchange,
    Instrument,
    InstrumentKind,
    ModifyRequest,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
)
from bridge.kotak import wire
from bridge.kotak.auth import AuthFlow
from bridge.kotak.errors import BrokerRejected
from bridge.kotak.sandbox import Rule, Sandbox, SandboxAccount, SandboxConfig, SandboxServer
from bridge.kotak.sandbox.hosts import Role
from tests.conftest import Kotak, make_kotak


@pytest.fixture
def sbin() -> Instrument:
    # The sandbox's SBIN-EQ, as the scrip master lists it (token 3045, tick 5 paise).
    return Instrument(Exchange.NSE, "SBIN-EQ", "SBIN", "3045", InstrumentKind.EQUITY, 1,
                      Decimal("0.05"), series="EQ")


def headers_of(kotak: Kotak, endpoint: str) -> dict[str, str]:
    return dict(kotak.sandbox.requests.snapshot(endpoint)[-1].headers)


def test_order_calls_carry_the_access_token_beside_the_session(kotak: Kotak,
                                                               sbin: Instrument) -> None:
    order_id = kotak.client.place_order(OrderRequest(sbin, Side.BUY, 1, Product.MIS,
                                                     OrderType.LIMIT, price=Decimal("820")))
    kotak.client.modify_order(ModifyRequest(order_id, sbin, Side.BUY, 2, OrderType.LIMIT,
                                            price=Decimal("821")))
    kotak.client.cancel_order(order_id)
    kotak.client.order_book()

    for endpoint in ("place", "modify", "cancel"):
        sent = headers_of(kotak, endpoint)
        assert sent["Sid"] and sent["Auth"]
        if kotak.flow is AuthFlow.TOTP:
            assert sent["Authorization"] == kotak.account.consumer_key
            assert sent["Neo-Fin-Key"] == "neotradeapi"
        else:
            assert sent["Authorization"].startswith("Bearer ")
            assert sent["Neo-Fin-Key"] == wire.LEGACY_FIN_KEY
    # Reads present the session alone, as the SDK does.
    if kotak.flow is AuthFlow.TOTP:
        assert "Authorization" not in headers_of(kotak, "orders")


def test_the_sandbox_refuses_an_order_without_the_access_token(
        sandbox: Sandbox, account: SandboxAccount, server: SandboxServer,
        sbin: Instrument) -> None:
    import requests

    kotak = make_kotak(sandbox, account, server, AuthFlow.TOTP)
    kotak.login()
    session = kotak.sessions.current()
    form = wire.place_form(OrderRequest(sbin, Side.BUY, 1, Product.MIS))
    url = f"{session.base_url}/{wire.PLACE.current_path}"

    bare = requests.post(url, data=form, timeout=5,
                         headers=wire.trading_headers(session.token, session.sid))
    wrong = requests.post(url, data=form, timeout=5, headers=wire.trading_headers(
        session.token, session.sid, access_token="someone-elses-token"))

    assert bare.status_code == 400 and bare.json()["error"][0]["message"] == \
        "Required header not found."
    assert wrong.status_code == 401 and wrong.json()["errMsg"] == "Invalid access token"
    assert sandbox.orders(account.ucc) == []


def test_positions_are_read_where_the_sdk_reads_them(sandbox: Sandbox, account: SandboxAccount,
                                                     server: SandboxServer) -> None:
    # A Kotak that has retired the old path: the bridge must not depend on it.
    sandbox.config.retired_paths = ("quick/user/positions",)
    kotak = make_kotak(sandbox, account, server, AuthFlow.TOTP)
    kotak.login()
    sandbox.seed_position(account.ucc, "NSE", "SBIN-EQ", "MIS", 7, Decimal("800"))

    (position,) = kotak.client.positions()

    assert position.trading_symbol == "SBIN-EQ" and position.net_quantity == 7
    assert [r.path for r in sandbox.requests.snapshot("positions")] == [
        "/portfolio/v2/positions"]


def test_positions_fall_back_to_the_older_path_once_and_say_so(
        sandbox: Sandbox, account: SandboxAccount, server: SandboxServer,
        caplog: pytest.LogCaptureFixture) -> None:
    sandbox.config.retired_paths = ("portfolio/v2/positions",)
    kotak = make_kotak(sandbox, account, server, AuthFlow.TOTP)
    kotak.login()
    sandbox.seed_position(account.ucc, "NSE", "SBIN-EQ", "MIS", -3, Decimal("800"))

    with caplog.at_level(logging.WARNING, logger="bridge.kotak.client"):
        first = kotak.client.positions()
        second = kotak.client.positions()

    assert [p.net_quantity for p in first] == [p.net_quantity for p in second] == [-3]
    assert [(r.path, r.status) for r in sandbox.requests.snapshot("positions")] == [
        ("/portfolio/v2/positions", 404), ("/quick/user/positions", 200),
        ("/quick/user/positions", 200)]
    warned = [r.getMessage() for r in caplog.records if "positions" in r.getMessage()]
    assert len(warned) == 1 and "quick/user/positions" in warned[0]


def test_a_login_without_a_base_url_trades_on_the_login_host(
        account: SandboxAccount, caplog: pytest.LogCaptureFixture) -> None:
    sandbox = Sandbox([account], config=SandboxConfig(order_rate=0, omit_base_url=True))
    with SandboxServer(sandbox) as server:
        kotak = make_kotak(sandbox, account, server, AuthFlow.TOTP)
        with caplog.at_level(logging.WARNING, logger="bridge.kotak.auth"):
            kotak.login()
        sandbox.seed_position(account.ucc, "NSE", "SBIN-EQ", "MIS", 2, Decimal("800"))

        assert kotak.sessions.current().base_url == server.url
        assert [p.net_quantity for p in kotak.client.positions()] == [2]
        assert any("no trading host" in r.getMessage() for r in caplog.records)
        assert sandbox.requests.snapshot("positions")[-1].role == Role.LOGIN.value


def test_one_order_is_read_by_its_number(kotak: Kotak, sbin: Instrument) -> None:
    order_id = kotak.client.place_order(OrderRequest(sbin, Side.BUY, 3, Product.MIS,
                                                     OrderType.LIMIT, price=Decimal("820"),
                                                     tag="one-order"))

    found = kotak.client.order(order_id)
    missing = kotak.client.order("261130999999999")

    assert found is not None and found.order_id == order_id and found.tag == "one-order"
    assert found.status is OrderStatus.OPEN and found.quantity == 3
    assert missing is None
    if kotak.flow is AuthFlow.TOTP:
        assert kotak.requests_to("order") == 2 and kotak.requests_to("orders") == 0


def test_holdings_margin_and_the_address_kotak_sees(kotak: Kotak, sbin: Instrument) -> None:
    kotak.sandbox.seed_position(kotak.account.ucc, "NSE", "SBIN-EQ", "CNC", 0 + 10,
                                Decimal("840"))
    assert kotak.client.holdings() == []  # bought today: a position until it settles

    check = kotak.client.margin(OrderRequest(sbin, Side.BUY, 10, Product.CNC, OrderType.LIMIT,
                                             price=Decimal("850")))

    assert check.required == Decimal("8500") and check.accepted and check.shortfall == 0
    sent = json.loads(kotak.sandbox.requests.snapshot("margin")[-1].jdata)
    assert sent == {"exSeg": "nse_cm", "prc": "850", "prcTp": "L", "prod": "CNC", "qty": "10",
                    "tok": sbin.token, "trnsTp": "B", "trgPrc": "0"}
    if kotak.flow is AuthFlow.TOTP:
        assert kotak.client.client_ip() == "127.0.0.1"
        (asked,) = kotak.sandbox.requests.snapshot("client-ip")
        assert asked.role == Role.LOGIN.value


def test_holdings_show_shares_carried_from_an_earlier_day(
        account: SandboxAccount) -> None:
    from bridge.clock import ManualClock
    from tests.conftest import ist

    clock = ManualClock(ist("2026-11-24T10:00:00"))
    sandbox = Sandbox([account], config=SandboxConfig(order_rate=0), clock=clock)
    with SandboxServer(sandbox) as server:
        sandbox.seed_position(account.ucc, "NSE", "SBIN-EQ", "CNC", 10, Decimal("840"))
        clock.set(ist("2026-11-25T10:00:00"))
        kotak = make_kotak(sandbox, account, server, AuthFlow.TOTP, clock=clock)
        kotak.login()

        (held,) = kotak.client.holdings()

    assert (held.exchange, held.symbol, held.quantity, held.sellable_quantity) == (
        Exchange.NSE, "SBIN", 10, 10)
    assert held.average_price == Decimal("840")


def test_the_legacy_modify_restates_the_order_as_the_1x_client_does(
        sandbox: Sandbox, account: SandboxAccount, server: SandboxServer,
        sbin: Instrument) -> None:
    kotak = make_kotak(sandbox, account, server, AuthFlow.OAUTH2)
    kotak.login()
    order_id = kotak.client.place_order(OrderRequest(sbin, Side.SELL, 4, Product.CNC,
                                                     OrderType.LIMIT, price=Decimal("990")))

    kotak.client.modify_order(ModifyRequest(order_id, sbin, Side.SELL, 5, OrderType.LIMIT,
                                            price=Decimal("995")))

    sent = json.loads(sandbox.requests.snapshot("modify")[-1].jdata)
    assert sent == {"tk": sbin.token, "mp": "0", "pc": "CNC", "dd": "NA", "dq": "0",
                    "vd": "DAY", "ts": "SBIN-EQ", "tt": "S", "pr": "995", "pt": "L", "fq": "0",
                    "tp": "0", "qt": "5", "no": order_id, "es": "nse_cm", "am": "NO"}
    (row,) = sandbox.orders(account.ucc)
    assert (row["qty"], row["prc"]) == (5, "995.00")


@pytest.mark.parametrize(("reason", "code", "words"), [
    ("invalid_access_type", "100021", "BROKER_API_KEY"),
])
def test_kotaks_terse_refusals_read_in_plain_words(kotak: Kotak, sbin: Instrument, reason: str,
                                                   code: str, words: str) -> None:
    kotak.sandbox.add_rule(Rule("reject", reason=reason))

    with pytest.raises(BrokerRejected) as refused:
        kotak.client.place_order(OrderRequest(sbin, Side.BUY, 1, Product.MIS))

    assert refused.value.code == code and words in refused.value.explanation


def test_a_repeated_tag_is_refused_as_kotak_does_and_explained(kotak: Kotak,
                                                               sbin: Instrument) -> None:
    kotak.client.place_order(OrderRequest(sbin, Side.BUY, 1, Product.MIS, tag="same-tag"))

    with pytest.raises(BrokerRejected) as refused:
        kotak.client.place_order(OrderRequest(sbin, Side.BUY, 1, Product.MIS, tag="same-tag"))

    assert refused.value.code == "32" and refused.value.broker_message == "error from core"
    assert "tag already used today" in refused.value.explanation
    assert len(kotak.sandbox.orders(kotak.account.ucc)) == 1


def test_an_order_that_cannot_be_written_is_refused_before_sending(kotak: Kotak,
                                                                   sbin: Instrument) -> None:
    from bridge.kotak.errors import RequestInvalid

    with pytest.raises(RequestInvalid) as refused:
        kotak.client.place_order(OrderRequest(sbin, Side.BUY, 1, Product.MIS, OrderType.LIMIT,
                                              price=Decimal("0")))

    assert "nothing was sent" in refused.value.message
    assert kotak.requests_to("place") == 0
