"""The orders the bridge records for its signals (and its square-offs): writing them before
they are sent, moving their states forward as Kotak answers, and the lookups the senders,
the tracker and the entry rules make of them.

Separate from the signal rows because an order has a life of its own after its signal is
settled (tracking, fills, square-offs); an order change still settles its signal in the
same transaction, through :mod:`bridge.journal.status`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from bridge.clock import Clock
from bridge.journal import statements as st
from bridge.journal.entries import blocked_day, closed_key
from bridge.journal.group_commit import GroupCommit
from bridge.journal.rows import (
    UNCAPPED,
    WORKING_ORDER_STATES,
    EntryCounts,
    EntryQuery,
    OrderPlan,
    OrderRow,
    OrderState,
    new_id,
    order_row,
    storable,
)
from bridge.journal.status import settle_signals
from bridge.journal.tables import orders
from bridge.journal.tokens import Turns, in_flight_before, stamp_answers
from bridge.journal.txn import writing

#: how far along each state is; an order's state never moves back (two threads may learn of
#: the same order in either order: the sender's "accepted" and the tracker's "complete")
_PROGRESS = {"created": 0, "sending": 1, "unknown": 2, "pending": 3, "open": 4,
             "trigger_pending": 4, "complete": 5, "rejected": 5, "cancelled": 5,
             "not_placed": 5, "failed": 5}


@dataclass(frozen=True)
class OrderChange:
    """An order's new state and what the broker said (see :meth:`OrderStore.set_order`)."""

    order_id: int
    state: OrderState
    detail: str = ""
    answered: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)


class OrderStore:
    def __init__(self, engine: Engine, clock: Clock, turns: Turns) -> None:
        self.engine = engine
        self._clock = clock
        self._turns = turns
        # Concurrent changes (a fan-out's answers) share one transaction.
        self._changes: GroupCommit[OrderChange, bool] = GroupCommit(
            self._write_changes, lambda change: self._write_changes([change])[0])

    def add_orders(self, signal_id: int | None, account: str, strategy: str,
                   plans: list[OrderPlan],
                   send_first_with: int | None = None) -> tuple[list[OrderRow], bool]:
        """Record the orders a signal will send (``created``).

        With ``send_first_with`` (the first order's rate-limit token) and no earlier request
        of the account still waiting for its answer, the first order is recorded as
        ``sending`` straight away, saving a round trip on the common path; the second value
        returned says whether that happened (else :meth:`QueueStore.start_sending` must wait
        its turn).
        """
        with writing(self.engine) as conn:
            return insert_orders(conn, self._clock.now(), signal_id, account, strategy, plans,
                                  send_first_with)

    def set_order(self, order_id: int, state: OrderState, *, detail: str = "",
                  answered: int | None = None, **fields: Any) -> bool:
        """Record an order's new state and whatever the broker said, and bring its signal's
        status along, in one transaction. Events only on change; returns whether it changed.

        ``answered``: the rate-limit token of the request whose answer this is, stamped in
        the same transaction (see :meth:`QueueStore.finish_sending`).
        """
        change = OrderChange(order_id, state, detail, answered, {
            key: storable(value) if isinstance(value, str) else value
            for key, value in fields.items()})
        try:
            return self._changes.write(change)
        finally:
            if answered is not None:
                self._turns.answered(answered)

    def set_orders(self, changes: list[OrderChange]) -> list[bool]:
        """:meth:`set_order` for many orders, in one transaction, in order; whether each
        changed anything. (Text fields are stored as :meth:`set_order` stores them.)"""
        if not changes:
            return []
        try:
            return self._write_changes([OrderChange(
                c.order_id, c.state, c.detail, c.answered,
                {key: storable(value) if isinstance(value, str) else value
                 for key, value in c.fields.items()}) for c in changes])
        finally:
            for change in changes:
                if change.answered is not None:
                    self._turns.answered(change.answered)

    def _write_changes(self, changes: list[OrderChange]) -> list[bool]:
        """Record ``changes`` in one transaction, in order; whether each changed anything."""
        now = self._clock.now()
        with writing(self.engine) as conn:
            stamp_answers(conn, [c.answered for c in changes if c.answered is not None],
                          self.engine.dialect.name)
            return _set_orders(conn, changes, now)

    def order(self, order_id: int) -> OrderRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(st.ORDER_BY_ID, {"where_id": order_id}).first()
        return order_row(row) if row is not None else None

    def orders_by_ids(self, order_ids: list[int]) -> dict[int, OrderRow]:
        """The orders of ``order_ids`` that exist, by id, in one query."""
        with self.engine.connect() as conn:
            rows = conn.execute(st.ORDERS_BY_IDS, {"ids": order_ids}).all()
        return {int(row.id): order_row(row) for row in rows}

    def orders_of(self, signal_id: int) -> list[OrderRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(st.ORDERS_OF, {"where_signal": signal_id}).all()
        return [order_row(row) for row in rows]

    def order_by_broker_id(self, account: str, broker_order_id: str) -> OrderRow | None:
        """The bridge's own order that Kotak numbered ``broker_order_id``, if it is one."""
        with self.engine.connect() as conn:
            row = conn.execute(select(orders).where(
                orders.c.account == account, orders.c.broker_order_id == broker_order_id)
                .order_by(orders.c.id.desc()).limit(1)).first()
        return order_row(row) if row is not None else None

    def working_orders(self, account: str | None = None) -> list[OrderRow]:
        query = select(orders).where(orders.c.status.in_([s.value for s in
                                                          WORKING_ORDER_STATES]))
        if account is not None:
            query = query.where(orders.c.account == account)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(orders.c.id)).all()
        return [order_row(row) for row in rows]

    def accounts_with_working_orders(self, last_touched_before: datetime | None = None
                                     ) -> list[str]:
        """Accounts with orders not yet final; with ``last_touched_before``, only those with
        such an order sent (or, never sent, last changed) before then."""
        query = select(orders.c.account).distinct().where(
            orders.c.status.in_([s.value for s in WORKING_ORDER_STATES]))
        if last_touched_before is not None:
            query = query.where(func.coalesce(orders.c.sent_at, orders.c.updated_at)
                                < last_touched_before)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [str(row.account) for row in rows]

    def entry_counts(self, account: str, entry: EntryQuery) -> EntryCounts:
        """What the entry rules need, in one query."""
        with self.engine.connect() as conn:
            return count_entries(conn, account, entry)

    def last_order_id(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(orders.c.id))).scalar() or 0)

    def signal_orders_after(self, account: str, order_id: int) -> set[str]:
        """``EXCH:SYMBOL:PRODUCT`` of orders that signals of ``account`` recorded after the
        order ``order_id`` (ids only grow, whatever the clock says)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(orders.c.exchange, orders.c.trading_symbol,
                                       orders.c.product).distinct()
                                .where(orders.c.account == account,
                                       orders.c.signal_id.is_not(None),
                                       orders.c.id > order_id)).all()
        return {f"{row.exchange}:{row.trading_symbol}:{row.product}" for row in rows}


def orders_by_signal(conn: Connection, signal_ids: list[int]) -> dict[int, list[OrderRow]]:
    """The orders of each of ``signal_ids`` (an empty list for one with none), in one query."""
    found: dict[int, list[OrderRow]] = {signal_id: [] for signal_id in signal_ids}
    if signal_ids:
        for row in conn.execute(select(orders).where(orders.c.signal_id.in_(signal_ids))
                                .order_by(orders.c.id)).all():
            found[int(row.signal_id)].append(order_row(row))
    return found


def count_entries(conn: Connection, account: str, entry: EntryQuery) -> EntryCounts:
    row = conn.execute(st.ENTRY_COUNTS, entry_params(account, entry)).one()
    return entry_counts(row, entry)


def entry_params(account: str, entry: EntryQuery) -> dict[str, Any]:
    """The parameters of st.ENTRY_COUNTS (and of its columns in st.ADMIT_READS_COUNTED)."""
    return {"account": account, "since": entry.since, "strategy": entry.strategy,
            "exchange": entry.exchange, "trading_symbol": entry.trading_symbol,
            "closed_key": closed_key(account, entry.exchange),
            "account_cap": entry.account_cap, "strategy_cap": entry.strategy_cap,
            "quantity_rows": UNCAPPED if entry.sum_quantity else 0}


def entry_counts_many(conn: Connection, wanted: list[tuple[str, EntryQuery]]
                      ) -> list[EntryCounts]:
    """:func:`count_entries` for many accounts: one statement on PostgreSQL (a fan-out's
    copies), one per account on SQLite, where a statement is cheap."""
    if conn.dialect.name != "postgresql" or len(wanted) < 2:
        return [count_entries(conn, account, entry) for account, entry in wanted]
    entries = [entry for _, entry in wanted]
    rows = conn.execute(st.ENTRY_COUNTS_MANY_PG, {
        "accounts": [account for account, _ in wanted],
        "since": [entry.since for entry in entries],
        "strategies": [entry.strategy for entry in entries],
        "exchanges": [entry.exchange for entry in entries],
        "symbols": [entry.trading_symbol for entry in entries],
        "account_caps": [entry.account_cap for entry in entries],
        "strategy_caps": [entry.strategy_cap for entry in entries],
        "quantity_rows": [UNCAPPED if entry.sum_quantity else 0 for entry in entries],
        "closed_keys": [closed_key(account, entry.exchange) for account, entry in wanted],
    }).all()
    return [entry_counts(row, entry) for row, entry in zip(rows, entries, strict=True)]


def entry_counts(row: Any, entry: EntryQuery) -> EntryCounts:
    """What st.ENTRY_COUNTS read (its five columns, in order)."""
    return EntryCounts(int(row[0] or 0), int(row[1] or 0), int(row[2] or 0), row[3] == "on",
                       blocked_day(row[4]) == entry.since.date().isoformat())


def insert_orders(conn: Connection, now: datetime, signal_id: int | None, account: str,
                   strategy: str, plans: list[OrderPlan],
                   send_first_with: int | None, *, first_in_line: bool | None = None,
                   timeline: list[dict[str, Any]] | None = None,
                   token_marked: bool = False) -> tuple[list[OrderRow], bool]:
    """Within a write transaction: the body of :meth:`OrderStore.add_orders`.

    ``first_in_line``: whether ``send_first_with`` has no earlier request of the account
    still waiting for its answer, when the caller granted it in this transaction and so
    knows (else the journal is asked). ``timeline``: the signal's own events, written
    before the orders' in the same statement. ``token_marked``: the token was recorded as
    sent when granted, should its request go at once."""
    rows: list[OrderRow] = []
    if first_in_line is None:
        first_in_line = send_first_with is not None and not in_flight_before(
            conn, account, send_first_with, conn.dialect.name)
    sending = send_first_with is not None and first_in_line
    # One statement takes its columns from the first row: the signal's own events name
    # no order.
    entries = [{"order_id": None, **event} for event in timeline or []]
    for index, plan in enumerate(plans):
        state = OrderState.SENDING if sending and index == 0 else OrderState.CREATED
        sent_at = now if state is OrderState.SENDING else None
        order_id = new_id(conn.execute(st.INSERT_ORDER, {
            "signal_id": signal_id, "account": account, "strategy": strategy,
            "tag": plan.tag, "exchange": plan.exchange, "trading_symbol": plan.trading_symbol,
            "side": plan.side, "quantity": plan.quantity, "product": plan.product,
            "order_type": plan.order_type, "price": plan.price,
            "trigger_price": plan.trigger_price, "is_exit": plan.is_exit,
            "status": state.value, "created_at": now, "updated_at": now, "sent_at": sent_at}))
        rows.append(OrderRow(
            id=order_id, signal_id=signal_id, account=account, tag=plan.tag,
            strategy=strategy, exchange=plan.exchange, trading_symbol=plan.trading_symbol,
            side=plan.side, quantity=plan.quantity, product=plan.product,
            order_type=plan.order_type, price=plan.price, trigger_price=plan.trigger_price,
            is_exit=plan.is_exit, status=state, broker_order_id=None, broker_status=None,
            filled_quantity=0, average_price=None, error_code=None, reason=None,
            created_at=now, sent_at=sent_at, updated_at=now))
        created = {"signal_id": signal_id, "order_id": order_id, "at": now,
                   "status": OrderState.CREATED.value,
                   "detail": f"{plan.side} {plan.quantity} {plan.exchange}:"
                             f"{plan.trading_symbol} {plan.order_type} {plan.product} "
                             f"tag {plan.tag}"}
        entries.append(created)
        if state is OrderState.SENDING:
            entries.append({**created, "status": OrderState.SENDING.value,
                            "detail": "sent to Kotak"})
    if entries:
        conn.execute(st.INSERT_EVENT, entries)
    if sending and not token_marked:
        conn.execute(st.UPDATE_CALL, {"where_id": send_first_with, "sent": True})
    return rows, sending


def _set_orders(conn: Connection, changes: list[OrderChange], now: datetime) -> list[bool]:
    """Within a write transaction: apply ``changes`` in order, then settle their signals.

    Events only on change. A second change to one order is applied after the first (its
    own round), so every change sees what the one before it wrote."""
    touched: set[int] = set()
    rounds: list[list[int]] = []
    seen: dict[int, int] = {}
    for index, change in enumerate(changes):
        turn = seen.get(change.order_id, 0)
        seen[change.order_id] = turn + 1
        if turn == len(rounds):
            rounds.append([])
        rounds[turn].append(index)
    changed_at: dict[int, bool] = {}
    news: list[dict[str, Any]] = []
    for indexes in rounds:
        current = {int(row.id): row for row in (
            conn.execute(st.ORDERS_BY_IDS, {"ids": [changes[i].order_id for i in indexes]})
            if len(indexes) > 1 else  # the usual lone change: a plain, cheaper lookup
            conn.execute(st.ORDER_BY_ID, {"where_id": changes[indexes[0]].order_id}))}
        # In the global order of ids, so two batches over the same orders cannot deadlock.
        for index in sorted(indexes, key=lambda i: changes[i].order_id):
            change = changes[index]
            row = current.get(change.order_id)
            changed = row is not None and _moves(row, change)
            changed_at[index] = changed
            if not changed or row is None:
                continue
            values: dict[str, Any] = {"status": change.state.value, "updated_at": now,
                                      **change.fields}
            if change.state.final:
                values["final_at"] = now
            conn.execute(st.UPDATE_ORDER, {"where_id": change.order_id, **values})
            if row.status != change.state.value or change.detail:
                news.append({"signal_id": row.signal_id, "order_id": change.order_id,
                             "at": now, "status": change.state.value,
                             "detail": storable(change.detail)})
            if row.signal_id is not None and not _keeps_accepted(row.status, change.state):
                touched.add(int(row.signal_id))
    # The orders' events and their signals' go in together, in that order.
    settle_signals(conn, sorted(touched), now, events=news)
    return [changed_at[index] for index in range(len(changes))]


def _keeps_accepted(recorded: str, state: OrderState) -> bool:
    """Whether an order moves from one accepted state to another (pending to complete,
    say): its signal's status cannot change with it (:func:`derive_status` only asks
    whether an order was accepted, and reads no detail of an accepted one), so the signal
    is not read again to find that out. This is the common move of a fill."""
    return state.accepted and OrderState(recorded).accepted


def _moves(current: Any, change: OrderChange) -> bool:
    """Whether ``change`` moves the order as recorded in ``current`` (never backwards, and
    a final state is final)."""
    state = change.state
    if _PROGRESS[state.value] < _PROGRESS[current.status]:
        return False
    if _PROGRESS[current.status] == 5 and current.status != state.value:
        return False
    return current.status != state.value or any(
        getattr(current, key) != value for key, value in change.fields.items())
