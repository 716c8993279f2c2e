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

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from bridge.journal import statements as st
from bridge.journal.batched import Intent, record_orders, take_tokens
from bridge.journal.bulk import insert_returning
from bridge.journal.rows import (
    Admission,
    AdmitRequest,
    Claim,
    SignalRow,
    SignalStatus,
    signal_columns,
)
from bridge.journal.tables import signal_keys, signals


def distinct_accounts(requests: Sequence[AdmitRequest]) -> bool:
    return len({r.account for r in requests}) == len(requests)


def admit_copies(conn: Connection, dialect: str, now: datetime,
                 requests: Sequence[AdmitRequest], granted: list[tuple[int, str]],
                 hold_key: Callable[[str, int, datetime | None], int | None]
                 ) -> list[Admission]:
    """Admit copies for distinct accounts inside the caller's exclusive transaction."""
    claimable = _heads(conn, [r for r in requests if r.claimant is not None])
    tokens, _waits = take_tokens(conn, dialect, {r.account: r.rate for r in requests
                                                 if r.account in claimable})
    rows = []
    for r in requests:
        token = tokens.get(r.account)
        rows.append({
            **signal_columns(r, now),
            "status": (SignalStatus.DISPATCHING if token is not None
                       else SignalStatus.QUEUED).value,
            "claimed_by": r.claimant if token is not None else None,
            "claimed_at": now if token is not None else None})
    inserted = dict(insert_returning(conn, signals, rows, ("account", "id")))
    ids = [int(inserted[r.account]) for r in requests]
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
    made = record_orders(conn, dialect, now, [
        Intent(r.account, r.signal.strategy, signal_id, tokens[r.account], r.entry, r.plan)
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


def _hold_keys(conn: Connection, dialect: str, requests: Sequence[AdmitRequest],
               ids: list[int], hold_key: Callable[[str, int, datetime | None], int | None]
               ) -> dict[int, int]:
    """Take every copy's idempotency key in one statement; the few already held are
    resolved one by one. Returns {signal id: the earlier signal it repeats}."""
    wanted = [(r, signal_id) for r, signal_id in zip(requests, ids, strict=True)
              if r.key is not None]
    if not wanted:
        return {}
    taken = {row[0] for row in insert_returning(conn, signal_keys, [
        {"key": r.key, "signal_id": signal_id, "expires_at": r.key_expires}
        for r, signal_id in wanted], ("key",), skip_conflicts_on=("key",))}
    originals: dict[int, int] = {}
    for r, signal_id in wanted:
        if r.key in taken or r.key is None:
            continue
        original = hold_key(r.key, signal_id, r.key_expires)
        if original is not None:
            originals[signal_id] = original
    return originals


