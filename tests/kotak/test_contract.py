"""The client against the sandbox over real loopback sockets, for both login generations:
login, orders through their lifecycle, books, positions, funds and the scrip master."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bridge.clock import IST, next_midnight_ist
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
from bridge.kotak.auth import AuthFlow, jwt_claims
from bridge.kotak.errors import BrokerRejected, SessionInvalid
from bridge.kotak.instruments import InstrumentIndex, InstrumentStore
from bridge.kotak.sandbox import Rule
from tests.conftest import Kotak


@pytest.fixture
def index(kotak: Kotak, tmp_path: Path) -> InstrumentIndex:
    store = InstrumentStore(tmp_path / "scrip", kotak.clock)
    store.refresh(kotak.client)
    return store.current()


@pytest.fixture
def sbin(index: InstrumentIndex) -> Instrument:
    return index.resolve("NSE:SBIN")


def last_place_jdata(kotak: Kotak) -> dict[str, str]:
    sent = kotak.sandbox.requests.snapshot("place")[-1].jdata
    data: dict[str, str] = json.loads(sent)
    return data


def test_login_gives_a_session_until_midnight_ist_on_the_right_host(kotak: Kotak) -> None:
    session = kotak.sessions.current()
    assert session.flow is kotak.flow
    assert session.base_url == kotak.url
    assert session.expires_at == next_midnight_ist(session.created_at)
    assert jwt_claims(session.token)["scope"] == ["Trade"]
    if kotak.flow is AuthFlow.OAUTH2:
        assert session.server_id == "server1"
        assert session.bearer and session.bearer_expires_at is not None


def test_market_order_is_placed_filled_and_shows_in_every_book(kotak: Kotak,
                                                               sbin: Instrument) -> None:
    order_id = kotak.client.place_order(
        OrderRequest(sbin, Side.BUY, 10, Product.MIS, tag="alert-1"))

    assert len(order_id) == 15 and order_id.isdigit()
    (order,) = kotak.client.order_book()
    assert (order.order_id, order.status, order.tag) == (order_id, OrderStatus.COMPLETE,
                                                         "alert-1")
    assert order.filled_quantity == 10 and order.average_price == Decimal("850.00")
    (position,) = kotak.client.positions()
    assert (position.trading_symbol, position.product, position.net_quantity) == (
        "SBIN-EQ", "MIS", 10)
    assert position.average_price == Decimal("850")
    (fill,) = kotak.client.trade_book()
    assert (fill.order_id, fill.quantity, fill.price, fill.tag) == (
        order_id, 10, Decimal("850.00"), "alert-1")
    funds = kotak.client.funds()
    assert funds.margin_used == Decimal("1700.00")  # 20 % of Rs 8,500 for MIS
    assert funds.available == funds.cash - funds.margin_used


def test_place_sends_kotaks_exact_wire_form(kotak: Kotak, sbin: Instrument) -> None:
    kotak.client.place_order(OrderRequest(sbin, Side.SELL, 5, Product.CNC,
                                          OrderType.LIMIT, price=Decimal("851.50"), tag="t-9"))
    kotak.sandbox.seed_position(kotak.account.ucc, "NSE", "SBIN-EQ", "CNC", 5,
                                Decimal("800"))

    data = last_place_jdata(kotak)
    assert data == {"am": "NO", "dq": "0", "es": "nse_cm", "mp": "0", "pc": "CNC",
                    "pr": "851.5", "pt": "L", "qt": "5", "rt": "DAY", "tp": "0",
                    "ts": "SBIN-EQ", "tt": "S", "os": "NEOTRADEAPI", "ig": "t-9"}
    assert all(isinstance(value, str) for value in data.values())


def test_empty_books_are_empty_lists_not_errors(kotak: Kotak) -> None:
    assert kotak.client.order_book() == []
    assert kotak.client.trade_book() == []
    assert kotak.client.positions() == []
    assert kotak.client.order_history("261124000000999") == []


def test_limit_order_rests_then_fills_when_modified_to_a_marketable_price(
        kotak: Kotak, sbin: Instrument) -> None:
    order_id = kotak.client.place_order(OrderRequest(
        sbin, Side.BUY, 4, Product.MIS, OrderType.LIMIT, price=Decimal("800")))
    (resting,) = kotak.client.order_book()
    assert resting.status is OrderStatus.OPEN and resting.pending_quantity == 4

    kotak.client.modify_order(ModifyRequest(order_id, sbin, Side.BUY, 4, OrderType.LIMIT,
                                            price=Decimal("851")))

    history = kotak.client.order_history(order_id)
    assert history[0].status is OrderStatus.COMPLETE  # newest first
    assert [h.broker_status for h in history][-3:] == [
        "open pending", "validation pending", "put order req received"]
    assert "modify validation pending" in [h.broker_status for h in history]


def test_cancel_then_change_of_a_finished_order_is_refused_with_1021(
        kotak: Kotak, sbin: Instrument) -> None:
    order_id = kotak.client.place_order(OrderRequest(
        sbin, Side.BUY, 1, Product.MIS, OrderType.LIMIT, price=Decimal("800")))
    kotak.client.cancel_order(order_id)
    (cancelled,) = kotak.client.order_book()
    assert cancelled.status is OrderStatus.CANCELLED and cancelled.cancelled_quantity == 1

    with pytest.raises(BrokerRejected) as refused:
        kotak.client.cancel_order(order_id)
    assert refused.value.code == "1021"
    assert "already complete or cancelled" in refused.value.explanation

    with pytest.raises(BrokerRejected) as refused_modify:
        kotak.client.modify_order(ModifyRequest(order_id, sbin, Side.BUY, 1, OrderType.LIMIT,
                                                price=Decimal("801")))
    assert refused_modify.value.code == "1021"


def test_stop_loss_waits_for_its_trigger(kotak: Kotak, sbin: Instrument) -> None:
    kotak.client.place_order(OrderRequest(sbin, Side.BUY, 2, Product.MIS, OrderType.SL,
                                          price=Decimal("861"), trigger_price=Decimal("860")))
    assert kotak.client.order_book()[0].status is OrderStatus.TRIGGER_PENDING

    kotak.sandbox.set_price("NSE", "SBIN-EQ", Decimal("860.50"))

    (order,) = kotak.client.order_book()
    assert order.status is OrderStatus.COMPLETE
    assert order.average_price == Decimal("860.50")


def test_sl_m_goes_out_as_sl_with_a_protective_limit(kotak: Kotak, sbin: Instrument) -> None:
    kotak.client.place_order(OrderRequest(sbin, Side.SELL, 3, Product.MIS, OrderType.SL_M,
                                          trigger_price=Decimal("840")))

    data = last_place_jdata(kotak)
    assert (data["pt"], data["tp"], data["pr"]) == ("SL", "840", "835.8")  # 0.5 % below
    assert kotak.client.order_book()[0].status is OrderStatus.TRIGGER_PENDING


def test_market_order_is_shown_as_kotaks_protected_limit(kotak: Kotak,
                                                         sbin: Instrument) -> None:
    kotak.client.place_order(OrderRequest(sbin, Side.BUY, 1, Product.MIS))

    (order,) = kotak.client.order_book()
    assert last_place_jdata(kotak)["pt"] == "MKT"
    assert order.order_type == "L" and order.price == Decimal("854.25")
    assert order.status is OrderStatus.COMPLETE and order.average_price == Decimal("850.00")


def test_stuck_protected_limit_stays_open(kotak: Kotak, sbin: Instrument) -> None:
    kotak.sandbox.add_rule(Rule(action="stuck", symbol="SBIN-EQ", side="SELL"))
    kotak.sandbox.seed_position(kotak.account.ucc, "NSE", "SBIN-EQ", "MIS", 5, Decimal("850"))

    order_id = kotak.client.place_order(OrderRequest(sbin, Side.SELL, 5, Product.MIS))

    order = next(o for o in kotak.client.order_book() if o.order_id == order_id)
    assert order.status is OrderStatus.OPEN and order.price > Decimal("850")


def test_risk_rejection_comes_after_acceptance_with_the_reason(kotak: Kotak,
                                                               sbin: Instrument) -> None:
    kotak.sandbox.add_rule(Rule(action="reject", reason="circuit_limit", symbol="SBIN"))

    order_id = kotak.client.place_order(OrderRequest(sbin, Side.BUY, 1, Product.MIS))

    (order,) = kotak.client.order_history(order_id)[:1]
    assert order.status is OrderStatus.REJECTED
    assert "circuit limit" in order.rejection_reason


def test_insufficient_funds_rule_reads_like_kotaks_margin_rejection(
        kotak: Kotak, sbin: Instrument) -> None:
    kotak.sandbox.add_rule(Rule(action="reject", reason="insufficient_funds", side="BUY"))

    kotak.client.place_order(OrderRequest(sbin, Side.BUY, 10, Product.MIS))

    (order,) = kotak.client.order_book()
    assert order.status is OrderStatus.REJECTED
    assert order.rejection_reason == "RMS:Margin Exceeds,Required:1700.00, Available:0.00"


def test_insufficient_funds_is_a_real_margin_check(kotak: Kotak, sbin: Instrument) -> None:
    order_id = kotak.client.place_order(OrderRequest(sbin, Side.BUY, 2000, Product.CNC))

    (order,) = kotak.client.order_book()
    assert order.order_id == order_id and order.status is OrderStatus.REJECTED
    assert order.rejection_reason.startswith("RMS:Margin Exceeds")


@pytest.mark.parametrize(("reason", "code", "words"), [
    ("ip_not_whitelisted", "100008", "not whitelisted"),
    ("session_ip", "1037", "different IP address"),
    ("algo_not_allowed", "1017", "algo orders"),
])
def test_synchronous_refusals_carry_code_and_plain_explanation(
        kotak: Kotak, sbin: Instrument, reason: str, code: str, words: str) -> None:
    kotak.sandbox.add_rule(Rule(action="reject", reason=reason))

    with pytest.raises(BrokerRejected) as refused:
        kotak.client.place_order(OrderRequest(sbin, Side.BUY, 1, Product.MIS))

    assert refused.value.code == code
    assert words in refused.value.explanation
    assert kotak.client.order_book() == []


def test_whitelist_refuses_orders_from_other_addresses(kotak: Kotak, sbin: Instrument) -> None:
    kotak.sandbox.config.whitelist = ("203.0.113.7",)

    with pytest.raises(BrokerRejected) as refused:
        kotak.client.place_order(OrderRequest(sbin, Side.BUY, 1, Product.MIS))

    assert refused.value.code == "100008"
    assert kotak.client.positions() == []  # reads are not IP-restricted


def test_unknown_symbol_and_bad_lot_are_refused(kotak: Kotak, index: InstrumentIndex) -> None:
    nifty = index.resolve("NIFTY1!")
    bogus = Instrument(Exchange.NSE, "NOSUCH-EQ", "NOSUCH", "1", InstrumentKind.EQUITY, 1,
                       Decimal("0.05"))

    with pytest.raises(BrokerRejected) as unknown:
        kotak.client.place_order(OrderRequest(bogus, Side.BUY, 1, Product.MIS))
    with pytest.raises(BrokerRejected) as odd_lot:
        kotak.client.place_order(OrderRequest(nifty, Side.BUY, nifty.lot_size + 1,
                                              Product.NRML))

    assert unknown.value.code == "1009"
    assert odd_lot.value.code == "1010"


def test_derivative_order_and_position(kotak: Kotak, index: InstrumentIndex) -> None:
    future = index.resolve("NIFTY1!")
    assert future.kind is InstrumentKind.FUTURE and future.exchange is Exchange.NFO

    kotak.client.place_order(OrderRequest(future, Side.SELL, future.lot_size * 2,
                                          Product.NRML))

    (position,) = kotak.client.positions()
    assert position.exchange is Exchange.NFO
    assert position.net_quantity == -future.lot_size * 2
    assert position.lot_size == future.lot_size


def test_scrip_master_from_the_trading_host(kotak: Kotak, index: InstrumentIndex) -> None:
    files = kotak.client.scrip_files()
    assert {url.rsplit("/", 1)[-1] for url in files.urls} >= {"nse_cm-v1.csv", "nse_fo.csv",
                                                              "mcx_fo.csv"}
    assert all(url.startswith(kotak.files_url) for url in files.urls)
    crude = index.resolve("MCX:CRUDEOIL1!")
    assert crude.exchange is Exchange.MCX and crude.expiry is not None
    assert crude.expiry >= kotak.clock.now().astimezone(IST).date()


def test_funds_move_with_realised_profit(kotak: Kotak, sbin: Instrument) -> None:
    kotak.client.place_order(OrderRequest(sbin, Side.BUY, 10, Product.MIS))
    kotak.sandbox.set_price("NSE", "SBIN-EQ", Decimal("860"))
    kotak.client.place_order(OrderRequest(sbin, Side.SELL, 10, Product.MIS))

    funds = kotak.client.funds()
    (position,) = kotak.client.positions()
    assert position.net_quantity == 0
    assert position.pnl(Decimal("860")) == Decimal("100.00")
    assert funds.realised_pnl == Decimal("100.00")
    assert funds.margin_used == 0


def test_session_expiry_on_demand_is_session_invalid(kotak: Kotak) -> None:
    kotak.sandbox.expire_sessions()

    with pytest.raises(SessionInvalid) as stale:
        kotak.client.order_book()

    assert stale.value.code == ("100022" if kotak.flow is AuthFlow.TOTP else "10020")
    assert kotak.sessions.peek() is None  # dropped, so readiness shows it
    assert not kotak.sessions.status().valid


def test_history_rows_carry_our_tag_and_exchange_order_id(kotak: Kotak,
                                                          sbin: Instrument) -> None:
    order_id = kotak.client.place_order(OrderRequest(sbin, Side.BUY, 1, Product.MIS,
                                                     tag="findme"))
    newest = kotak.client.order_history(order_id)[0]
    assert newest.tag == "findme" and newest.exchange_order_id.startswith("1100000")
    assert newest.updated_at is not None
    assert newest.updated_at <= kotak.clock.now() + timedelta(seconds=1)
