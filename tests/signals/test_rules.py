"""Rules at the broker's door: trading hours, square-off time, kill switch, caps, freeze."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal
from typing import Any

from bridge.clock import ManualClock
from bridge.journal.rows import SignalStatus
from tests.signals.conftest import Bridge, weekday_at


def enforced(make_bridge: Any, clock: ManualClock, **settings: str) -> Bridge:
    bridge: Bridge = make_bridge(clock=clock, MARKET_HOURS="enforce", **settings)
    return bridge


def buy(bridge: Bridge, quantity: int = 1, **extra: Any) -> tuple[int, dict[str, Any]]:
    return bridge.signal(symbol="NSE:SBIN", action="BUY", quantity=quantity, **extra)


def test_outside_trading_hours_is_409_unless_amo(make_bridge: Any) -> None:
    clock = ManualClock(weekday_at(8, 0))
    bridge = enforced(make_bridge, clock)

    code, answer = buy(bridge)
    assert (code, answer["error"]["code"]) == (409, "outside_trading_hours")
    assert "09:15-15:30" in answer["error"]["message"]

    code, answer = buy(bridge, amo=True)
    assert (code, answer["status"]) == (200, "placed")
    assert bridge.placed()[0]["am"] == "YES"


def test_weekends_are_closed(make_bridge: Any) -> None:
    bridge = enforced(make_bridge, ManualClock(weekday_at(11, 0, weekday=5)))

    code, answer = buy(bridge)

    assert (code, answer["error"]["code"]) == (409, "market_closed")


def test_mcx_evening_session_differs_from_equity(make_bridge: Any) -> None:
    bridge = enforced(make_bridge, ManualClock(weekday_at(21, 0)))

    assert buy(bridge)[0] == 409
    code, answer = bridge.signal(symbol="MCX:CRUDEOIL1!", action="BUY", quantity=100,
                                 product="NRML")
    assert (code, answer["status"]) == (200, "placed")


def test_entries_stop_at_square_off_but_exits_go_through(make_bridge: Any) -> None:
    bridge = enforced(make_bridge, ManualClock(weekday_at(15, 16)))
    bridge.seed("SBIN-EQ", 10)

    code, answer = buy(bridge)
    assert (code, answer["error"]["code"]) == (409, "after_squareoff")

    code, answer = bridge.signal(symbol="NSE:SBIN", action="SELL", quantity=10,
                                 position_size=0)
    assert (code, answer["status"]) == (200, "placed")
    code, answer = bridge.signal(symbol="NSE:SBIN", action="SELL", quantity=4)
    assert (code, answer["status"]) == (409, "rejected")  # flat now: a sell would be an entry


def test_kill_switch_refuses_entries_and_lets_exits_out(bridge: Bridge) -> None:
    bridge.seed("SBIN-EQ", 10)
    bridge.services.journal.switches.set_kill_switch(True)

    code, answer = buy(bridge)
    assert (code, answer["error"]["code"]) == (409, "kill_switch")

    code, answer = bridge.signal(symbol="NSE:SBIN", action="SELL", quantity=25)
    assert (code, answer["status"]) == (200, "placed")
    assert answer["orders"][0]["quantity"] == 10  # the exit part only: never a new short
    assert bridge.net("SBIN-EQ") == 0
    events = bridge.services.journal.history.events_of(bridge.journaled(answer["alert_id"]).id)
    assert any("entry part refused" in e.detail for e in events)


def test_daily_caps_count_entries_and_never_block_exits(make_bridge: Any) -> None:
    bridge = make_bridge(MAX_ORDERS_PER_DAY="2")
    assert buy(bridge, 5, alert_id="c1")[0] == 200
    assert buy(bridge, 5, alert_id="c2")[0] == 200

    code, answer = buy(bridge, 5, alert_id="c3")
    assert (code, answer["error"]["code"]) == (409, "order_cap")

    code, answer = bridge.signal(symbol="NSE:SBIN", action="SELL", quantity=0,
                                 position_size=0, alert_id="c4")
    assert (code, answer["status"]) == (200, "placed")
    assert answer["orders"][0]["quantity"] == 10


def test_strategy_and_quantity_caps(make_bridge: Any) -> None:
    bridge = make_bridge(MAX_ORDERS_PER_STRATEGY="1", MAX_QUANTITY_PER_DAY="15")
    assert buy(bridge, 10, strategy="alpha")[0] == 200
    code, answer = buy(bridge, 1, strategy="alpha", alert_id="a2")
    assert answer["error"]["code"] == "strategy_cap" and code == 409

    code, answer = buy(bridge, 20, strategy="beta")
    assert (code, answer["error"]["code"]) == (409, "quantity_cap")
    assert buy(bridge, 15, strategy="beta", alert_id="b2")[0] == 200


def test_order_above_freeze_quantity_is_split_into_whole_lots(bridge: Bridge) -> None:
    nifty = bridge.services.instruments.current().resolve("NIFTY1!")
    quantity = 28 * nifty.lot_size  # one lot above the 1,755-unit cap
    # Margin enough for 28 lots of the future, so both slices stand.
    bridge.sandbox.add_account(dataclasses.replace(bridge.account, cash=Decimal(10**8)))

    code, answer = bridge.signal(symbol="NIFTY1!", action="BUY", quantity=quantity,
                                 product="NRML")

    assert (code, answer["status"]) == (200, "placed")
    assert [o["quantity"] for o in answer["orders"]] == [1755, 65]
    assert [d["qt"] for d in bridge.placed()] == ["1755", "65"]
    assert len({o["tag"] for o in answer["orders"]}) == 2


def test_freeze_split_can_be_turned_off(make_bridge: Any) -> None:
    bridge = make_bridge(FREEZE_SPLIT="false")

    code, answer = bridge.signal(symbol="NIFTY1!", action="BUY", quantity=28 * 65,
                                 product="NRML")

    assert (code, answer["error"]["code"]) == (409, "freeze_quantity")
    assert bridge.placed() == []


def test_a_queued_signal_is_judged_when_it_is_sent(make_bridge: Any) -> None:
    clock = ManualClock(weekday_at(15, 14))
    bridge = enforced(make_bridge, clock, KOTAK_ORDER_RATE="1")
    assert buy(bridge, alert_id="q1")[0] == 200
    code, _ = buy(bridge, alert_id="q2")
    assert code == 202
    clock.advance(timedelta(seconds=90))  # square-off time passes while it waits

    row = bridge.wait_status("q2", SignalStatus.REJECTED, SignalStatus.PLACED)
    assert row.error is not None and row.error.code == "after_squareoff"
