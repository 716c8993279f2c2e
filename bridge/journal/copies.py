"""A fan-out's copies admitted together: one statement per step for all of them.

A signal to a strategy that 200 accounts follow becomes 200 signals, one per account.
Admitting them one after another cost about 14 statements each (2,800 round trips to
PostgreSQL for one alert); here each step (who heads their queue, the rate-limit tokens, the
signal rows, the idempotency keys, the timelines, the orders) is one statement for every copy,
so the cost per copy is a few rows, not a few round trips.

The outcome is exactly what admitting the copies one by one decides
(``_admit_in`` in :mod:`bridge.journal.signals`): the same rows, tokens, keys and events. It
applies only to copies for distinct accounts, which a fan-out's are; anything else is
admitted one by one. Idempotency keys already held are rare (a re-sent alert) and are
resolved one by one, as before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from bridge.journal import statements as st
from bridge.journal.orders import entry_counts_many
from bridge.journal.rows import (
    Admission,
    AdmitRequest,
    Claim,
    OrderRow,
    OrderState,
    SignalRow,
    SignalStatus,
    signal_columns,
)
from bridge.journal.tables import broker_calls, orders, signals
from bridge.journal.tokens import RATE_WINDOW_S, UNSENT_TOKEN_S, now_seconds

_SIGNAL_IDS = insert(signals).returning(signals.c.id, sort_by_parameter_order=True)
_CALL_IDS = insert(broker_calls).returning(broker_calls.c.id, sort_by_parameter_order=True)
_ORDER_IDS = insert(orders).returning(orders.c.id, sort_by_parameter_order=True)
_MARK_SENT = update(broker_calls).where(broker_calls.c.id == bindparam("where_id"))


def distinct_accounts(requests: Sequence[AdmitRequest]) -> bool:
    return len({r.account for r in requests}) == len(requests)


def admit_copies(conn: Connection, dialect: str, now: datetime,
                 requests: Sequence[AdmitRequest], granted: list[tuple[int, str]],
                 hold_key: Callable[[str, int, datetime | None], int | None]
                 ) -> list[Admission]:
    """Admit copies for distinct accounts inside the caller's exclusive transaction."""
    claimable = _heads(conn, [r for r in requests if r.claimant is not None])
    tokens = _take_tokens(conn, dialect, [r for r in requests if r.account in claimable])
    rows = []
    for r in requests:
        token = tokens.get(r.account)
        rows.append({
            **signal_columns(r, now),
            "status": (SignalStatus.DISPATCHING if token is not None
                       else SignalStatus.QUEUED).value,
            "claimed_by": r.claimant if token is not None else None,
            "claimed_at": now if token is not None else None})
    ids = [int(row[0]) for row in conn.execute(_SIGNAL_IDS, rows)]
    originals = _hold_keys(conn, dialect, requests, ids, hold_key)
    timeline: list[dict[str, Any]] = []
    admissions: list[Admission | None] = []
    for r, signal_id in zip(requests, ids, strict=True):
        timeline.append({"signal_id": signal_id, "at": now, "status": "received",
                         "detail": "received"})
        original = originals.get(signal_id)
        if original is not None:
            conn.execute(st.UPDATE_SIGNAL, {
                "where_id": signal_id, "status": SignalStatus.DUPLICATE.value,
                "duplicate_of": original, "claimed_by": None, "claimed_at": None})
            token = tokens.pop(r.account, None)
            if token is not None:
                conn.execute(st.DELETE_CALL, {"where_id": token})
            timeline.append({"signal_id": signal_id, "at": now,
                             "status": SignalStatus.DUPLICATE.value,
                             "detail": f"repeat of signal {original}, answered with its "
                                       "outcome; nothing sent"})
            admissions.append(Admission(signal_id, duplicate_of=original))
            continue
        timeline.append({"signal_id": signal_id, "at": now,
                         "status": SignalStatus.QUEUED.value,
                         "detail": "waiting to be sent to Kotak"})
        if r.account in tokens:
            timeline.append({"signal_id": signal_id, "at": now,
                             "status": SignalStatus.DISPATCHING.value,
                             "detail": "sending to Kotak"})
            admissions.append(None)  # claimed: filled in below, with its orders
        else:
            admissions.append(Admission(signal_id))
    conn.execute(st.INSERT_EVENT, timeline)
    claimed = [(index, r, ids[index]) for index, r in enumerate(requests)
               if admissions[index] is None]
    made = _record_orders(conn, dialect, now, [(r, signal_id, tokens[r.account])
                                                for _, r, signal_id in claimed])
    for (index, r, signal_id), (counts, rows_made, first_sending) in zip(
            claimed, made, strict=True):
        token = tokens[r.account]
        granted.append((token, r.account))
        row = SignalRow(
            id=signal_id, alert_id=r.alert_id, source=r.source, account=r.account,
            received_at=r.received_at or now, status=SignalStatus.DISPATCHING,
            priority=r.priority, signal=r.signal, error=None, duplicate_of=None,
            expires_at=r.expires_at, strategy=r.signal.strategy, symbol=r.signal.symbol,
            instrument=r.instrument, raw_body=r.raw_body, remote_addr=r.remote_addr)
        admissions[index] = Admission(signal_id, claim=Claim(
            row, token, counts, tuple(rows_made), first_sending))
    return [a for a in admissions if a is not None]


def _heads(conn: Connection, requests: Sequence[AdmitRequest]) -> set[str]:
    """The accounts whose copy would head its queue: nothing of the same or a higher
    priority (a lower number) is queued there."""
    if not requests:
        return set()
    waiting: set[str] = set()
    for priority in {r.priority for r in requests}:
        names = [r.account for r in requests if r.priority == priority]
        waiting |= set(conn.execute(
            select(signals.c.account).distinct().where(
                signals.c.status == SignalStatus.QUEUED.value,
                signals.c.account.in_(names), signals.c.priority <= priority)).scalars())
    return {r.account for r in requests} - waiting


def _take_tokens(conn: Connection, dialect: str,
                 requests: Sequence[AdmitRequest]) -> dict[str, int]:
    """One rate-limit token for each account that has one free now (``grant_token`` for
    many accounts at once)."""
    if not requests:
        return {}
    now = now_seconds(conn, dialect)
    used: dict[str, int] = defaultdict(int)
    for account, _at, _done in conn.execute(
            select(broker_calls.c.account, broker_calls.c.at, broker_calls.c.done).where(
                broker_calls.c.account.in_([r.account for r in requests]),
                ((broker_calls.c.done.is_(True)) & (broker_calls.c.at > now - RATE_WINDOW_S))
                | ((broker_calls.c.done.is_(False))
                   & (broker_calls.c.at > now - UNSENT_TOKEN_S)))):
        used[account] += 1
    free = [r.account for r in requests if used[r.account] < r.rate]
    if not free:
        return {}
    made = conn.execute(_CALL_IDS, [{"account": account, "at": now, "sent": False,
                                     "done": False} for account in free])
    return {account: int(row[0]) for account, row in zip(free, made, strict=True)}


def _hold_keys(conn: Connection, dialect: str, requests: Sequence[AdmitRequest],
               ids: list[int], hold_key: Callable[[str, int, datetime | None], int | None]
               ) -> dict[int, int]:
    """Take every copy's idempotency key in one statement; the few already held are
    resolved one by one. Returns {signal id: the earlier signal it repeats}."""
    wanted = [(r, signal_id) for r, signal_id in zip(requests, ids, strict=True)
              if r.key is not None]
    if not wanted:
        return {}
    taken = set(conn.execute(st.CLAIM_KEY[dialect], [
        {"key": r.key, "signal_id": signal_id, "expires_at": r.key_expires}
        for r, signal_id in wanted]).scalars())
    originals: dict[int, int] = {}
    for r, signal_id in wanted:
        if r.key in taken or r.key is None:
            continue
        original = hold_key(r.key, signal_id, r.key_expires)
        if original is not None:
            originals[signal_id] = original
    return originals


def _record_orders(conn: Connection, dialect: str, now: datetime,
                   claimed: list[tuple[AdmitRequest, int, int]]
                   ) -> list[tuple[Any, list[OrderRow], bool]]:
    """Entry counts, planned orders and their events for every claimed copy (``count_entries``
    and ``insert_orders`` for many accounts at once)."""
    if not claimed:
        return []
    asked = [(r.account, r.entry) for r, _, _ in claimed if r.entry is not None]
    found = iter(entry_counts_many(conn, asked))
    counted = [(r, signal_id, token, next(found) if r.entry is not None else None)
               for r, signal_id, token in claimed]
    planned = [(r, signal_id, token, counts,
                r.plan(counts) if r.plan is not None and counts is not None else None)
               for r, signal_id, token, counts in counted]
    busy = _accounts_in_flight(conn, dialect, {r.account: token for r, _, token, _, plans
                                               in planned if plans})
    values: list[dict[str, Any]] = []
    for r, signal_id, _token, _, plans in planned:
        sending = r.account not in busy
        for index, plan in enumerate(plans or []):
            state = OrderState.SENDING if sending and index == 0 else OrderState.CREATED
            values.append({
                "signal_id": signal_id, "account": r.account, "strategy": r.signal.strategy,
                "tag": plan.tag, "exchange": plan.exchange,
                "trading_symbol": plan.trading_symbol, "side": plan.side,
                "quantity": plan.quantity, "product": plan.product,
                "order_type": plan.order_type, "price": plan.price,
                "trigger_price": plan.trigger_price, "is_exit": plan.is_exit,
                "status": state.value, "created_at": now, "updated_at": now,
                "sent_at": now if state is OrderState.SENDING else None})
    order_ids = iter([int(row[0]) for row in conn.execute(_ORDER_IDS, values)]
                     if values else [])
    results: list[tuple[Any, list[OrderRow], bool]] = []
    timeline: list[dict[str, Any]] = []
    sent_tokens: list[dict[str, Any]] = []
    for r, signal_id, token, counts, plans in planned:
        sending = bool(plans) and r.account not in busy
        rows: list[OrderRow] = []
        for index, plan in enumerate(plans or []):
            order_id = next(order_ids)
            state = OrderState.SENDING if sending and index == 0 else OrderState.CREATED
            sent_at = now if state is OrderState.SENDING else None
            rows.append(OrderRow(
                id=order_id, signal_id=signal_id, account=r.account, tag=plan.tag,
                strategy=r.signal.strategy, exchange=plan.exchange,
                trading_symbol=plan.trading_symbol, side=plan.side, quantity=plan.quantity,
                product=plan.product, order_type=plan.order_type, price=plan.price,
                trigger_price=plan.trigger_price, is_exit=plan.is_exit, status=state,
                broker_order_id=None, broker_status=None, filled_quantity=0,
                average_price=None, error_code=None, reason=None, created_at=now,
                sent_at=sent_at, updated_at=now))
            created = {"signal_id": signal_id, "order_id": order_id, "at": now,
                       "status": OrderState.CREATED.value,
                       "detail": f"{plan.side} {plan.quantity} {plan.exchange}:"
                                 f"{plan.trading_symbol} {plan.order_type} {plan.product} "
                                 f"tag {plan.tag}"}
            timeline.append(created)
            if state is OrderState.SENDING:
                timeline.append({**created, "status": OrderState.SENDING.value,
                                 "detail": "sent to Kotak"})
        if sending:
            sent_tokens.append({"where_id": token, "sent": True})
        results.append((counts, rows, sending))
    if timeline:
        conn.execute(st.INSERT_EVENT, timeline)
    if sent_tokens:
        conn.execute(_MARK_SENT, sent_tokens)
    return results


def _accounts_in_flight(conn: Connection, dialect: str, tokens: dict[str, int]) -> set[str]:
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

