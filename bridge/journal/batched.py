"""Steps of sending done for many accounts in one statement each, inside the caller's
exclusive transaction over those accounts' queues.

Shared by the admission of a fan-out's copies (:mod:`bridge.journal.copies`) and the
dispatcher's claim of many accounts' queue heads (:mod:`bridge.journal.heads`): the rate-limit
tokens, and each claimed signal's entry counts, planned orders and their timeline. Each does
exactly what its one-account form does (``grant_token``, ``count_entries`` and
``insert_orders``, ``in_flight_before``), so what a signal becomes does not depend on whether it
was claimed alone or beside a hundred others.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from bridge.journal import statements as st
from bridge.journal.bulk import insert_returning
from bridge.journal.orders import entry_counts_many
from bridge.journal.rows import EntryCounts, EntryQuery, OrderRow, OrderState, Planner
from bridge.journal.tables import broker_calls, orders
from bridge.journal.tokens import RATE_WINDOW_S, UNSENT_TOKEN_S, now_seconds, window_wait

_MARK_SENT = update(broker_calls).where(broker_calls.c.id == bindparam("where_id"))


@dataclass(frozen=True)
class Intent:
    """A claimed signal whose orders may be recorded with its claim: whose they are, what
    the entry rules count for it, and how its orders are made from those counts (no planner,
    or a planner that answers ``None``: nothing is recorded and the sender decides)."""

    account: str
    strategy: str
    signal_id: int
    token: int
    entry: EntryQuery | None
    plan: Planner | None


def take_tokens(conn: Connection, dialect: str,
                rates: dict[str, int]) -> tuple[dict[str, int], dict[str, float]]:
    """One rate-limit token for each account that has one free now (``grant_token`` for many
    accounts at once): {account: token}, and for the others {account: seconds until one
    frees}."""
    if not rates:
        return {}, {}
    now = now_seconds(conn, dialect)
    moments: dict[str, list[float]] = defaultdict(list)
    for account, at, done in conn.execute(
            select(broker_calls.c.account, broker_calls.c.at, broker_calls.c.done).where(
                broker_calls.c.account.in_(list(rates)),
                ((broker_calls.c.done.is_(True)) & (broker_calls.c.at > now - RATE_WINDOW_S))
                | ((broker_calls.c.done.is_(False))
                   & (broker_calls.c.at > now - UNSENT_TOKEN_S)))):
        # A request not yet answered counts as happening now (see ``grant_token``).
        moments[account].append(float(at) if done else now)
    free: list[str] = []
    waits: dict[str, float] = {}
    for account, rate in rates.items():
        if len(moments[account]) < rate:
            free.append(account)
        else:
            waits[account] = window_wait(moments[account], rate, now)
    if not free:
        return {}, waits
    made = dict(insert_returning(conn, broker_calls, [
        {"account": account, "at": now, "sent": False, "done": False} for account in free],
        ("account", "id")))
    return {account: int(made[account]) for account in free}, waits


def record_orders(conn: Connection, dialect: str, now: datetime, intents: list[Intent]
                  ) -> list[tuple[EntryCounts | None, list[OrderRow], bool]]:
    """Entry counts, planned orders and their events for every claimed signal
    (``count_entries`` and ``insert_orders`` for many accounts at once): for each, its counts,
    the orders recorded and whether the first is already marked ``sending`` (its account had
    no earlier request in flight, so its turn is now)."""
    if not intents:
        return []
    asked = [(i.account, i.entry) for i in intents if i.entry is not None]
    found = iter(entry_counts_many(conn, asked))
    counted = [(i, next(found) if i.entry is not None else None) for i in intents]
    planned = [(i, counts, i.plan(counts) if i.plan is not None and counts is not None
                else None) for i, counts in counted]
    busy = accounts_in_flight(conn, dialect, {i.account: i.token for i, _, plans in planned
                                              if plans})
    values: list[dict[str, Any]] = []
    for i, _, plans in planned:
        sending = i.account not in busy
        for index, plan in enumerate(plans or []):
            state = OrderState.SENDING if sending and index == 0 else OrderState.CREATED
            values.append({
                "signal_id": i.signal_id, "account": i.account, "strategy": i.strategy,
                "tag": plan.tag, "exchange": plan.exchange,
                "trading_symbol": plan.trading_symbol, "side": plan.side,
                "quantity": plan.quantity, "product": plan.product,
                "order_type": plan.order_type, "price": plan.price,
                "trigger_price": plan.trigger_price, "is_exit": plan.is_exit,
                "status": state.value, "created_at": now, "updated_at": now,
                "sent_at": now if state is OrderState.SENDING else None})
    order_ids = dict(insert_returning(conn, orders, values, ("tag", "id")))
    results: list[tuple[EntryCounts | None, list[OrderRow], bool]] = []
    timeline: list[dict[str, Any]] = []
    sent_tokens: list[dict[str, Any]] = []
    for i, counts, plans in planned:
        sending = bool(plans) and i.account not in busy
        rows: list[OrderRow] = []
        for index, plan in enumerate(plans or []):
            order_id = int(order_ids[plan.tag])
            state = OrderState.SENDING if sending and index == 0 else OrderState.CREATED
            sent_at = now if state is OrderState.SENDING else None
            rows.append(OrderRow(
                id=order_id, signal_id=i.signal_id, account=i.account, tag=plan.tag,
                strategy=i.strategy, exchange=plan.exchange,
                trading_symbol=plan.trading_symbol, side=plan.side, quantity=plan.quantity,
                product=plan.product, order_type=plan.order_type, price=plan.price,
                trigger_price=plan.trigger_price, is_exit=plan.is_exit, status=state,
                broker_order_id=None, broker_status=None, filled_quantity=0,
                average_price=None, error_code=None, reason=None, created_at=now,
                sent_at=sent_at, updated_at=now))
            created = {"signal_id": i.signal_id, "order_id": order_id, "at": now,
                       "status": OrderState.CREATED.value,
                       "detail": f"{plan.side} {plan.quantity} {plan.exchange}:"
                                 f"{plan.trading_symbol} {plan.order_type} {plan.product} "
                                 f"tag {plan.tag}"}
            timeline.append(created)
            if state is OrderState.SENDING:
                timeline.append({**created, "status": OrderState.SENDING.value,
                                 "detail": "sent to Kotak"})
        if sending:
            sent_tokens.append({"where_id": i.token, "sent": True})
        results.append((counts, rows, sending))
    if timeline:
        conn.execute(st.INSERT_EVENT, timeline)
    if sent_tokens:
        conn.execute(_MARK_SENT, sent_tokens)
    return results


def accounts_in_flight(conn: Connection, dialect: str, tokens: dict[str, int]) -> set[str]:
    """The accounts with a request granted before their new token and not yet answered
    (``in_flight_before`` for many accounts at once)."""
    if not tokens:
        return set()
    now = now_seconds(conn, dialect)
    busy = set()
    for account, token_id in conn.execute(
            select(broker_calls.c.account, broker_calls.c.id).where(
                broker_calls.c.account.in_(list(tokens)), broker_calls.c.done.is_(False),
                broker_calls.c.at > now - UNSENT_TOKEN_S)):
        if int(token_id) < tokens[account]:
            busy.add(account)
    return busy
