"""What the journal keeps about each signal: raw body (secret masked), source, parsed form,
account, and a timeline of every change to it and its orders."""

from __future__ import annotations

from tests.signals.conftest import SECRET, Bridge


def test_journal_keeps_the_signal_its_orders_and_their_timeline(bridge: Bridge) -> None:
    code, answer = bridge.post("/webhook/tradingview",
                               f' \ufeff{{"secret": "{SECRET}", "symbol": "NSE:SBIN", '
                               f'"action": "buy", "quantity": 2, "alert_id": "j-1", '
                               f'"strategy": "trend", "comment": "{{{{timenow}}}}"}}\n',
                               content_type="text/plain")

    assert code == 200
    row = bridge.journaled("j-1")
    assert row.source == "tradingview" and row.account == "default"
    assert SECRET not in row.raw_body and '"secret": "***"' in row.raw_body
    assert row.signal is not None and row.signal.strategy == "trend"
    assert row.signal.comment == "{{timenow}}"
    assert row.instrument == "NSE:SBIN-EQ" and row.remote_addr == "127.0.0.1"
    (order,) = bridge.services.journal.orders.orders_of(row.id)
    assert order.broker_order_id == answer["orders"][0]["order_id"]
    timeline = [(e.status, e.order_id is not None)
                for e in bridge.services.journal.history.events_of(row.id)]
    assert timeline[:5] == [("received", False), ("queued", False), ("dispatching", False),
                            ("created", True), ("sending", True)]
    # After sending, the sender's "accepted" and the tracker's "complete" may land in either
    # order; the journal keeps the furthest state and never moves an order back.
    assert {("placed", False), ("complete", True)} <= set(timeline[5:])
    assert set(timeline[5:]) <= {("pending", True), ("placed", False), ("complete", True)}


def test_invalid_signals_are_journaled_with_the_reason(bridge: Bridge) -> None:
    code, _ = bridge.signal(symbol="NSE:SBIN", action="hold", quantity=1, alert_id="bad")

    assert code == 422
    row = bridge.journaled("bad")
    assert row.status.value == "rejected" and row.error is not None
    assert "action" in row.error.details


def test_secret_never_reaches_the_journal_in_any_form(bridge: Bridge) -> None:
    bridge.post("/webhook/amibroker",
                f"secret={SECRET}&symbol=SBIN&exchange=NSE&action=BUY&quantity=1",
                content_type="application/x-www-form-urlencoded")

    (row,) = bridge.services.journal.signals.recent_signals()
    assert SECRET not in row.raw_body
