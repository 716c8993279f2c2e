"""Cancels and modifies through OpenAlgo's client are order calls like any other: each is a
signal of its own in the journal (source ``api``) with what Kotak made of it, listed on the
dashboard, and an order of the bridge's own that was changed shows the change."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bridge.journal.rows import OrderRow, OrderState, SignalRow, SignalStatus
from bridge.kotak.sandbox.faults import Fault
from tests.api.conftest import KEY, Served, running
from tests.dashboard.conftest import PASSWORD, sign_in

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The module's bridge, with the dashboard's password set so its pages can be read."""
    with running(tmp_path_factory.mktemp("changes"), ADMIN_PASSWORD=PASSWORD) as started:
        yield started


def change_rows(served: Served, alert_id: str) -> list[SignalRow]:
    return served.bridge.services.journal.signals.signals_by_alert_id(alert_id)


def only_row(served: Served, alert_id: str) -> SignalRow:
    rows = change_rows(served, alert_id)
    assert len(rows) == 1, rows
    return rows[0]


def ours(served: Served, order_id: str) -> OrderRow:
    found = served.bridge.services.journal.orders.order_by_broker_id("default", order_id)
    assert found is not None, f"order {order_id} is not one of the bridge's own"
    return found


def limit_buy(served: Served, symbol: str, price: str, quantity: int = 1) -> str:
    placed = served.client.placeorder(symbol=symbol, action="BUY", exchange="NSE",
                                      price_type="LIMIT", price=price, quantity=quantity)
    assert placed["status"] == "success", placed
    order_id: str = placed["orderid"]
    return order_id


def test_a_modify_and_a_cancel_are_journaled_and_listed_on_the_dashboard(
        served: Served) -> None:
    served.bridge.sandbox.set_price("NSE", "TCS-EQ", Decimal("3000"))
    order_id = limit_buy(served, "TCS", "2800")

    changed = served.client.modifyorder(order_id=order_id, symbol="TCS", action="BUY",
                                        exchange="NSE", price_type="LIMIT", product="MIS",
                                        quantity=2, price="2900.03")
    cancelled = served.client.cancelorder(order_id=order_id)

    assert changed == {"status": "success", "orderid": order_id}
    assert cancelled == {"status": "success", "orderid": order_id}
    journal = served.bridge.services.journal
    recent = {row.alert_id: row for row in journal.signals.recent_signals(10)}
    modify, cancel = recent[f"modify-{order_id}"], recent[f"cancel-{order_id}"]
    for row in (modify, cancel):
        assert (row.source, row.status, row.error) == ("api", SignalStatus.PLACED, None)
        assert (row.symbol, row.instrument) == ("TCS-EQ", "NSE:TCS-EQ")
        assert KEY not in row.raw_body and "***" in row.raw_body
    assert journal.history.events_of(modify.id)[-1].detail == (
        f"Change of Kotak order {order_id} (TCS-EQ) to 2 LIMIT @ 2900.05 accepted by Kotak")
    assert journal.history.events_of(cancel.id)[-1].detail == (
        f"Cancel of Kotak order {order_id} (TCS-EQ) accepted by Kotak")

    client = served.bridge.app.test_client()
    sign_in(client)
    page = client.get("/").get_data(as_text=True)
    for alert_id in (f"modify-{order_id}", f"cancel-{order_id}"):
        assert f'class="status-placed" data-alert-id="{alert_id}"' in page
    detail = client.get(f"/signals/{cancel.id}").get_data(as_text=True)
    assert f"Cancel of Kotak order {order_id} (TCS-EQ) accepted by Kotak" in detail


def test_the_bridges_own_order_records_the_modify_and_the_cancel(served: Served) -> None:
    served.bridge.sandbox.set_price("NSE", "INFY-EQ", Decimal("1500"))
    order_id = limit_buy(served, "INFY", "1300")

    served.client.modifyorder(order_id=order_id, symbol="INFY", action="BUY", exchange="NSE",
                              price_type="LIMIT", product="MIS", quantity=3, price="1310")
    modified = ours(served, order_id)
    served.client.cancelorder(order_id=order_id)

    assert (modified.status, modified.quantity, modified.price) == (
        OrderState.OPEN, 3, "1310.00")
    assert ours(served, order_id).status is OrderState.CANCELLED
    events = served.bridge.services.journal.history.events_of(modified.signal_id or 0)
    assert "changed through the api: 3 LIMIT @ 1310.00" in [e.detail for e in events]


def test_a_cancel_kotak_refuses_is_journaled_rejected_with_its_reason(served: Served) -> None:
    sandbox = served.bridge.sandbox
    sandbox.set_price("NSE", "SBIN-EQ", Decimal("800"))
    order_id = limit_buy(served, "SBIN", "700")
    # The cancel reaches Kotak a second late; meanwhile the order fills, so Kotak refuses it
    # although the bridge's look-up just before found it open. The cancel's journal row is
    # written after that look-up and before the cancel is sent, so it marks the moment to
    # fill. (Counting look-ups at the sandbox does not: the placed order's own follow-up can
    # still be answered after the placing call returns on a busy machine.)
    sandbox.add_fault(Fault(kind="latency", endpoint="cancel", seconds=1.0))
    answers: list[dict[str, Any]] = []
    cancelling = threading.Thread(
        target=lambda: answers.append(served.client.cancelorder(order_id=order_id)))
    cancelling.start()
    until = time.monotonic() + 10
    while not change_rows(served, f"cancel-{order_id}") and time.monotonic() < until:
        time.sleep(0.01)
    sandbox.set_price("NSE", "SBIN-EQ", Decimal("690"))
    cancelling.join(30)

    assert answers and answers[0]["status"] == "error" and answers[0]["code"] == 502, answers
    assert served.booked(order_id)["ordSt"] == "complete"
    row = only_row(served, f"cancel-{order_id}")
    assert row.status is SignalStatus.REJECTED and row.error is not None
    assert row.error.code == "broker_rejected"
    assert row.error.message.startswith(f"Cancel of Kotak order {order_id} (SBIN-EQ) refused")
    assert "order is completed" in row.error.message


def test_a_cancel_of_an_order_kotak_does_not_have_is_journaled_rejected(
        served: Served) -> None:
    doors = served.bridge.services.doors
    refused_before = doors.refusals_since(LONG_AGO)

    http, answer = served.post("cancelorder", {"apikey": KEY, "orderid": "99999999"})

    assert http == 404 and answer["code"] == "no_such_order", answer
    row = only_row(served, "cancel-99999999")
    assert row.status is SignalStatus.REJECTED and row.error is not None
    assert (row.error.code, row.symbol) == ("no_such_order", "Kotak order 99999999")
    # Journaled as a signal, it is not also counted among the requests refused at the door.
    assert doors.refusals_since(LONG_AGO) == refused_before


def test_an_already_cancelled_order_is_a_noop(served: Served) -> None:
    served.bridge.sandbox.set_price("NSE", "ITC-EQ", Decimal("420"))
    order_id = limit_buy(served, "ITC", "400")
    served.client.cancelorder(order_id=order_id)

    again = served.client.cancelorder(order_id=order_id)

    assert again["status"] == "success" and "already cancelled" in again["message"]
    statuses = [row.status for row in change_rows(served, f"cancel-{order_id}")]
    assert statuses == [SignalStatus.PLACED, SignalStatus.NOOP]


def test_cancelallorder_journals_each_cancel(served: Served) -> None:
    served.bridge.sandbox.set_price("NSE", "LT-EQ", Decimal("3600"))
    ids = [limit_buy(served, "LT", "3400"), limit_buy(served, "LT", "3450")]

    answer = served.client.cancelallorder(strategy="Python")
    nothing = served.client.cancelallorder(strategy="Python")

    assert answer["status"] == "success" and set(ids) <= set(answer["canceled_orders"])
    for order_id in ids:
        row = only_row(served, f"cancel-{order_id}")
        assert (row.status, row.symbol) == (SignalStatus.PLACED, "LT-EQ")
        assert ours(served, order_id).status is OrderState.CANCELLED
    assert nothing["canceled_orders"] == []
    last = served.bridge.services.journal.signals.recent_signals(1)[0]
    assert (last.alert_id, last.status) == ("cancel-all", SignalStatus.NOOP)
