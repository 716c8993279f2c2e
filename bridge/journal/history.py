"""A signal's timeline of events, and the housekeeping that forgets old history: settled
signals with their orders and events, lapsed dedup keys and rate-limit stamps.

Separate from the stores that write these rows: reading a timeline and pruning are off the
hot path, and pruning spans every table of the signal journal.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, delete, select

from bridge.clock import Clock
from bridge.journal.rows import EventRow, SignalStatus
from bridge.journal.tables import broker_calls, events, orders, signal_keys, signals
from bridge.journal.tokens import now_seconds
from bridge.journal.txn import writing


class HistoryStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self._clock = clock

    def events_of(self, signal_id: int) -> list[EventRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(events).where(events.c.signal_id == signal_id)
                                .order_by(events.c.id)).all()
        return [EventRow(at=row.at, status=row.status, detail=row.detail,
                         order_id=row.order_id) for row in rows]

    def prune_history(self, before: datetime) -> int:
        """Delete signals received before ``before`` that are settled, with their orders and
        events; returns how many signals went. Orders of no signal (square-off closes) go
        when final and older than ``before``."""
        pending = [status.value for status in SignalStatus if status.pending]
        with writing(self.engine) as conn:
            old = select(signals.c.id).where(signals.c.received_at < before,
                                             signals.c.status.not_in(pending))
            ids = [row.id for row in conn.execute(old.limit(5000)).all()]
            if ids:
                conn.execute(delete(events).where(events.c.signal_id.in_(ids)))
                conn.execute(delete(orders).where(orders.c.signal_id.in_(ids)))
                conn.execute(delete(signal_keys).where(signal_keys.c.signal_id.in_(ids)))
                conn.execute(delete(signals).where(signals.c.id.in_(ids)))
            loose = select(orders.c.id).where(orders.c.signal_id.is_(None),
                                              orders.c.final_at.is_not(None),
                                              orders.c.final_at < before)
            loose_ids = [row.id for row in conn.execute(loose.limit(5000)).all()]
            if loose_ids:
                conn.execute(delete(events).where(events.c.order_id.in_(loose_ids)))
                conn.execute(delete(orders).where(orders.c.id.in_(loose_ids)))
        return len(ids)

    def prune(self) -> None:
        """Forget lapsed dedup keys and rate-limit stamps (housekeeping, off the hot path)."""
        now = self._clock.now()
        with writing(self.engine) as conn:
            conn.execute(delete(signal_keys).where(
                and_(signal_keys.c.expires_at.is_not(None),
                     signal_keys.c.expires_at < now - timedelta(minutes=5))))
            conn.execute(delete(broker_calls).where(
                broker_calls.c.at < now_seconds(conn, self.engine.dialect.name) - 60))
