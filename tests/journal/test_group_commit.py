"""Kotak's answers to many orders at once (a fan-out) are written together: every order and
its signal read exactly as if each answer had been written alone, in far fewer transactions;
one answer that cannot be written fails alone."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, event, select

from bridge.clock import SystemClock
from bridge.domain import SignalSource
from bridge.journal.journal import Journal
from bridge.journal.orders import OrderChange
from bridge.journal.rows import AdmitRequest, EntryQuery, OrderPlan, OrderState, SignalStatus
from bridge.journal.tables import broker_calls, events
from bridge.schemas import load_signal

COPIES = 40


def _copies(journal: Journal, prefix: str, count: int = COPIES) -> list[tuple[int, int, int]]:
    """(signal id, order id, rate-limit token) of one order sent on each of ``count``
    accounts."""
    signal = load_signal({"symbol": "NSE:SBIN", "action": "BUY", "quantity": 1,
                          "strategy": "fan"}, SignalSource.TRADINGVIEW)
    requests = [AdmitRequest(
        alert_id=f"{prefix}{n}", source="tradingview", account=f"{prefix}{n}",
        remote_addr="127.0.0.1", raw_body="{}", signal=signal, priority=1,
        expires_at=None, instrument="NSE:SBIN-EQ", key=None, key_expires=None,
        claimant="proc-1", rate=10,
        entry=EntryQuery(datetime.now(UTC) - timedelta(hours=1), "fan", "NSE", "SBIN-EQ"),
        plan=lambda _counts, n=n: [OrderPlan("NSE", "SBIN-EQ", "BUY", 1, "MIS", "MKT", None,
                                             None, False, f"{prefix}{n}")])
        for n in range(count)]
    found = []
    for admission in journal.signals.admit_many(requests):
        assert admission.claim is not None and admission.claim.orders
        order = admission.claim.orders[0]
        assert order.status is OrderState.SENDING
        found.append((admission.signal_id, order.id, admission.claim.token or 0))
    return found


def _answer_all(journal: Journal, copies: list[tuple[int, int, int]]) -> list[bool]:
    """Every copy's sender records Kotak's acceptance at the same moment."""
    start = threading.Barrier(len(copies))
    changed: list[bool] = [False] * len(copies)

    def answer(index: int, order_id: int, token: int) -> None:
        start.wait()
        changed[index] = journal.orders.set_order(
            order_id, OrderState.PENDING, broker_order_id=f"K{order_id}",
            detail=f"accepted by Kotak as order K{order_id}", answered=token)

    threads = [threading.Thread(target=answer, args=(n, order_id, token))
               for n, (_, order_id, token) in enumerate(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return changed


def test_answers_arriving_together_are_written_together(engine: Engine) -> None:
    journal = Journal(engine, SystemClock())
    copies = _copies(journal, "gc-")
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))

    changed = _answer_all(journal, copies)

    assert changed == [True] * COPIES
    for signal_id, order_id, _ in copies:
        order = journal.orders.order(order_id)
        assert order is not None
        assert (order.status, order.broker_order_id) == (OrderState.PENDING, f"K{order_id}")
        row = journal.signals.signal(signal_id)
        assert row is not None and row.status is SignalStatus.PLACED
    with engine.connect() as conn:
        answered = conn.execute(select(broker_calls.c.done).where(
            broker_calls.c.id.in_([token for _, _, token in copies]))).scalars().all()
        timeline = conn.execute(select(events.c.signal_id, events.c.status).where(
            events.c.signal_id.in_([s for s, _, _ in copies]),
            events.c.status.in_(["pending", "placed"]))).all()
    assert answered == [True] * COPIES
    # each signal's timeline got its order's answer and its own move, once each
    assert sorted(timeline) == sorted([(s, "pending") for s, _, _ in copies]
                                      + [(s, "placed") for s, _, _ in copies])
    assert len(commits) < COPIES / 2, f"{len(commits)} transactions for {COPIES} answers"
    # the same answer again changes nothing and writes nothing new
    assert _answer_all(journal, copies) == [False] * COPIES


def test_an_answer_that_cannot_be_written_fails_alone(engine: Engine) -> None:
    journal = Journal(engine, SystemClock())
    copies = _copies(journal, "gcbad-")
    start = threading.Barrier(len(copies))
    outcomes: dict[int, object] = {}

    def answer(order_id: int, token: int) -> None:
        start.wait()
        # a value no database driver can store
        fields = {"filled_quantity": object()} if order_id == copies[7][1] else {}
        try:
            outcomes[order_id] = journal.orders.set_order(
                order_id, OrderState.PENDING, broker_order_id=f"K{order_id}",
                answered=token, **fields)
        except Exception as exc:  # the caller of the bad one sees its own error
            outcomes[order_id] = exc

    threads = [threading.Thread(target=answer, args=(order_id, token))
               for _, order_id, token in copies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    bad = copies[7][1]
    assert isinstance(outcomes.pop(bad), Exception)
    assert set(outcomes.values()) == {True}
    order = journal.orders.order(bad)
    assert order is not None and order.status is OrderState.SENDING


def test_two_changes_to_one_order_in_one_batch_apply_in_order(engine: Engine) -> None:
    """The tracker's "complete" and the sender's "accepted" may queue together: the order
    ends complete, never moved back."""
    journal = Journal(engine, SystemClock())
    (signal_id, order_id, token), = _copies(journal, "gctwo-", count=1)
    results = journal.orders._write_changes([
        OrderChange(order_id, OrderState.PENDING, "accepted", answered=token),
        OrderChange(order_id, OrderState.COMPLETE, "complete"),
        OrderChange(order_id, OrderState.PENDING, "accepted")])
    assert results == [True, True, False]
    order = journal.orders.order(order_id)
    assert order is not None and order.status is OrderState.COMPLETE
    row = journal.signals.signal(signal_id)
    assert row is not None and row.status is SignalStatus.PLACED
