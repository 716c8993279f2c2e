"""A signal's status, derived from its orders' states, and its recording (settling).

Both the signal store (:meth:`SignalStore.settle`) and the order store (every order change
brings its signal's status along in the same transaction) settle a signal, so this sits
beneath both of them rather than in either.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from bridge.journal import statements as st
from bridge.journal.rows import (
    ErrorInfo,
    OrderRow,
    OrderState,
    SignalStatus,
    error_columns,
    order_row,
    storable,
)


def derive_status(orders: list[OrderRow]) -> tuple[SignalStatus, ErrorInfo | None]:
    """A signal's status from its orders' states.

    Orders that proved never to have arrived are history once the signal was sent again.
    """
    resent = [o for o in orders if o.status is not OrderState.NOT_PLACED]
    if resent and len(resent) < len(orders):
        orders = resent
    states = [o.status for o in orders]
    if any(s is OrderState.UNKNOWN for s in states):
        unknown = next(o for o in orders if o.status is OrderState.UNKNOWN)
        return SignalStatus.UNKNOWN, ErrorInfo(
            "outcome_unknown", unknown.reason or "sent to Kotak without an answer; it is being "
            "settled from the order book by its tag (never re-sent)", {"tag": unknown.tag})
    if any(s in (OrderState.CREATED, OrderState.SENDING) for s in states):
        return SignalStatus.DISPATCHING, None  # still being sent
    accepted = [o for o in orders if o.status.accepted]
    failed = [o for o in orders if o.status in (OrderState.REJECTED, OrderState.FAILED,
                                                OrderState.NOT_PLACED)]
    if accepted:
        if failed:
            first = failed[0]
            return SignalStatus.PARTIAL, ErrorInfo(
                "partial", f"{len(accepted)} of {len(orders)} orders placed; "
                           f"{first.side} {first.quantity} {first.trading_symbol}: "
                           f"{first.reason or first.status.value}",
                {"placed": [f"{o.side} {o.quantity} {o.trading_symbol}" for o in accepted],
                 "not_placed": [f"{o.side} {o.quantity} {o.trading_symbol}" for o in failed]})
        return SignalStatus.PLACED, None
    first = failed[0] if failed else orders[0]
    code = first.error_code or ("broker_rejected" if first.status is OrderState.REJECTED
                                else "not_placed")
    reason = first.reason or first.status.value
    if first.status is OrderState.REJECTED:
        return SignalStatus.REJECTED, ErrorInfo(code, reason, {"tag": first.tag})
    if first.status is OrderState.NOT_PLACED:
        return SignalStatus.FAILED, ErrorInfo("not_placed", reason, {"tag": first.tag})
    return SignalStatus.FAILED, ErrorInfo(code, reason, {"tag": first.tag})


def _summary(orders: list[OrderRow]) -> str:
    return "; ".join(f"{o.side} {o.quantity} {o.trading_symbol}: {o.status.value}"
                     for o in orders)


def settle_signals(conn: Connection, signal_ids: list[int], now: datetime,
                   events: list[dict[str, Any]] | None = None) -> dict[int, SignalStatus]:
    """Within a write transaction: bring each signal's recorded status in line with its
    orders (three statements for any number of signals, plus one per changed signal).

    ``events``: the caller's events not yet written; the signals' own follow them in one
    statement. Returns the status of each signal that has orders."""
    news: list[dict[str, Any]] = list(events or [])
    if not signal_ids:
        if news:
            conn.execute(st.INSERT_EVENT, news)
        return {}
    wanted = sorted(set(signal_ids))
    states: dict[int, Any]
    if len(wanted) == 1:  # the usual lone signal: plain lookups, cheaper than IN lists
        state = conn.execute(st.SIGNAL_STATE, {"where_id": wanted[0]}).first()
        states = {wanted[0]: state} if state is not None else {}
        orders = conn.execute(st.ORDERS_OF, {"where_signal": wanted[0]})
    else:
        states = {int(row.id): row for row in conn.execute(st.SIGNAL_STATES, {"ids": wanted})}
        orders = conn.execute(st.ORDERS_OF_SIGNALS, {"ids": wanted})
    found: dict[int, list[OrderRow]] = {}
    for order in orders:
        found.setdefault(int(order.signal_id), []).append(order_row(order))
    settled: dict[int, SignalStatus] = {}
    for signal_id in wanted:
        row, its_orders = states.get(signal_id), found.get(signal_id)
        if row is None or not its_orders:
            continue
        status, error = derive_status(its_orders)
        settled[signal_id] = status
        same_error = (error.code, error.message) == (row.error_code, row.error_message) \
            if error is not None else row.error_code is None
        if status.value == row.status and same_error:
            continue
        values: dict[str, Any] = {"status": status.value, "updated_at": now}
        values.update(error_columns(error) if error is not None else
                      {"error_code": None, "error_message": None, "error_details": None})
        if not status.pending:
            values.update(claimed_by=None, claimed_at=None)
        conn.execute(st.UPDATE_SIGNAL, {"where_id": signal_id, **values})
        if status.value != row.status:
            news.append({"signal_id": signal_id, "order_id": None, "at": now,
                         "status": status.value,
                         "detail": storable(error.message if error else _summary(its_orders))})
    if news:
        conn.execute(st.INSERT_EVENT, news)
    return settled


def settle_signal(conn: Connection, signal_id: int, now: datetime) -> SignalStatus | None:
    """Within a write transaction: :func:`settle_signals` for one signal."""
    return settle_signals(conn, [signal_id], now).get(signal_id)
