"""Multi-leg signals and split orders: what reaches Kotak, in what order, and what the caller,
the journal and the operator's notices say when a leg fails."""

from __future__ import annotations

from typing import Any

from bridge.journal.rows import SignalStatus
from bridge.kotak.sandbox import Rule
from tests.signals.conftest import Bridge


def basket(**extra: Any) -> dict[str, Any]:
    """Sell SBIN, buy INFY and RELIANCE: listed SELL first on purpose."""
    return {"strategy": "pairs", "legs": [
        {"symbol": "SBIN", "exchange": "NSE", "action": "SELL", "quantity": 5},
        {"symbol": "INFY", "exchange": "NSE", "action": "BUY", "quantity": 3},
        {"symbol": "RELIANCE", "exchange": "NSE", "action": "BUY", "quantity": 2},
    ], **extra}


def sent(bridge: Bridge) -> list[tuple[str, str, str]]:
    return [(order["ts"], order["tt"], order["qt"]) for order in bridge.placed()]


def test_legs_reach_kotak_buy_legs_first_as_one_signal(bridge: Bridge) -> None:
    http, answer = bridge.signal(alert_id="leg-1", **basket())

    assert (http, answer["status"]) == (200, "placed"), answer
    assert sent(bridge) == [("INFY-EQ", "B", "3"), ("RELIANCE-EQ", "B", "2"),
                            ("SBIN-EQ", "S", "5")]
    assert [o["symbol"] for o in answer["orders"]] == ["INFY-EQ", "RELIANCE-EQ", "SBIN-EQ"]
    row = bridge.journaled("leg-1")
    assert row.signal is not None and [leg.symbol for leg in row.signal.legs] == [
        "INFY-EQ", "RELIANCE-EQ", "SBIN-EQ"]
    assert len(bridge.services.journal.orders.orders_of(row.id)) == 3


def test_a_bad_leg_refuses_the_whole_signal_before_anything_is_sent(bridge: Bridge) -> None:
    legs = basket()["legs"]
    legs[2] = {"symbol": "NOSUCHSTOCK", "exchange": "NSE", "action": "BUY", "quantity": 2}

    http, answer = bridge.signal(alert_id="leg-bad", strategy="pairs", legs=legs)

    assert http == 422, answer
    assert "legs.2.symbol" in answer["error"]["details"], answer
    assert bridge.placed() == []


def test_a_leg_with_an_unknown_field_is_refused_naming_it(bridge: Bridge) -> None:
    http, answer = bridge.signal(alert_id="leg-typo", legs=[
        {"symbol": "SBIN", "action": "BUY", "quantity": 1, "pricetyp": "LIMIT"}])

    assert http == 422
    assert "legs.0.pricetyp" in answer["error"]["details"]
    assert "pricetype" in answer["error"]["details"]["legs.0.pricetyp"][0]
    assert bridge.placed() == []


def test_a_sell_leg_rejected_after_the_buy_legs_is_partial_and_told(bridge: Bridge) -> None:
    bridge.sandbox.add_rule(Rule(action="reject", reason="insufficient_funds", symbol="SBIN"))

    http, answer = bridge.signal(alert_id="leg-part", **basket())

    assert (http, answer["status"]) == (200, "partial"), answer
    assert answer["error"]["code"] == "partial"
    assert [o["status"] for o in answer["orders"]][2] == "rejected"
    assert bridge.net("INFY-EQ") == 3 and bridge.net("RELIANCE-EQ") == 2
    notices = [n for n in bridge.services.jobs.notices() if n.kind == "legs_partial"]
    assert len(notices) == 1
    assert "SELL 5 NSE:SBIN-EQ failed" in notices[0].text
    assert "BUY 3 NSE:INFY-EQ" in notices[0].text and "LEG_FAILURE=report" in notices[0].text


def test_unwind_closes_the_filled_legs(make_bridge: Any) -> None:
    bridge = make_bridge(LEG_FAILURE="unwind")
    bridge.sandbox.add_rule(Rule(action="reject", reason="insufficient_funds", symbol="SBIN"))

    http, answer = bridge.signal(alert_id="leg-unwind", **basket())

    assert (http, answer["status"]) == (200, "partial"), answer
    assert sent(bridge) == [("INFY-EQ", "B", "3"), ("RELIANCE-EQ", "B", "2"),
                            ("SBIN-EQ", "S", "5"), ("INFY-EQ", "S", "3"),
                            ("RELIANCE-EQ", "S", "2")]
    assert bridge.net("INFY-EQ") == 0 and bridge.net("RELIANCE-EQ") == 0
    row = bridge.journaled("leg-unwind")
    exits = [o for o in bridge.services.journal.orders.orders_of(row.id) if o.is_exit]
    assert [(o.trading_symbol, o.side) for o in exits] == [("INFY-EQ", "SELL"),
                                                         ("RELIANCE-EQ", "SELL")]
    notice = next(n for n in bridge.services.jobs.notices() if n.kind == "legs_partial")
    assert "Unwinding" in notice.text and "SELL 3 NSE:INFY-EQ" in notice.text


def test_the_same_basket_twice_is_one_set_of_orders(bridge: Bridge) -> None:
    first = bridge.signal(alert_id="leg-twice", **basket())
    again = bridge.signal(alert_id="leg-twice", **basket())

    assert first[1]["status"] == "placed"
    assert again[1]["status"] == "duplicate"
    assert len(bridge.placed()) == 3


def test_splitsize_sends_orders_of_at_most_that_size(bridge: Bridge) -> None:
    http, answer = bridge.signal(alert_id="split-1", symbol="SBIN", exchange="NSE",
                                 action="BUY", quantity=10, splitsize=3)

    assert (http, answer["status"]) == (200, "placed"), answer
    assert [q for _, _, q in sent(bridge)] == ["3", "3", "3", "1"]
    assert bridge.net("SBIN-EQ") == 10
    assert bridge.journaled("split-1").status is SignalStatus.PLACED


def test_splitsize_must_be_whole_lots(bridge: Bridge) -> None:
    http, answer = bridge.signal(alert_id="split-lots", symbol="NIFTY1!", action="BUY",
                                 quantity=130, splitsize=100, product="NRML")

    assert http == 422, answer
    assert "lot size 65" in answer["error"]["details"]["splitsize"][0]
    assert bridge.placed() == []
