"""What a new user trips on in the first hour, said where they look: the refusal's message
(what the dashboard and ``bridge signal`` show, since TradingView never shows the answer)
names the lot size and the quantities to use, quotes an unfilled placeholder whole, and a
limit price moved onto the tick says so."""

from __future__ import annotations

from typing import Any

from bridge.journal.signals import SignalStatus
from tests.dashboard.conftest import PASSWORD, sign_in
from tests.signals.conftest import Bridge


def test_a_future_off_the_lot_size_names_the_lot_and_the_quantities_to_use(
        make_bridge: Any) -> None:
    bridge: Bridge = make_bridge(ADMIN_PASSWORD=PASSWORD)
    code, answer = bridge.signal(symbol="NIFTY1!", action="BUY", quantity=50, product="NRML",
                                 alert_id="fut-50")
    assert (code, answer["status"]) == (422, "rejected")
    contract = bridge.journaled("fut-50").instrument or ""
    message = answer["error"]["message"]
    assert message.startswith("quantity 50 is not a whole number of lots: NFO:NIFTY")
    assert message.endswith("has a lot size of 65 (use 65 or 130)")
    assert "use 65 or 130" in answer["error"]["details"]["quantity"][0]
    row = bridge.journaled("fut-50")
    assert row.error is not None and row.error.message == message
    client = bridge.app.test_client()
    sign_in(client)
    page = client.get(f"/signals/{row.id}").get_data(as_text=True)
    assert "has a lot size of 65 (use 65 or 130)" in page, contract
    code, answer = bridge.signal(symbol="NIFTY1!", action="SELL", quantity=130,
                                 position_size=-100, product="NRML", alert_id="fut-target")
    assert code == 422
    assert answer["error"]["message"].endswith("has a lot size of 65 (use -65 or -130)")
    assert bridge.placed() == []


def test_an_unfilled_placeholder_is_quoted_whole_and_named(bridge: Bridge) -> None:
    code, answer = bridge.signal(symbol="NSE:SBIN", action="BUY", quantity=1,
                                 pricetype="LIMIT", price="{{strategy.order.price}}",
                                 alert_id="unfilled")
    assert (code, answer["status"]) == (422, "rejected")
    said = answer["error"]["details"]["price"][0]
    assert said.startswith("'{{strategy.order.price}}' is an unfilled TradingView placeholder")
    assert "alert created on a strategy" in said
    assert "'{{strategy.order.price}}' is an unfilled" in answer["error"]["message"]
    code, answer = bridge.signal(symbol="NSE:SBIN", action="BUY", quantity="{{ close }}",
                                 alert_id="unfilled-2")
    assert code == 422
    assert "'{{ close }}' is an unfilled TradingView placeholder" in \
        answer["error"]["details"]["quantity"][0]
    assert bridge.placed() == []


def test_a_limit_off_the_tick_is_rounded_the_safe_way_and_says_so(bridge: Bridge) -> None:
    code, answer = bridge.signal(symbol="NSE:SBIN", action="BUY", quantity=1,
                                 pricetype="LIMIT", price="851.03", alert_id="buy-off-tick")
    assert (code, answer["status"]) == (200, "placed")
    note = ("price 851.03 rounded to 851.00 (tick 0.05; a buy is rounded down, never paying "
            "more than asked)")
    assert answer["notes"] == [note]
    code, answer = bridge.signal(symbol="NSE:SBIN", action="SELL", quantity=1,
                                 pricetype="SL", price="849.02", trigger_price="849.97",
                                 alert_id="sell-off-tick")
    assert (code, answer["status"]) == (200, "placed")
    assert answer["notes"] == [
        "price 849.02 rounded to 849.05 (tick 0.05; a sell is rounded up, never selling for "
        "less than asked)",
        "trigger_price 849.97 rounded to 850.00 (tick 0.05; a sell is rounded up, so the stop "
        "fires no later than asked)"]
    buy, sell = bridge.placed()
    assert (buy["pr"], sell["pr"], sell["tp"]) == ("851", "849.05", "850")
    row = bridge.journaled("buy-off-tick")
    assert row.status is not SignalStatus.REJECTED
    assert note in [event.detail for event in bridge.services.journal.events_of(row.id)]
