"""A fan-out's copies are admitted together, in a few statements for all of them, and the
journal then holds exactly what admitting them one by one wrote: the same statuses, the same
timelines, the same orders, the same rate-limit tokens, the same repeats caught."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from bridge.clock import SystemClock
from bridge.domain import SignalSource
from bridge.journal.journal import Journal
from bridge.journal.rows import AdmitRequest, EntryCounts, EntryQuery, OrderPlan
from bridge.journal.tables import broker_calls, events, orders, signals
from bridge.schemas import load_signal

SINCE = datetime.now(UTC) - timedelta(hours=1)


def _request(account: str, key: str, *, claimant: str | None = "proc-1", rate: int = 10,
             plans: int = 1) -> AdmitRequest:
    signal = load_signal({"symbol": "NSE:SBIN", "action": "BUY", "quantity": 1,
                          "strategy": "fan"}, SignalSource.TRADINGVIEW)

    def plan(_counts: EntryCounts) -> list[OrderPlan]:
        return [OrderPlan("NSE", "SBIN-EQ", "BUY", 1, "MIS", "MKT", None, None, False,
                          f"{account}-{key}-{n}"[:20]) for n in range(plans)]

    return AdmitRequest(
        alert_id=key, source="tradingview", account=account, remote_addr="127.0.0.1",
        raw_body="{}", signal=signal, priority=1, expires_at=datetime.now(UTC) +
        timedelta(minutes=5), instrument="NSE:SBIN-EQ", key=f"id:{account}:{key}"
        if not key.startswith("shared") else f"id:{key}", key_expires=None,
        claimant=claimant, rate=rate,
        entry=EntryQuery(SINCE, "fan", "NSE", "SBIN-EQ"), plan=plan)


def _scene(journal: Journal, prefix: str) -> list[AdmitRequest]:
    """Five accounts, each in a different state, and the copies of one signal to them."""
    name = [f"{prefix}{n}" for n in range(5)]
    # 0: something already queued ahead of the copy (no claimant: it waits in the queue)
    journal.signals.admit_many([_request(name[0], "ahead", claimant=None)])
    # 1: the copy's key is held by an earlier signal: a repeat
    journal.signals.admit_many([_request(name[1], f"shared-{prefix}", plans=1)])
    # 2: out of rate-limit tokens (rate 1, one taken)
    journal.queue.take_token(name[2], 1)
    # 3 and 4: free; 4 gets two orders
    return [_request(name[0], "copy"), _request(name[1], f"shared-{prefix}"),
            _request(name[2], "copy", rate=1), _request(name[3], "copy"),
            _request(name[4], "copy", plans=2)]


def _state(engine: Engine, prefix: str) -> dict[str, Any]:
    """What the journal holds for the accounts of one scene, names made comparable."""
    def plain(account: str) -> str:
        return account.removeprefix(prefix)

    with engine.connect() as conn:
        rows = conn.execute(select(signals).where(signals.c.account.like(f"{prefix}%"))
                            .order_by(signals.c.id)).all()
        ids = [row.id for row in rows]
        timeline = conn.execute(select(events.c.signal_id, events.c.status)
                                .where(events.c.signal_id.in_(ids))
                                .order_by(events.c.id)).all()
        made = conn.execute(select(orders.c.signal_id, orders.c.status, orders.c.quantity)
                            .where(orders.c.signal_id.in_(ids)).order_by(orders.c.id)).all()
        calls = conn.execute(select(broker_calls.c.account, broker_calls.c.sent)
                             .where(broker_calls.c.account.like(f"{prefix}%"))
                             .order_by(broker_calls.c.id)).all()
    position = {signal_id: n for n, signal_id in enumerate(ids)}
    return {
        "signals": [(plain(r.account), r.alert_id.replace(prefix, ""), r.status,
                     r.claimed_by, position.get(r.duplicate_of)) for r in rows],
        # each signal's own timeline in order (copies' timelines are written side by side)
        "events": sorted(((position[s], status) for s, status in timeline),
                         key=lambda entry: entry[0]),
        "orders": [(position[s], status, quantity) for s, status, quantity in made],
        "calls": sorted((plain(account), sent) for account, sent in calls),
    }


def test_copies_admitted_together_are_journaled_as_if_one_by_one(engine: Engine) -> None:
    journal = Journal(engine, SystemClock())
    one_by_one = [journal.signals.admit_many([r])[0] for r in _scene(journal, "one-")]
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    together = journal.signals.admit_many(_scene_and_stop(journal, statements))
    sent = list(statements)

    assert _state(engine, "all-") == _state(engine, "one-")
    assert [(a.duplicate_of is not None, a.claim is not None) for a in together] == [
        (a.duplicate_of is not None, a.claim is not None) for a in one_by_one] == [
        (False, False), (True, False), (False, False), (False, True), (False, True)]
    claimed = [a.claim for a in together if a.claim is not None]
    assert [len(c.orders) for c in claimed] == [1, 2]
    assert all(c.first_sending for c in claimed)
    if engine.dialect.name == "postgresql":
        # One round trip per step for all the copies, not one per copy and step (14 per copy
        # one by one). (SQLite, in the process, inserts row by row where it must say each
        # row's id in order.)
        assert len(sent) <= 20, "\n".join(" ".join(s.split())[:90] for s in sent)


def _scene_and_stop(journal: Journal, statements: list[str]) -> list[AdmitRequest]:
    """Set the scene, then count only the statements of the copies' admission."""
    requests = _scene(journal, "all-")
    statements.clear()
    return requests


def test_the_statements_of_a_fan_out_do_not_grow_with_its_accounts(engine: Engine) -> None:
    """On PostgreSQL every step, the entry counts included, is one statement for all the
    copies: 40 accounts cost the round trips of 2."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite reads the entry counts per account (a statement there is cheap)")
    journal = Journal(engine, SystemClock())
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    counted = []
    for size in (2, 40):
        statements.clear()
        admitted = journal.signals.admit_many([_request(f"grow{size}-{n}", "copy")
                                               for n in range(size)])
        assert all(a.claim is not None and a.claim.first_sending for a in admitted)
        counted.append(len(statements))
    assert counted[1] == counted[0], counted
