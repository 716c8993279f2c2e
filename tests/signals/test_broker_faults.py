"""What the caller and the journal see when Kotak misbehaves."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from bridge.journal.rows import OrderState, SignalStatus
from bridge.kotak.sandbox import Fault, Rule, SandboxServer
from tests.signals.conftest import Bridge


def buy(bridge: Bridge, **extra: Any) -> tuple[int, dict[str, Any]]:
    return bridge.signal(symbol="NSE:SBIN", action="buy", quantity=4, **extra)


def test_timeout_after_sending_is_unknown_then_settled_from_the_book(
        make_bridge: Any) -> None:
    # Kotak sits on the request past our read timeout, then executes it. The read timeout
    # is well inside the answer's budget, so a busy machine still answers "unknown" (with
    # 0.5 s between them, a loaded CI run once answered at the budget, still sending).
    bridge = make_bridge(KOTAK_READ_TIMEOUT_S="1.0", RESPONSE_BUDGET_MS="2500")
    bridge.sandbox.add_fault(Fault("stall", endpoint="place", seconds=2.5, when="before"))

    code, answer = buy(bridge)

    assert (code, answer["status"]) == (504, "unknown")
    assert answer["error"]["code"] == "outcome_unknown"
    settled = bridge.wait_status(answer["alert_id"], SignalStatus.PLACED)
    (order,) = bridge.services.journal.orders.orders_of(settled.id)
    assert order.status is OrderState.COMPLETE and order.broker_order_id
    assert len(bridge.placed()) == 1  # settled by reading the book, never sent again


def test_a_request_lost_before_kotak_is_proved_absent_then_sent_again(bridge: Bridge) -> None:
    bridge.services.dispatcher.tracker.unknown_deadline = timedelta(seconds=1)
    bridge.sandbox.add_fault(Fault("drop", endpoint="place", when="before"))

    code, answer = buy(bridge)

    assert (code, answer["status"]) == (504, "unknown")
    row = bridge.wait_status(answer["alert_id"], SignalStatus.PLACED)
    # The same order went again under a new tag: one order row, its timeline telling of the
    # attempt that never arrived, and one order at Kotak.
    (order,) = bridge.services.journal.orders.orders_of(row.id)
    assert order.status.accepted
    assert [o["GuiOrdId"] for o in bridge.book()] == [order.tag]
    timeline = [e for e in bridge.services.journal.history.events_of(row.id)
                if e.order_id == order.id]
    assert [e.status for e in timeline][:5] == [
        "created", "sending", "unknown", "not_placed", "created"]
    again = re.fullmatch(r"to be sent again with tag (\w+) \(nothing under (\w+) reached "
                         r"Kotak\)", timeline[4].detail)
    assert again is not None and again[1] == order.tag != again[2]


def test_a_lost_request_past_its_validity_is_expired(make_bridge: Any) -> None:
    bridge = make_bridge(SIGNAL_TTL_S="5")
    bridge.services.dispatcher.tracker.unknown_deadline = timedelta(seconds=6)
    bridge.sandbox.add_fault(Fault("drop", endpoint="place", when="before"))

    code, answer = buy(bridge)

    assert code == 504
    row = bridge.wait_status(answer["alert_id"], SignalStatus.EXPIRED, timeout=15)
    assert row.error is not None and "never reached Kotak" in row.error.message
    assert bridge.book() == []


def test_answer_lost_after_execution_is_found_in_the_book_at_once(bridge: Bridge) -> None:
    bridge.sandbox.add_fault(Fault("drop", endpoint="place", when="after"))

    code, answer = buy(bridge)

    assert (code, answer["status"]) == (200, "placed")  # read back by tag, within the budget
    assert answer["orders"][0]["order_id"] and len(bridge.placed()) == 1


def test_broker_down_is_a_clear_503_and_journaled(bridge: Bridge, server: SandboxServer) -> None:
    server.stop()

    code, answer = buy(bridge, alert_id="down-1")

    assert (code, answer["status"]) == (503, "failed")
    assert answer["error"]["code"] == "broker_unavailable"
    assert "could not connect" in answer["error"]["message"]
    row = bridge.journaled("down-1")
    assert row.status is SignalStatus.FAILED


def test_accept_then_reject_shows_kotaks_reason(bridge: Bridge) -> None:
    bridge.sandbox.add_rule(Rule(action="reject", reason="circuit_limit", symbol="SBIN"))

    code, answer = buy(bridge, alert_id="rms-1")

    assert (code, answer["status"]) == (502, "rejected")
    assert "circuit limit" in answer["error"]["message"]
    assert answer["orders"][0]["status"] == "rejected" and answer["orders"][0]["order_id"]
    row = bridge.journaled("rms-1")
    timeline = [event.status for event in bridge.services.journal.history.events_of(row.id)]
    assert timeline[:3] == ["received", "queued", "dispatching"]
    assert "pending" in timeline and timeline[-1] == "rejected"


def test_rejection_after_the_answer_reaches_the_journal(make_bridge: Any) -> None:
    # The answer's budget ends while Kotak still holds the order "open pending"; 0.8 s
    # leaves a loaded machine room to send it first (0.3 s once answered "queued" in CI).
    bridge = make_bridge(RESPONSE_BUDGET_MS="800")
    bridge.sandbox.config.accept_delay = 2.5
    bridge.sandbox.add_rule(Rule(action="reject", reason="insufficient_funds"))

    code, answer = buy(bridge, alert_id="late-1")

    assert (code, answer["status"]) == (200, "placed")
    assert answer["orders"][0]["status"] == "pending"
    row = bridge.wait_status("late-1", SignalStatus.REJECTED)
    assert row.error is not None and "Margin Exceeds" in row.error.message


def test_synchronous_refusal_names_kotaks_code(bridge: Bridge) -> None:
    bridge.sandbox.add_rule(Rule(action="reject", reason="ip_not_whitelisted"))

    code, answer = buy(bridge)

    assert (code, answer["status"]) == (502, "rejected")
    assert "100008" in answer["error"]["message"]
    assert "whitelisted" in answer["error"]["message"]


def test_expired_session_is_a_503_naming_the_cause(bridge: Bridge) -> None:
    bridge.sandbox.expire_sessions()

    code, answer = buy(bridge)

    assert (code, answer["status"]) == (503, "failed")
    assert answer["error"]["code"] == "broker_session"
    assert "no valid Kotak session" in answer["error"]["message"]
    assert bridge.placed() == [] or bridge.book() == []
    code, again = buy(bridge, alert_id="after-expiry")
    assert (code, again["error"]["code"]) == (503, "broker_session")
