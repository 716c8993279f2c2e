"""The signals the bridge takes in: admitting them (idempotency keys, the queue, and for the
one at the head of its queue a rate-limit token, its entry counts and its orders, all in one
transaction), their statuses, and looking them up.

Shared across processes through the database: an ``alert_id`` is held forever, an identical
body for the dedup window, and the first writer of a key wins atomically. Admission reaches
into the order records and the rate-limit tokens through their modules' functions, on its
own connection, so that it stays one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from bridge.clock import Clock
from bridge.domain import Signal
from bridge.journal import statements as st
from bridge.journal.copies import admit_copies, distinct_accounts
from bridge.journal.orders import (
    entry_counts,
    entry_params,
    insert_orders,
    orders_by_signal,
)
from bridge.journal.rows import (
    Admission,
    AdmitRequest,
    Claim,
    EntryCounts,
    ErrorInfo,
    OrderPlan,
    OrderRow,
    SignalRow,
    SignalStatus,
    error_columns,
    new_id,
    order_row,
    signal_columns,
    signal_row,
    storable,
)
from bridge.journal.status import settle_signal
from bridge.journal.tables import events, signals
from bridge.journal.tokens import Turns, grant_counted, rate_window
from bridge.journal.txn import exclusive_many, writing


class SignalStore:
    def __init__(self, engine: Engine, clock: Clock, turns: Turns) -> None:
        self.engine = engine
        self._clock = clock
        self._turns = turns

    def admit_many(self, requests: list[AdmitRequest]) -> list[Admission]:
        """Write valid signals and decide their fates, in one exclusive transaction (one
        commit for a signal's copies to several accounts, each account's queue lock held
        until it ends).

        Each signal is journaled; if its ``key`` is held by an earlier signal (an ``alert_id``
        forever, a body hash until ``key_expires``) it is recorded as that signal's
        duplicate; otherwise it is queued, and with ``claimant`` set it is also claimed for
        sending at once when nothing is queued ahead of it and a broker rate-limit token is
        free; a claimed signal also gets the counts of ``entry``, and the orders ``plan``
        makes of them are recorded at once (the first marked ``sending`` when it is its
        turn), saving its sender a transaction.
        """
        now = self._clock.now()
        dialect = self.engine.dialect.name
        granted: list[tuple[int, str]] = []
        with exclusive_many(self.engine, [f"queue:{r.account}" for r in requests]) as conn:
            if len(requests) > 1 and distinct_accounts(requests):
                admissions = admit_copies(
                    conn, dialect, now, requests, granted,
                    lambda key, signal_id, expires: _hold_key(conn, dialect, key, signal_id,
                                                              expires, now))
            else:
                admissions = [_admit_in(conn, dialect, now, request, granted)
                              for request in requests]
        for token, account in granted:
            self._turns.granted(token, account)
        return admissions

    def add_signal(self, *, alert_id: str, source: str, account: str, remote_addr: str,
                   raw_body: str, signal: Signal | None, status: SignalStatus, priority: int,
                   expires_at: datetime | None, error: ErrorInfo | None = None,
                   symbol: str = "", instrument: str = "",
                   received_at: datetime | None = None) -> int:
        now = self._clock.now()
        values = {
            "alert_id": storable(alert_id), "source": source, "account": account,
            "received_at": received_at or now, "remote_addr": storable(remote_addr[:64]),
            "raw_body": storable(raw_body),
            "parsed": json.dumps(signal.to_dict()) if signal else None,
            "strategy": storable(signal.strategy if signal else ""),
            "symbol": storable((signal.symbol if signal else symbol)[:96]),
            "instrument": instrument, "side": signal.side.value if signal else "",
            "status": status.value,
            "priority": priority, "expires_at": expires_at, "updated_at": now,
            **error_columns(error),
        }
        with writing(self.engine) as conn:
            signal_id = new_id(conn.execute(st.INSERT_SIGNAL, values))
            conn.execute(insert(events).values(
                signal_id=signal_id, at=now, status=status.value,
                detail=storable(error.message) if error else "received"))
        return signal_id

    def set_signal_status(self, signal_id: int, status: SignalStatus, *,
                          error: ErrorInfo | None = None, duplicate_of: int | None = None,
                          detail: str = "", only_from: Iterable[SignalStatus] = ()) -> bool:
        """Move a signal to ``status`` (only from ``only_from`` when given); record an event."""
        now = self._clock.now()
        condition = [signals.c.id == signal_id]
        allowed = [s.value for s in only_from]
        if allowed:
            condition.append(signals.c.status.in_(allowed))
        values: dict[str, Any] = {"status": status.value, "updated_at": now}
        if error is not None:
            values.update(error_columns(error))
        if duplicate_of is not None:
            values["duplicate_of"] = duplicate_of
        if not status.pending:
            values.update(claimed_by=None, claimed_at=None)
        with writing(self.engine) as conn:
            changed = conn.execute(update(signals).where(*condition).values(**values)).rowcount
            if changed:
                conn.execute(insert(events).values(
                    signal_id=signal_id, at=now, status=status.value,
                    detail=storable(detail or (error.message if error else ""))))
        return bool(changed)

    def signal(self, signal_id: int) -> SignalRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(st.SIGNAL_BY_ID, {"where_id": signal_id}).first()
        return signal_row(row) if row is not None else None

    def signal_with_orders(self, signal_id: int) -> tuple[SignalRow | None, list[OrderRow]]:
        """A signal and its orders, on one connection."""
        with self.engine.connect() as conn:
            row = conn.execute(st.SIGNAL_BY_ID, {"where_id": signal_id}).first()
            found = conn.execute(st.ORDERS_OF, {"where_signal": signal_id}).all()
        return (signal_row(row) if row is not None else None,
                [order_row(order) for order in found])

    def signals_with_orders(self, signal_ids: list[int]) -> dict[
            int, tuple[SignalRow, list[OrderRow]]]:
        """Several signals and their orders, in two queries (a fanned-out signal's copies)."""
        if not signal_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(signals).where(signals.c.id.in_(signal_ids))).all()
            found = orders_by_signal(conn, signal_ids)
        return {int(row.id): (signal_row(row), found[int(row.id)]) for row in rows}

    def signals_by_alert_id(self, alert_id: str) -> list[SignalRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(signals).where(signals.c.alert_id == alert_id)
                                .order_by(signals.c.id)).all()
        return [signal_row(row) for row in rows]

    def recent_signals(self, limit: int = 100) -> list[SignalRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(signals).order_by(signals.c.id.desc()).limit(limit)).all()
        return [signal_row(row) for row in rows]

    def settle(self, signal_id: int) -> SignalStatus | None:
        """Derive a signal's status from its orders and record it if it changed."""
        with writing(self.engine) as conn:
            return settle_signal(conn, signal_id, self._clock.now())

    def busy_instruments(self, account: str) -> set[str]:
        """Instruments (``EXCH:SYMBOL``) of signals queued or being sent for ``account``."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(signals.c.instrument).distinct().where(
                signals.c.account == account,
                signals.c.status.in_([SignalStatus.QUEUED.value,
                                      SignalStatus.DISPATCHING.value]))).all()
        return {row.instrument for row in rows if row.instrument}


def _admit_in(conn: Connection, dialect: str, now: datetime, r: AdmitRequest,
              granted: list[tuple[int, str]]) -> Admission:
    values = signal_columns(r, now)
    # Decided before the row exists: everything queued now arrived earlier, so the signal
    # is at the head unless something of the same or a higher priority waits.
    token, first_in_line = None, False
    counts: EntryCounts | None = None
    plans: list[OrderPlan] | None = None
    if r.claimant is not None:
        # What is queued ahead, the rate window and the entry counts: one statement. The
        # orders are planned before the token is granted, so a token whose request goes at
        # once is recorded as sent with its grant.
        moment, window = rate_window(conn, r.account, dialect)
        params = {**window, "priority": r.priority}
        if r.entry is not None:
            params.update(entry_params(r.account, r.entry))
        read = conn.execute(st.ADMIT_READS_COUNTED if r.entry is not None
                            else st.ADMIT_READS, params).one()
        if not read[0]:
            counts = entry_counts(read[3:], r.entry) if r.entry is not None else None
            plans = r.plan(counts) if r.plan is not None and counts is not None else None
            token, _, first_in_line = grant_counted(conn, r.account, r.rate, moment, window,
                                                    read[1], read[2], mark_sent=bool(plans))
    if token is not None:
        values.update(status=SignalStatus.DISPATCHING.value, claimed_by=r.claimant,
                      claimed_at=now)
    signal_id = new_id(conn.execute(st.INSERT_SIGNAL, values))
    timeline = [{"signal_id": signal_id, "at": now, "status": "received",
                 "detail": "received"}]
    original = (_hold_key(conn, dialect, r.key, signal_id, r.key_expires, now)
                if r.key is not None else None)
    if original is not None:
        conn.execute(st.UPDATE_SIGNAL, {
            "where_id": signal_id, "status": SignalStatus.DUPLICATE.value,
            "duplicate_of": original, "claimed_by": None, "claimed_at": None})
        if token is not None:
            conn.execute(st.DELETE_CALL, {"where_id": token})
        timeline.append({"signal_id": signal_id, "at": now,
                         "status": SignalStatus.DUPLICATE.value,
                         "detail": f"repeat of signal {original}, answered with its outcome; "
                                   "nothing sent"})
        conn.execute(st.INSERT_EVENT, timeline)
        return Admission(signal_id, duplicate_of=original)
    timeline.append({"signal_id": signal_id, "at": now, "status": SignalStatus.QUEUED.value,
                     "detail": "waiting to be sent to Kotak"})
    if token is not None:
        timeline.append({"signal_id": signal_id, "at": now,
                         "status": SignalStatus.DISPATCHING.value,
                         "detail": "sending to Kotak"})
    if token is None:
        conn.execute(st.INSERT_EVENT, timeline)
        return Admission(signal_id)
    granted.append((token, r.account))
    made: list[OrderRow] = []
    first_sending = False
    if plans:
        # The signal's timeline goes in with its orders' events, one statement for both.
        made, first_sending = insert_orders(conn, now, signal_id, r.account,
                                            r.signal.strategy, plans, token,
                                            first_in_line=first_in_line, timeline=timeline,
                                            token_marked=True)
    else:
        conn.execute(st.INSERT_EVENT, timeline)
    row = SignalRow(
        id=signal_id, alert_id=r.alert_id, source=r.source, account=r.account,
        received_at=r.received_at or now, status=SignalStatus.DISPATCHING,
        priority=r.priority, signal=r.signal, error=None, duplicate_of=None,
        expires_at=r.expires_at, strategy=r.signal.strategy, symbol=r.signal.symbol,
        instrument=r.instrument, raw_body=r.raw_body, remote_addr=r.remote_addr)
    return Admission(signal_id, claim=Claim(row, token, counts, tuple(made), first_sending))


def _hold_key(conn: Connection, dialect: str, key: str, signal_id: int,
              expires: datetime | None, now: datetime) -> int | None:
    """Take the idempotency key for ``signal_id``; if a live earlier signal holds it,
    return that signal's id instead."""
    if conn.execute(st.CLAIM_KEY[dialect], {"key": key, "signal_id": signal_id,
                                            "expires_at": expires}).first() is not None:
        return None
    holder = conn.execute(st.KEY_HOLDER, {"key": key}).first()
    if holder is not None and (holder.expires_at is None or holder.expires_at > now):
        return int(holder.signal_id)
    conn.execute(st.UPDATE_KEY, {"where_key": key, "signal_id": signal_id,
                                 "expires_at": expires})
    return None
