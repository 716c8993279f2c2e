"""Process heartbeats: which bridge processes are alive, so that a signal claimed by one that
died is taken over (:meth:`QueueStore.take_over`).

A concern of its own: the recovery loop and the dispatcher beat and read it, nothing of a
signal or an order is in it.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, delete, insert, select, update

from bridge.clock import Clock
from bridge.journal.tables import processes
from bridge.journal.txn import writing


class ProcessStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self._clock = clock

    def heartbeat(self, process_id: str) -> None:
        now = self._clock.now()
        with writing(self.engine) as conn:
            if not conn.execute(update(processes).where(processes.c.id == process_id)
                                .values(heartbeat_at=now)).rowcount:
                conn.execute(insert(processes).values(id=process_id, started_at=now,
                                                      heartbeat_at=now))

    def live_processes(self, within: timedelta) -> set[str]:
        cutoff = self._clock.now() - within
        with writing(self.engine) as conn:
            conn.execute(delete(processes).where(processes.c.heartbeat_at
                                                 < cutoff - timedelta(hours=1)))
            rows = conn.execute(select(processes.c.id)
                                .where(processes.c.heartbeat_at >= cutoff)).all()
        return {str(row.id) for row in rows}

    def forget_process(self, process_id: str) -> None:
        with writing(self.engine) as conn:
            conn.execute(delete(processes).where(processes.c.id == process_id))
