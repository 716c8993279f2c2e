"""The dispatcher's claim of many accounts' queue heads in one transaction.

A burst of signals to 50 accounts leaves each account a queue; claiming each head in a
transaction of its own (``QueueStore.take_head``: seven statements) made the dispatcher's pass
over 50 accounts take a second under load, so each account sent about one order a second
whatever its rate limit. Here every step (the heads, the tokens, the claims and their timeline,
the orders a dead process left, and, for a plain signal, its entry counts and orders with the
first marked ``sending``) is one statement for all the accounts, as a fan-out's admission is
(:mod:`bridge.journal.copies`).

What each account's head becomes is what ``take_head`` followed by the sender's own recording
decides: the head is the queued signal of the lowest priority number, then the oldest, not
past its validity; it is claimed only with a rate-limit token; orders recorded by a dead
process are sent as recorded, never re-planned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, update

from bridge.journal import statements as st
from bridge.journal.batched import Intent, record_orders, take_tokens
from bridge.journal.rows import (
    Claim,
    EntryQuery,
    OrderRow,
    OrderState,
    Planner,
    SignalRow,
    SignalStatus,
    order_row,
    signal_row,
)
from bridge.journal.tables import signals

#: for a claimed signal: what the entry rules count and how its orders are made, or
#: ``(None, None)`` to leave the planning to its sender
PlanFor = Callable[[SignalRow], tuple[EntryQuery | None, Planner | None]]

_CLAIM = update(signals).where(signals.c.id == bindparam("where_id")).values(
    status=SignalStatus.DISPATCHING.value, claimed_by=bindparam("process"),
    claimed_at=bindparam("now"), updated_at=bindparam("now"))


def heads(conn: Connection, accounts: list[str], now: datetime) -> list[Any]:
    """Each account's next queued signal, one query: the first by priority, then id. It
    reads every queued signal of these accounts, a few per account: each queue drains at
    the account's rate and nothing stays in it past ``SIGNAL_TTL_S``."""
    rank = func.row_number().over(partition_by=signals.c.account,
                                  order_by=(signals.c.priority, signals.c.id)).label("rank")
    ranked = select(signals, rank).where(
        signals.c.account.in_(accounts), signals.c.status == SignalStatus.QUEUED.value,
        or_(signals.c.expires_at.is_(None), signals.c.expires_at > now)).subquery()
    return list(conn.execute(select(ranked).where(ranked.c.rank == 1)
                             .order_by(ranked.c.id)).all())


def claim_heads(conn: Connection, dialect: str, now: datetime, rates: dict[str, int],
                process_id: str, plan_for: PlanFor | None
                ) -> tuple[list[Claim], dict[str, float]]:
    """Inside an exclusive transaction over the accounts' queues: claim each account's head
    with a rate-limit token. Returns the claims and, for accounts whose head must wait for
    a token, how many seconds until one frees."""
    found = heads(conn, list(rates), now)
    if not found:
        return [], {}
    tokens, waits = take_tokens(conn, dialect, {row.account: rates[row.account]
                                                for row in found})
    claimed = [row for row in found if row.account in tokens]
    if not claimed:
        return [], waits
    conn.execute(_CLAIM, [{"where_id": row.id, "process": process_id, "now": now}
                          for row in claimed])
    conn.execute(st.INSERT_EVENT, [{"signal_id": row.id, "at": now,
                                    "status": SignalStatus.DISPATCHING.value,
                                    "detail": "sending to Kotak"} for row in claimed])
    left: dict[int, list[OrderRow]] = {}
    for order in conn.execute(st.ORDERS_OF_SIGNALS, {"ids": [row.id for row in claimed]}):
        left.setdefault(int(order.signal_id), []).append(order_row(order))
    rows = [replace(signal_row(row), status=SignalStatus.DISPATCHING) for row in claimed]
    # Orders a dead process recorded and never sent go as recorded (take_over); the rest
    # are planned here when their planner can.
    intents: list[Intent] = []
    for row in rows:
        if plan_for is None or row.id in left or row.signal is None:
            continue
        entry, plan = plan_for(row)
        if plan is not None:
            intents.append(Intent(row.account, row.signal.strategy, row.id,
                                  tokens[row.account], entry, plan))
    made = dict(zip([i.signal_id for i in intents],
                    record_orders(conn, dialect, now, intents), strict=True))
    claims = []
    for row in rows:
        token = tokens[row.account]
        if row.id in made:
            counts, recorded, first_sending = made[row.id]
            claims.append(Claim(row, token, counts, tuple(recorded), first_sending))
        else:
            unsent = tuple(order for order in left.get(row.id, ())
                           if order.status is OrderState.CREATED)
            claims.append(Claim(row, token, orders=unsent))
    return claims, waits
