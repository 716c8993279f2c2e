"""``position_scope``: a target position is the account's net position (the default, as
before) or only what the signal's strategy built; every ``noop`` says why in words, in the
answer, the journal and the dashboard."""

from __future__ import annotations

from typing import Any

from bridge.journal.rows import SignalStatus
from bridge.journal.strategy_position import SQUAREOFF_STRATEGY
from bridge.orders import squareoff
from tests.dashboard.conftest import PASSWORD, sign_in
from tests.signals.conftest import Bridge


def _target(bridge: Bridge, alert_id: str, size: int, action: str = "BUY",
            **fields: Any) -> tuple[int, dict[str, Any]]:
    return bridge.signal(symbol="NSE:SBIN", action=action, quantity=abs(size) or 1,
                         position_size=size, alert_id=alert_id, **fields)


def test_a_strategy_target_ignores_what_other_strategies_hold(make_bridge: Any) -> None:
    bridge: Bridge = make_bridge(ADMIN_PASSWORD=PASSWORD)
    code, answer = _target(bridge, "a-1", 10, strategy="trend", position_scope="strategy")
    assert (code, answer["status"]) == (200, "placed")
    # Another strategy's target of 5 buys its own 5; scoped to the account it would have
    # read the 10 of "trend" and refused to sell them (the signal says BUY).
    code, answer = _target(bridge, "b-1", 5, strategy="scalp", position_scope="STRATEGY")
    assert (code, answer["status"]) == (200, "placed")
    assert [(p["tt"], p["qt"]) for p in bridge.placed()] == [("B", "10"), ("B", "5")]
    assert bridge.net("SBIN-EQ") == 15

    code, answer = _target(bridge, "a-2", 10, strategy="trend", position_scope="strategy")
    assert (code, answer["status"], answer["orders"], answer["error"]) == (200, "noop", [], None)
    reason = answer["reason"]
    assert reason == ("already at the target: strategy 'trend' holds 10 of NSE:SBIN-EQ MIS, "
                      "by its orders today (the account's net position is 15), target 10; "
                      "nothing sent")
    assert len(bridge.placed()) == 2

    # Flattening one strategy sells only its own part.
    code, answer = _target(bridge, "b-2", 0, "SELL", strategy="scalp",
                           position_scope="strategy")
    assert answer["status"] == "placed" and bridge.placed()[-1]["qt"] == "5"
    assert bridge.net("SBIN-EQ") == 10

    row = bridge.journaled("a-2")
    assert row.status is SignalStatus.NOOP and row.error is not None
    assert row.error.message == reason
    client = bridge.app.test_client()
    sign_in(client)
    page = client.get(f"/signals/{row.id}").get_data(as_text=True)
    assert "already at the target: strategy &#39;trend&#39; holds 10" in page


def test_the_account_scope_is_the_default_and_its_noop_says_why(bridge: Bridge) -> None:
    bridge.seed("SBIN-EQ", 10)
    code, answer = _target(bridge, "acc-1", 10, strategy="trend")
    assert (code, answer["status"], answer["error"]) == (200, "noop", None)
    assert answer["reason"] == ("already at the target: the account's net position in "
                                "NSE:SBIN-EQ MIS is 10, target 10; nothing sent")
    assert bridge.placed() == []
    assert bridge.journaled("acc-1").signal.position_scope.value == "account"  # type: ignore


def test_the_scope_is_checked_and_named(bridge: Bridge) -> None:
    code, answer = _target(bridge, "bad-1", 10, strategy="trend", position_scope="mine")
    assert (code, answer["status"]) == (422, "rejected")
    assert "account, strategy" in answer["error"]["details"]["position_scope"][0]
    code, answer = _target(bridge, "bad-2", 10, position_scope="strategy")
    assert code == 422 and "strategy" in answer["error"]["details"]
    code, answer = bridge.signal(symbol="NSE:SBIN", action="BUY", quantity=1,
                                 position_scope="strategy", strategy="t", alert_id="bad-3")
    assert code == 422 and "position_size" in answer["error"]["details"]["position_scope"][0]
    assert bridge.placed() == []


def test_the_square_off_resets_every_strategy_of_the_instrument() -> None:
    # The journal counts a strategy's orders after the bridge's last square-off of the
    # instrument, which it finds by the square-off's strategy name.
    assert SQUAREOFF_STRATEGY == squareoff.STRATEGY


def test_placesmartorder_takes_the_scope_and_answers_the_reason(make_bridge: Any) -> None:
    key = "scope-api-key-0123456789abcdef"
    bridge: Bridge = make_bridge(API_KEY=key)
    bridge.seed("SBIN-EQ", 20)  # held by hand, outside any strategy
    call = {"apikey": key, "strategy": "trend", "symbol": "SBIN", "exchange": "NSE",
            "action": "BUY", "product": "MIS", "pricetype": "MARKET", "quantity": "10",
            "position_size": "10", "position_scope": "strategy"}
    code, first = bridge.post("/api/v1/placesmartorder", call)
    assert (code, first["status"]) == (200, "success") and first["orderid"], first
    code, again = bridge.post("/api/v1/placesmartorder", call)
    assert (code, again["status"]) == (200, "success") and "orderid" not in again
    assert again["message"].startswith("already at the target: strategy 'trend' holds 10")
    assert [p["qt"] for p in bridge.placed()] == ["10"]
    assert bridge.net("SBIN-EQ") == 30
