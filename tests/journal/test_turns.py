"""An account's requests take their turns in the order their rate-limit tokens were granted:
a request waits for every earlier request of its account to be answered, whether that request
is this process's or another's, and waiting behind this process's own requests costs no
journal reads (a burst's waiters must not spend the bridge's time asking whose turn it is)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, update

from bridge.clock import SystemClock
from bridge.domain import SignalSource
from bridge.journal.journal import Journal
from bridge.journal.rows import AdmitRequest, OrderPlan, OrderRow
from bridge.journal.tables import broker_calls
from bridge.journal.tokens import UNSENT_TOKEN_S
from bridge.schemas import load_signal


def _orders(journal: Journal, account: str, count: int) -> list[OrderRow]:
    signal = load_signal({"symbol": "NSE:SBIN", "action": "BUY", "quantity": count},
                         SignalSource.TRADINGVIEW)
    (admitted,) = journal.signals.admit_many([AdmitRequest(
        alert_id=f"turns-{account}", source="tradingview", account=account,
        remote_addr="127.0.0.1", raw_body="{}", signal=signal, priority=1,
        expires_at=datetime.now(UTC) + timedelta(seconds=300), instrument="NSE:SBIN-EQ",
        key=None, key_expires=None, claimant=None, rate=100)])
    plans = [OrderPlan("NSE", "SBIN-EQ", "BUY", 1, "MIS", "MKT", None, None, False,
                       f"{account}{n}") for n in range(count)]
    orders, _ = journal.orders.add_orders(admitted.signal_id, account, "default", plans)
    return orders


def _turn_reads(engine: Engine) -> list[int]:
    """Counts the journal reads of whose turn it is (the earlier requests still in flight)."""
    reads = [0]

    @event.listens_for(engine, "before_cursor_execute")
    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT broker_calls.id") and "<" in statement:
            reads[0] += 1

    return reads


def test_requests_go_in_token_order_and_wait_for_their_own_without_asking_again(
        engine: Engine) -> None:
    journal = Journal(engine, SystemClock())
    orders = _orders(journal, "a", 6)
    tokens = [journal.queue.take_token("a", 100)[0] for _ in orders]
    assert all(token is not None for token in tokens)
    reads = _turn_reads(engine)
    went: list[int] = []

    def sender(order: OrderRow, token: int) -> None:
        journal.queue.start_sending(order, token)
        went.append(token)
        time.sleep(0.02)  # the broker answering
        journal.queue.finish_sending(token)

    # Started last-first: each must still wait for every request granted before it.
    threads = [threading.Thread(target=sender, args=(order, token))
               for order, token in reversed(list(zip(orders, tokens, strict=True)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert went == tokens
    # One look each: what was ahead was this process's own, and its answers are known here.
    assert reads[0] <= len(tokens)


def _behind_another_process(engine: Engine) -> tuple[Journal, Journal, OrderRow, int, int]:
    """Two processes' journals on one account: ``theirs`` granted a request, then ``ours``
    (with an order to send)."""
    ours, theirs = Journal(engine, SystemClock()), Journal(engine, SystemClock())
    (order,) = _orders(ours, "a", 1)
    their_token, _ = theirs.queue.take_token("a", 100)
    our_token, _ = ours.queue.take_token("a", 100)
    assert their_token is not None and our_token is not None
    return ours, theirs, order, their_token, our_token


def test_a_request_waits_for_another_process_request_granted_before_it(
        engine: Engine) -> None:
    ours, theirs, order, their_token, our_token = _behind_another_process(engine)
    answered_at: list[float] = []

    def their_answer() -> None:
        time.sleep(0.3)
        answered_at.append(time.monotonic())
        theirs.queue.finish_sending(their_token)

    answering = threading.Thread(target=their_answer)
    answering.start()
    ours.queue.start_sending(order, our_token)
    went_at = time.monotonic()
    answering.join(10)
    assert answered_at and went_at >= answered_at[0]


def test_a_request_granted_long_ago_and_never_answered_holds_nothing_back(
        engine: Engine) -> None:
    # Its sender died: after UNSENT_TOKEN_S it no longer counts, by the journal's clock.
    ours, _, order, their_token, our_token = _behind_another_process(engine)
    with engine.begin() as conn:
        conn.execute(update(broker_calls).where(broker_calls.c.id == their_token)
                     .values(at=broker_calls.c.at - UNSENT_TOKEN_S - 1))

    began = time.monotonic()
    ours.queue.start_sending(order, our_token)

    assert time.monotonic() - began < 1.0
