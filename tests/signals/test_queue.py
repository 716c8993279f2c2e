"""The broker's rate limit, the durable queue behind it, and recovery after a crash."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from bridge.clock import ManualClock
from bridge.domain import OrderRequest, Product, Side
from bridge.journal.rows import OrderPlan, OrderRow, OrderState, SignalStatus
from bridge.kotak.sandbox.conditions import Rule
from tests.signals.conftest import Bridge, weekday_at


def buy(bridge: Bridge, alert_id: str, symbol: str = "NSE:SBIN",
        quantity: int = 1) -> tuple[int, dict[str, Any]]:
    return bridge.signal(symbol=symbol, action="BUY", quantity=quantity, alert_id=alert_id)


def placement_times(bridge: Bridge) -> list[float]:
    return [r.at for r in bridge.sandbox.requests.snapshot("place")]


def max_in_any_second(times: list[float]) -> int:
    return max((sum(1 for t in times if start <= t < start + 1.0) for start in times),
               default=0)


def test_a_burst_is_queued_and_sent_in_order_within_the_rate(make_bridge: Any) -> None:
    bridge = make_bridge(KOTAK_ORDER_RATE="2")

    answers = [buy(bridge, f"b{n}", quantity=n + 1) for n in range(6)]

    assert [code for code, _ in answers] == [200, 200, 202, 202, 202, 202]
    assert all(a["status"] == "queued" for _, a in answers[2:])
    for n in range(6):
        bridge.wait_status(f"b{n}", SignalStatus.PLACED)
    assert [d["qt"] for d in bridge.placed()] == ["1", "2", "3", "4", "5", "6"]
    assert max_in_any_second(placement_times(bridge)) <= 2


def test_exits_go_ahead_of_queued_entries(make_bridge: Any) -> None:
    bridge = make_bridge(KOTAK_ORDER_RATE="1")
    bridge.seed("SBIN-EQ", 10)
    assert buy(bridge, "e1", "NSE:ITC")[0] == 200
    assert buy(bridge, "e2", "NSE:ITC")[0] == 202
    assert buy(bridge, "e3", "NSE:ITC")[0] == 202

    code, _ = bridge.signal(symbol="NSE:SBIN", action="SELL", quantity=10, position_size=0,
                            alert_id="x1")

    assert code == 202
    for alert_id in ("e2", "e3", "x1"):
        bridge.wait_status(alert_id, SignalStatus.PLACED)
    assert [d["ts"] for d in bridge.placed()] == ["ITC-EQ", "SBIN-EQ", "ITC-EQ", "ITC-EQ"]


def test_queued_signals_past_their_validity_expire_unsent(make_bridge: Any) -> None:
    clock = ManualClock(weekday_at(10, 0))
    bridge = make_bridge(clock=clock, background=False, SIGNAL_TTL_S="30")
    code, answer = buy(bridge, "late")
    assert (code, answer["status"]) == (202, "queued")

    clock.advance(timedelta(seconds=31))
    bridge.services.start_background()

    row = bridge.wait_status("late", SignalStatus.EXPIRED)
    assert row.error is not None and "validity" in row.error.message
    assert bridge.placed() == []


def test_signals_accepted_before_a_crash_are_sent_after_restart(make_bridge: Any) -> None:
    crashed = make_bridge(background=False)  # accepts and journals, but never sends
    for n in range(3):
        assert buy(crashed, f"r{n}")[0] == 202
    crashed.services.close()

    restarted = make_bridge()

    for n in range(3):
        restarted.wait_status(f"r{n}", SignalStatus.PLACED)
    assert len(restarted.placed()) == 3


def test_a_signal_claimed_by_a_dead_process_is_taken_over(make_bridge: Any) -> None:
    bridge = make_bridge(background=False)
    assert buy(bridge, "orphan")[0] == 202
    journal = bridge.services.journal
    claim, _ = journal.queue.take_head("default", "dead-host:1:abc", 10)
    assert claim is not None and claim.row.status is SignalStatus.DISPATCHING

    bridge.services.dispatcher.alive_within = timedelta(seconds=1)
    time.sleep(1.2)
    bridge.services.start_background()

    bridge.wait_status("orphan", SignalStatus.PLACED)
    assert len(bridge.placed()) == 1


def claim_sending(bridge: Bridge, alert_id: str, dead: str, tag: str) -> OrderRow:
    """Queue a signal, then leave it as a process killed while sending does: claimed, its
    order recorded and marked ``sending``, with no answer."""
    assert buy(bridge, alert_id)[0] == 202
    journal = bridge.services.journal
    claim, _ = journal.queue.take_head("default", dead, 10)
    assert claim is not None and claim.row.alert_id == alert_id
    (order,), _ = journal.orders.add_orders(claim.row.id, "default", "", [OrderPlan(
        "NSE", "SBIN-EQ", "BUY", 1, "MIS", "MARKET", None, None, False, tag)])
    journal.orders.set_order(order.id, OrderState.SENDING, sent_at=bridge.services.clock.now())
    return order


def test_an_order_sent_by_a_dead_process_is_settled_not_resent(make_bridge: Any) -> None:
    bridge = make_bridge(background=False)
    claim_sending(bridge, "half-sent", "dead-host:2:def", "bdeadbeef0001")
    journal = bridge.services.journal
    sbin = bridge.services.instruments.current().resolve("NSE:SBIN")
    # The dead process's request did reach Kotak before it died.
    bridge.services.broker().place_order(OrderRequest(sbin, Side.BUY, 1, Product.MIS,
                                                      tag="bdeadbeef0001"))

    bridge.services.dispatcher.alive_within = timedelta(seconds=1)
    time.sleep(1.2)
    bridge.services.start_background()

    row = bridge.wait_status("half-sent", SignalStatus.PLACED)
    (settled,) = journal.orders.orders_of(row.id)
    assert settled.status is OrderState.COMPLETE
    assert len(bridge.placed()) == 1


def test_an_order_a_dead_process_marked_sending_and_never_sent_goes_again_once(
        make_bridge: Any) -> None:
    """A process killed after journaling ``sending`` and before its request left: the book
    proves it never arrived, and the same order goes again under a new tag."""
    bridge = make_bridge(background=False)
    order = claim_sending(bridge, "killed-mid-send", "dead-host:5:mno", "bdeadbeef0003")
    journal = bridge.services.journal

    tracker = bridge.services.dispatcher.tracker
    tracker.unknown_deadline = timedelta(seconds=1.5)
    tracker.settle_after = timedelta(seconds=0.5)
    bridge.services.dispatcher.alive_within = timedelta(seconds=1)
    time.sleep(1.2)
    bridge.services.start_background()

    row = bridge.wait_status("killed-mid-send", SignalStatus.PLACED, timeout=20)
    (resent,) = journal.orders.orders_of(row.id)
    assert resent.id == order.id and resent.status.accepted
    assert resent.tag != "bdeadbeef0003"
    assert [d["ig"] for d in bridge.placed()] == [resent.tag]


#: the tag of an order a dead process recorded and never sent
DEAD_TAG = "bdeadbeef0002"


def claim_unsent(bridge: Bridge, alert_id: str, dead: str) -> int:
    """Queue a signal, then leave it as a process killed mid-send does: claimed, its order
    recorded (``created``) but never marked ``sending``, so nothing of it reached Kotak."""
    assert buy(bridge, alert_id)[0] == 202
    journal = bridge.services.journal
    claim, _ = journal.queue.take_head("default", dead, 10)
    assert claim is not None and claim.row.alert_id == alert_id
    journal.orders.add_orders(claim.row.id, "default", "", [OrderPlan(
        "NSE", "SBIN-EQ", "BUY", 1, "MIS", "MARKET", None, None, False, DEAD_TAG)])
    return claim.row.id


def test_a_signal_whose_dead_process_never_sent_its_order_goes_again(
        make_bridge: Any) -> None:
    bridge = make_bridge(background=False)
    signal_id = claim_unsent(bridge, "unsent", "dead-host:3:ghi")

    bridge.services.dispatcher.alive_within = timedelta(seconds=1)
    time.sleep(1.2)
    bridge.services.start_background()

    bridge.wait_status("unsent", SignalStatus.PLACED)
    # Sent once, as recorded: its tag had never reached Kotak.
    (order,) = bridge.services.journal.orders.orders_of(signal_id)
    assert order.status.accepted and order.tag == DEAD_TAG
    assert [d["ig"] for d in bridge.placed()] == [DEAD_TAG]
    timeline = [e.status for e in bridge.services.journal.history.events_of(signal_id)]
    assert SignalStatus.FAILED.value not in timeline


def test_a_signal_whose_dead_process_never_sent_its_order_expires_after_its_validity(
        make_bridge: Any) -> None:
    clock = ManualClock(weekday_at(10, 0))
    bridge = make_bridge(clock=clock, background=False, SIGNAL_TTL_S="30")
    claim_unsent(bridge, "unsent-late", "dead-host:4:jkl")

    clock.advance(timedelta(seconds=31))
    bridge.services.start_background()

    row = bridge.wait_status("unsent-late", SignalStatus.EXPIRED, SignalStatus.FAILED)
    assert row.status is SignalStatus.EXPIRED, row.error
    assert row.error is not None and "validity" in row.error.message
    assert bridge.placed() == []
    # Its unsent order is final, so nothing counts it as still working.
    (order,) = bridge.services.journal.orders.orders_of(row.id)
    assert order.status is OrderState.FAILED
    assert bridge.services.journal.orders.working_orders() == []


def test_a_taken_over_signal_expiring_in_the_queue_fails_its_unsent_order(
        make_bridge: Any) -> None:
    clock = ManualClock(weekday_at(10, 0))
    bridge = make_bridge(clock=clock, background=False, SIGNAL_TTL_S="30")
    signal_id = claim_unsent(bridge, "unsent-queued", "dead-host:6:pqr")

    clock.advance(timedelta(seconds=16))  # its process is dead, the signal still valid
    bridge.services.dispatcher.maintain()
    assert bridge.journaled("unsent-queued").status is SignalStatus.QUEUED
    assert [o.tag for o in bridge.services.journal.orders.working_orders()] == [DEAD_TAG]
    clock.advance(timedelta(seconds=15))  # nobody sent it in time
    bridge.services.dispatcher.maintain()

    assert bridge.journaled("unsent-queued").status is SignalStatus.EXPIRED
    (order,) = bridge.services.journal.orders.orders_of(signal_id)
    assert order.status is OrderState.FAILED and bridge.placed() == []


def test_the_tracker_leaves_a_dead_process_unsent_order_to_the_take_over(
        make_bridge: Any) -> None:
    clock = ManualClock(weekday_at(10, 0))
    bridge = make_bridge(clock=clock, background=False, SIGNAL_TTL_S="600")
    signal_id = claim_unsent(bridge, "unsent-old", "dead-host:5:mno")

    clock.advance(timedelta(minutes=3))  # the bridge was down a while, the signal still valid
    bridge.services.dispatcher.tracker.sweep("default")
    assert bridge.journaled("unsent-old").status is SignalStatus.DISPATCHING
    bridge.services.start_background()

    bridge.wait_status("unsent-old", SignalStatus.PLACED)
    (order,) = bridge.services.journal.orders.orders_of(signal_id)
    assert order.status.accepted and [d["ig"] for d in bridge.placed()] == [DEAD_TAG]


def test_rate_limit_holds_across_two_bridges_sharing_the_journal(make_bridge: Any) -> None:
    first = make_bridge(KOTAK_ORDER_RATE="3")
    second = make_bridge(KOTAK_ORDER_RATE="3")

    for n in range(6):
        bridge = first if n % 2 else second
        bridge.signal(symbol="NSE:SBIN", action="BUY", quantity=n + 1, alert_id=f"two{n}")
    for n in range(6):
        first.wait_status(f"two{n}", SignalStatus.PLACED)

    assert max_in_any_second(placement_times(first)) <= 3
    assert sorted(int(json.loads(r.jdata)["qt"]) for r in
                  first.sandbox.requests.snapshot("place")) == [1, 2, 3, 4, 5, 6]


def test_a_queued_signal_kotak_rejects_after_accepting_it_is_recorded_rejected(
        make_bridge: Any) -> None:
    """Sent by the dispatcher with nobody waiting on its answer, its order is followed by
    the tracker: the rejection shows on the signal and in its timeline within a moment."""
    bridge = make_bridge(KOTAK_ORDER_RATE="1")
    bridge.sandbox.add_rule(Rule(action="reject", reason="insufficient_funds",
                                 symbol="TCS-EQ"))

    first, _ = buy(bridge, "q-first")
    queued, answer = buy(bridge, "q-tcs", symbol="NSE:TCS")

    assert (first, queued, answer["status"]) == (200, 202, "queued")
    row = bridge.wait_status("q-tcs", SignalStatus.REJECTED, timeout=8.0)
    assert row.error is not None and "Margin Exceeds" in row.error.message
    assert bridge.wait_status("q-first", SignalStatus.PLACED).status is SignalStatus.PLACED
    (order,) = bridge.services.journal.orders.orders_of(row.id)
    assert order.status is OrderState.REJECTED and order.broker_order_id


def test_orders_handed_to_the_tracker_are_asked_of_kotak_per_account_not_per_order(
        make_bridge: Any) -> None:
    """Eight open orders of one account, handed over by their senders, cost one order-book
    read per look, not eight order reports."""
    bridge = make_bridge(KOTAK_ORDER_RATE="20")
    bridge.sandbox.add_rule(Rule(action="stuck", symbol="SBIN-EQ", times=None))
    bridge.signal(symbol="NSE:SBIN", action="BUY", quantity=8, splitsize=1, alert_id="open")
    row = bridge.wait_status("open", SignalStatus.PLACED)
    orders = bridge.services.journal.orders.orders_of(row.id)
    assert len(orders) == 8 and all(not o.status.final for o in orders)
    bridge.services.dispatcher.stop()  # only this test looks now
    bridge.sandbox.requests.clear()
    tracker = bridge.services.dispatcher.tracker

    tracker.hand_over(orders)
    tracker.follow_handed()

    asked = {name: len(bridge.sandbox.requests.snapshot(name))
             for name in ("orders", "order", "history")}
    assert asked == {"orders": 1, "order": 0, "history": 0}


def test_a_signal_whose_planning_fails_at_the_claim_holds_up_no_queue(
        make_bridge: Any, monkeypatch: Any) -> None:
    """Queued signals are claimed together, their orders planned in the claim's transaction.
    Planning that fails for one of them (a bug) must not roll back the claim of all of them
    pass after pass: that signal is planned by its sender instead, and the queue moves."""
    bridge = make_bridge(background=False)
    for n in range(3):
        assert buy(bridge, f"q{n}")[0] == 202
    service = bridge.services.dispatcher.service
    planner = service.planner

    def failing(prepared: Any) -> Any:
        made = planner(prepared)

        def plan(counts: Any) -> Any:
            if prepared.signal.alert_id == "q0":
                raise RuntimeError("a bug in planning")
            return made(counts) if made is not None else None

        return plan

    monkeypatch.setattr(service, "planner", failing)
    bridge.services.start_background()

    for n in range(3):
        bridge.wait_status(f"q{n}", SignalStatus.PLACED)
    assert len(bridge.placed()) == 3


def test_a_signal_whose_planning_fails_at_admission_is_still_journaled_and_sent(
        make_bridge: Any, monkeypatch: Any) -> None:
    """Its orders are planned inside the admission's transaction; a failure there (a bug)
    must not undo the signal's journaling: its sender plans it again."""
    bridge = make_bridge()
    service = bridge.services.dispatcher.service
    slices = service._slices
    calls: list[int] = []

    def first_fails(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug in planning")
        return slices(*args)

    monkeypatch.setattr(service, "_slices", first_fails)

    code, answer = buy(bridge, "planned-late")

    assert code == 200 and answer["status"] == "placed", answer
    assert len(calls) == 2 and len(bridge.placed()) == 1
