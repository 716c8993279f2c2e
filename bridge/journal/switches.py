"""The kill switch and one-time claims: single ``bridge_meta`` keys that every thread and
process of the bridge reads or races for.

Apart from the signal rows because they are flags of the whole bridge, set from the
dashboard, the CLI and the scheduler; the entry counts read the kill switch in their own
query (:mod:`bridge.journal.statements`).
"""

from __future__ import annotations

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from bridge.clock import Clock
from bridge.journal.tables import bridge_meta
from bridge.journal.txn import writing


class SwitchStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self._clock = clock

    def claim_once(self, key: str, value: str) -> bool:
        """Record ``key`` unless it is recorded already: True for the one caller (of every
        thread and process) that recorded it, so a one-time action runs once."""
        try:
            with writing(self.engine) as conn:
                if conn.execute(select(bridge_meta.c.key)
                                .where(bridge_meta.c.key == key)).first() is not None:
                    return False
                conn.execute(insert(bridge_meta).values(key=key, value=value))
        except IntegrityError:
            return False
        return True

    def kill_switch(self) -> bool:
        with self.engine.connect() as conn:
            value = conn.execute(select(bridge_meta.c.value)
                                 .where(bridge_meta.c.key == "kill_switch")).scalar()
        return value == "on"

    def set_kill_switch(self, on: bool) -> None:
        with writing(self.engine) as conn:
            value = "on" if on else "off"
            if not conn.execute(update(bridge_meta).where(bridge_meta.c.key == "kill_switch")
                                .values(value=value)).rowcount:
                conn.execute(insert(bridge_meta).values(key="kill_switch", value=value))
