"""The dispatcher claims many accounts' queue heads in one transaction: each account gets
exactly the head ``take_head`` would give it (priority, then age, never an expired one, only
with a rate-limit token), a plain signal's orders are recorded with its claim and the first
marked ``sending``, and the statements do not grow with the accounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, event, select

from bridge.clock import SystemClock
from bridge.domain import SignalSource
from bridge.journal.journal import Journal
from bridge.journal.rows import (
    AdmitRequest,
    EntryCounts,
    EntryQuery,
    OrderPlan,
    OrderState,
    Planner,
    SignalRow,
    SignalStatus,
)
from bridge.journal.tables import broker_calls, events
from bridge.journal.tokens import RATE_WINDOW_S
from bridge.schemas import load_signal

SINCE = datetime.now(UTC) - timedelta(hours=1)


def _queue(journal: Journal, account: str, alert_id: str, *, priority: int = 1,
           expires_in: float = 300) -> int:
    """A signal admitted with nobody to claim it: it waits in the account's queue."""
    signal = load_signal({"symbol": "NSE:SBIN", "action": "BUY", "quantity": 1,
                          "strategy": "fan"}, SignalSource.TRADINGVIEW)
    (admitted,) = journal.signals.admit_many([AdmitRequest(
        alert_id=alert_id, source="tradingview", account=account, remote_addr="127.0.0.1",
        raw_body="{}", signal=signal, priority=priority,
        expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
        instrument="NSE:SBIN-EQ", key=None, key_expires=None, claimant=None, rate=10)])
    return admitted.signal_id


def _plan_for(row: SignalRow) -> tuple[EntryQuery | None, Planner | None]:
    def plan(_counts: EntryCounts) -> list[OrderPlan]:
        return [OrderPlan("NSE", "SBIN-EQ", "BUY", 1, "MIS", "MKT", None, None, False,
                          f"t{row.id}")]

    return EntryQuery(SINCE, "fan", "NSE", "SBIN-EQ"), plan


def test_each_account_gets_its_own_head_and_only_with_a_token(engine: Engine) -> None:
    journal = Journal(engine, SystemClock())
    # a: the exit (priority 0) goes before the older entry
    _queue(journal, "a", "a-entry", priority=1)
    _queue(journal, "a", "a-exit", priority=0)
    # b: out of rate-limit tokens (rate 1, one taken)
    _queue(journal, "b", "b-1")
    journal.queue.take_token("b", 1)
    # c: only an expired signal; d: nothing queued; e: two in arrival order
    _queue(journal, "c", "c-old", expires_in=-1)
    _queue(journal, "e", "e-1")
    _queue(journal, "e", "e-2")

    claims, waits = journal.queue.take_heads({"a": 10, "b": 1, "c": 10, "d": 10, "e": 10},
                                             "proc-1", _plan_for)

    assert sorted(c.row.alert_id for c in claims) == ["a-exit", "e-1"]
    assert set(waits) == {"b"} and 0 < waits["b"] <= RATE_WINDOW_S
    for claim in claims:
        assert claim.row.status is SignalStatus.DISPATCHING
        assert journal.signals.signal(claim.row.id).status is SignalStatus.DISPATCHING
        (order,) = claim.orders
        assert claim.first_sending and order.status is OrderState.SENDING
        assert [o.status for o in journal.orders.orders_of(claim.row.id)] == [
            OrderState.SENDING]
    with engine.connect() as conn:
        sent = conn.execute(select(broker_calls.c.id, broker_calls.c.sent).where(
            broker_calls.c.id.in_([c.token for c in claims]))).all()
        timeline = [status for (status,) in conn.execute(
            select(events.c.status).where(events.c.signal_id == claims[0].row.id)
            .order_by(events.c.id))]
    assert len(sent) == 2 and all(flag for _, flag in sent)
    assert timeline[-3:] == ["dispatching", "created", "sending"]

    # The next pass gives each account its next head: a's entry, then e's second.
    again, _ = journal.queue.take_heads({"a": 10, "e": 10}, "proc-1", None)
    assert sorted(c.row.alert_id for c in again) == ["a-entry", "e-2"]
    assert all(c.orders == () for c in again)  # no planner: the sender records them


def test_an_account_with_a_request_in_flight_waits_for_its_turn(engine: Engine) -> None:
    """Its claim's order is recorded but not marked ``sending``: the sender waits for the
    earlier request's answer first, as at admission."""
    journal = Journal(engine, SystemClock())
    _queue(journal, "busy", "busy-1")
    journal.queue.take_token("busy", 10)  # granted, not yet answered
    (claim,), _ = journal.queue.take_heads({"busy": 10}, "proc-1", _plan_for)
    assert not claim.first_sending
    assert [o.status for o in claim.orders] == [OrderState.CREATED]


def test_the_claim_of_many_accounts_costs_the_statements_of_two(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite reads the entry counts per account (a statement there is cheap)")
    journal = Journal(engine, SystemClock())
    counted = []
    for accounts in (2, 40):
        names = [f"n{accounts}-{n}" for n in range(accounts)]
        for name in names:
            _queue(journal, name, f"{name}-1")
        statements: list[str] = []

        def count(*args: object, into: list[str] = statements) -> None:
            into.append(str(args[2]))

        event.listen(engine, "before_cursor_execute", count)
        claims, _ = journal.queue.take_heads(dict.fromkeys(names, 10), "proc-1", _plan_for)
        event.remove(engine, "before_cursor_execute", count)
        assert len(claims) == accounts
        counted.append(len(statements))
    assert counted[1] == counted[0], counted
