"""Domain objects to Kotak's wire form and back, against the documented samples."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from bridge.clock import IST
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
    Validity,
)
from bridge.kotak import wire
from bridge.kotak.errors import ProtocolError
from bridge.kotak.protection import protected_limit

SBIN = Instrument(Exchange.NSE, "SBIN-EQ", "SBIN", "3045", InstrumentKind.EQUITY, 1,
                  Decimal("0.05"))
NIFTY_PE = Instrument(Exchange.NFO, "NIFTY2692221000PE", "NIFTY", "56526",
                      InstrumentKind.OPTION, 65, Decimal("0.05"), expiry=date(2026, 9, 22),
                      strike=Decimal(21000), option_type="PE", freeze_quantity=1801)


def jdata(form: dict[str, str]) -> dict[str, str]:
    assert list(form) == ["jData"]
    data: dict[str, str] = json.loads(form["jData"])
    return data


@pytest.mark.parametrize(("order", "expected"), [
    (OrderRequest(SBIN, Side.BUY, 10, Product.MIS),
     {"pt": "MKT", "pr": "0", "tp": "0", "tt": "B", "pc": "MIS", "qt": "10"}),
    (OrderRequest(SBIN, Side.SELL, 1, Product.CNC, OrderType.LIMIT, price=Decimal("850.50")),
     {"pt": "L", "pr": "850.5", "tp": "0", "tt": "S"}),
    (OrderRequest(SBIN, Side.BUY, 1, Product.MIS, OrderType.SL, price=Decimal("861.00"),
                  trigger_price=Decimal("860")), {"pt": "SL", "pr": "861", "tp": "860"}),
    (OrderRequest(NIFTY_PE, Side.SELL, 130, Product.NRML, validity=Validity.IOC, amo=True,
                  disclosed_quantity=65),
     {"es": "nse_fo", "ts": "NIFTY2692221000PE", "rt": "IOC", "am": "YES", "dq": "65"}),
])
def test_place_form(order: OrderRequest, expected: dict[str, str]) -> None:
    data = jdata(wire.place_form(order))

    assert expected.items() <= data.items()
    assert data["mp"] == "0" and data["os"] == "NEOTRADEAPI"
    assert all(isinstance(v, str) and v not in ("", "0.0") for v in data.values())


def test_tag_rides_in_ig_and_is_checked() -> None:
    assert jdata(wire.place_form(OrderRequest(SBIN, Side.BUY, 1, Product.MIS,
                                              tag="a1_b-2")))["ig"] == "a1_b-2"
    with pytest.raises(ValueError):
        wire.place_form(OrderRequest(SBIN, Side.BUY, 1, Product.MIS, tag="has space"))


@pytest.mark.parametrize("order", [
    OrderRequest(SBIN, Side.BUY, 0, Product.MIS),
    OrderRequest(SBIN, Side.BUY, 1, Product.MIS, OrderType.LIMIT),
    OrderRequest(SBIN, Side.BUY, 1, Product.MIS, OrderType.LIMIT, price=Decimal(0)),
    OrderRequest(SBIN, Side.BUY, 1, Product.MIS, OrderType.SL, price=Decimal(1)),
    OrderRequest(SBIN, Side.BUY, 1, Product.MIS, OrderType.SL_M),
])
def test_incomplete_orders_never_reach_the_wire(order: OrderRequest) -> None:
    with pytest.raises(ValueError):
        wire.place_form(order)


@pytest.mark.parametrize(("side", "trigger", "limit"), [
    (Side.BUY, Decimal("860"), "864.3"),   # 0.5 % above, rounded up to the tick
    (Side.SELL, Decimal("860"), "855.7"),  # 0.5 % below, rounded down
    (Side.BUY, Decimal("250"), "252.5"),   # 1 % band for Rs 100-500
    (Side.SELL, Decimal("50"), "49"),      # 2 % band below Rs 100
])
def test_sl_m_is_sent_as_sl_one_protection_band_beyond_the_trigger(
        side: Side, trigger: Decimal, limit: str) -> None:
    data = jdata(wire.place_form(OrderRequest(SBIN, side, 1, Product.MIS, OrderType.SL_M,
                                              trigger_price=trigger)))

    assert (data["pt"], data["pr"], data["tp"]) == ("SL", limit, wire.format_number(trigger))


def test_option_protection_uses_the_option_grid() -> None:
    assert protected_limit(NIFTY_PE, Side.BUY, Decimal("0.50")) == Decimal("0.60")
    assert protected_limit(NIFTY_PE, Side.SELL, Decimal("120")) == Decimal("117.60")
    assert protected_limit(NIFTY_PE, Side.SELL, Decimal("0.05")) == Decimal("0.05")


def test_modify_uses_kotaks_modify_keys() -> None:
    data = jdata(wire.modify_form(ModifyRequest("250122000612876", SBIN, Side.BUY, 2,
                                                OrderType.LIMIT, price=Decimal("3001"))))

    assert data == {"am": "NO", "dq": "0", "mp": "0", "no": "250122000612876", "pr": "3001",
                    "pt": "L", "qt": "2", "tp": "0", "vd": "DAY", "os": "NEOTRADEAPI"}


def test_cancel_and_report_bodies() -> None:
    assert jdata(wire.cancel_form("230120000017243")) == {"on": "230120000017243", "am": "NO"}
    assert jdata(wire.history_form("1")) == {"nOrdNo": "1"}
    assert jdata(wire.limits_form()) == {"seg": "ALL", "exch": "ALL", "prod": "ALL"}


@pytest.mark.parametrize(("value", "text"), [
    (Decimal("0"), "0"), (Decimal("0.00"), "0"), (Decimal("100.50"), "100.5"),
    (Decimal("1E+2"), "100"), (Decimal("0.0025"), "0.0025"), (7, "7"),
])
def test_numbers_are_spelt_as_kotak_accepts(value: Decimal | int, text: str) -> None:
    assert wire.format_number(value) == text


def test_order_row_from_the_documented_sample() -> None:
    row = {"nOrdNo": "250122000612876", "ordSt": "rejected", "stat": "rejected",
           "trdSym": "IDEA-EQ", "sym": "IDEA", "exSeg": "nse_cm", "tok": "14366",
           "prod": "CNC", "prc": "9.39", "avgPrc": "0.00", "trgPrc": "0.00", "prcTp": "L",
           "trnsTp": "B", "vldt": "DAY", "rejRsn": "RMS:Rule: Check circuit limit",
           "exOrdId": "NA", "hsUpTm": "2025/01/22 14:28:01", "GuiOrdId": "x1", "qty": 1,
           "fldQty": 0, "unFldSz": 0, "cnlQty": 0}

    order = wire.parse_order(row)

    assert order.status is OrderStatus.REJECTED and order.side is Side.BUY
    assert order.price == Decimal("9.39") and order.quantity == 1
    assert order.rejection_reason == "RMS:Rule: Check circuit limit"
    assert order.updated_at is not None and order.updated_at.tzinfo == IST


@pytest.mark.parametrize(("status", "expected"), [
    ("put order req received", OrderStatus.PENDING), ("open pending", OrderStatus.PENDING),
    ("trigger pending", OrderStatus.TRIGGER_PENDING), ("traded", OrderStatus.COMPLETE),
    ("cancelled after market order", OrderStatus.CANCELLED),
    ("something new", OrderStatus.OPEN), ("COMPLETE", OrderStatus.COMPLETE),
])
def test_status_words(status: str, expected: OrderStatus) -> None:
    row = {"nOrdNo": "1", "ordSt": status, "exSeg": "nse_cm", "trnsTp": "S"}
    assert wire.parse_order(row).status is expected


def test_position_row_with_string_quantities_and_carry_forward() -> None:
    row = {"actId": "ABCXYZ61", "brdLtQty": 225, "cfBuyAmt": "0.00", "cfSellAmt": "0.00",
           "cfBuyQty": "0", "cfSellQty": "0", "exSeg": "nse_fo", "buyAmt": "475200.00",
           "sellAmt": "0.00", "flBuyQty": "225", "flSellQty": "0", "prod": "NRML",
           "tok": "61304", "trdSym": "TCS26JULFUT", "sym": "TCS", "lotSz": "225",
           "multiplier": "1", "precision": "2", "prcNum": "1", "prcDen": "1", "genNum": "1",
           "genDen": "1"}

    position = wire.parse_position(row)

    assert position.net_quantity == 225 and position.exchange is Exchange.NFO
    assert position.average_price == Decimal("2112")
    assert position.pnl(Decimal("2120")) == Decimal("1800.00")


def test_funds_from_the_documented_limits_sample() -> None:
    body = {"Category": "CLIENT_SPECIAL", "CollateralValue": "38.19", "Collateral": "0",
            "MarginUsed": "18.78", "Net": "19.409999999999997", "RmsPayInAmt": "0",
            "RmsPayOutAmt": "0", "RealizedMtomPrsnt": "0", "UnrealizedMtomPrsnt": "0",
            "stCode": 200, "stat": "Ok"}

    funds = wire.parse_funds(body)

    assert funds.cash == Decimal("38.19") and funds.margin_used == Decimal("18.78")
    assert round(funds.available, 2) == Decimal("19.41")


def test_trade_row_has_no_token_and_is_read_by_symbol() -> None:
    row = {"nOrdNo": "1", "trdSym": "SBIN-EQ", "exSeg": "nse_cm", "trnsTp": "B",
           "prod": "MIS", "avgPrc": "850.00", "fldQty": 10, "flId": "7", "tok": "",
           "flDt": "22-Jan-2025", "flTm": "14:28:16", "GuiOrdId": "t"}

    trade = wire.parse_trade(row)

    assert trade.quantity == 10 and trade.price == Decimal("850.00")
    assert trade.filled_at is not None and trade.filled_at.hour == 14


@pytest.mark.parametrize("row", [
    {"nOrdNo": "1", "ordSt": "open", "exSeg": "xyz_fo", "trnsTp": "B"},
    {"nOrdNo": "1", "ordSt": "open", "exSeg": "nse_cm", "trnsTp": "X"},
    {"nOrdNo": "1", "ordSt": "open", "exSeg": "nse_cm", "trnsTp": "B", "qty": "ten"},
    {"nOrdNo": "1", "ordSt": "open", "exSeg": "nse_cm", "trnsTp": "B", "qty": "1.5"},
])
def test_garbage_rows_are_protocol_errors(row: dict[str, object]) -> None:
    with pytest.raises(ProtocolError):
        wire.parse_order(row)


def test_data_rows_must_be_a_list_of_objects() -> None:
    assert wire.data_rows({"stat": "Ok"}, "x") == []
    with pytest.raises(ProtocolError):
        wire.data_rows({"data": "oops"}, "x")


def test_login_reply_needs_token_and_sid() -> None:
    with pytest.raises(ProtocolError):
        wire.parse_login_reply({"data": {"token": "t"}})
    reply = wire.parse_login_reply({"data": {"token": "t", "sid": "s", "baseUrl":
                                             "https://e21.kotaksecurities.com",
                                             "status": "success", "kType": "Trade"}})
    assert reply.base_url == "https://e21.kotaksecurities.com"


def test_mobile_numbers_are_sent_with_plus_91() -> None:
    assert wire.normalise_mobile("9876543210") == "+919876543210"
    assert wire.normalise_mobile("+91 98765 43210") == "+919876543210"
    with pytest.raises(ValueError):
        wire.normalise_mobile("12345")
