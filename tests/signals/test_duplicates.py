"""Nothing doubled: repeats are answered from the journal and never executed."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bridge.journal.rows import SignalStatus
from bridge.kotak.sandbox import Fault
from tests.signals.conftest import SECRET, Bridge


def fire(bridge: Bridge, payload: dict[str, Any], times: int) -> list[tuple[int, dict]]:
    with ThreadPoolExecutor(max_workers=times) as pool:
        return list(pool.map(lambda _: bridge.post("/webhook/tradingview", payload),
                             range(times)))


def test_same_alert_five_times_at_once_is_one_order(bridge: Bridge) -> None:
    payload = {"secret": SECRET, "symbol": "NSE:SBIN", "action": "buy", "quantity": 5,
               "alert_id": "tv-123"}

    answers = fire(bridge, payload, 5)

    statuses = sorted(answer["status"] for _, answer in answers)
    assert statuses == ["duplicate"] * 4 + ["placed"]
    assert all(code == 200 for code, _ in answers)
    assert len(bridge.placed()) == 1 and len(bridge.book()) == 1
    order_ids = {answer["orders"][0]["order_id"] for _, answer in answers}
    assert len(order_ids) == 1  # every repeat is told about the one order


def test_same_body_without_alert_id_five_times_at_once_is_one_order(bridge: Bridge) -> None:
    payload = {"secret": SECRET, "symbol": "NSE:SBIN", "action": "buy", "quantity": 5}

    answers = fire(bridge, payload, 5)

    assert sorted(a["status"] for _, a in answers) == ["duplicate"] * 4 + ["placed"]
    assert len(bridge.placed()) == 1


def test_a_resend_after_a_server_error_is_not_a_second_order(bridge: Bridge) -> None:
    bridge.sandbox.add_fault(Fault("stall", endpoint="place", seconds=2.5, when="before"))
    payload = {"secret": SECRET, "symbol": "NSE:SBIN", "action": "buy", "quantity": 3}

    first_code, first = bridge.post("/webhook/tradingview", payload)
    again_code, again = bridge.post("/webhook/tradingview", payload)  # TradingView's re-send

    assert (first_code, first["status"]) == (504, "unknown")
    assert (again_code, again["status"]) == (200, "duplicate")
    bridge.wait_status(first["alert_id"], SignalStatus.PLACED)
    assert len(bridge.placed()) == 1 and len(bridge.book()) == 1


def test_identical_body_after_the_window_is_a_new_signal(make_bridge: Any) -> None:
    bridge = make_bridge(DEDUP_WINDOW_S="1")
    payload = {"secret": SECRET, "symbol": "NSE:SBIN", "action": "buy", "quantity": 1}

    bridge.post("/webhook/tradingview", payload)
    time.sleep(1.1)
    code, answer = bridge.post("/webhook/tradingview", payload)

    assert (code, answer["status"]) == (200, "placed")
    assert len(bridge.placed()) == 2


def test_an_alert_id_is_a_repeat_whenever_it_comes_back(make_bridge: Any) -> None:
    bridge = make_bridge(DEDUP_WINDOW_S="1")
    payload = {"secret": SECRET, "symbol": "NSE:SBIN", "action": "buy", "quantity": 1,
               "alert_id": "once-only"}

    bridge.post("/webhook/tradingview", payload)
    time.sleep(1.1)
    code, answer = bridge.post("/webhook/tradingview", {**payload, "quantity": 2})

    assert (code, answer["status"]) == (200, "duplicate")
    assert answer["duplicate_of"] == {"alert_id": "once-only", "status": "placed"}
    assert len(bridge.placed()) == 1


def test_a_refused_signal_repeated_is_answered_with_the_refusal(bridge: Bridge) -> None:
    bridge.services.journal.switches.set_kill_switch(True)
    payload = {"secret": SECRET, "symbol": "NSE:SBIN", "action": "buy", "quantity": 1,
               "alert_id": "blocked-1"}

    bridge.post("/webhook/tradingview", payload)
    code, answer = bridge.post("/webhook/tradingview", payload)

    assert (code, answer["status"]) == (200, "duplicate")
    assert answer["duplicate_of"]["status"] == "rejected"
    assert bridge.placed() == []
