"""Wrong webhook secrets per address, and the addresses blocked for sending too many.

The inbound protection of the webhooks, shared across processes through the database; it
has nothing to do with the signals themselves, so it stands apart.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, select, update

from bridge.clock import Clock
from bridge.journal.tables import auth_failures
from bridge.journal.txn import exclusive, writing


class AuthFailureStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self._clock = clock

    def auth_record(self, address: str) -> tuple[bool, datetime | None]:
        """Whether wrong secrets are on record for ``address``, and until when it is blocked."""
        now = self._clock.now()
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_failures.c.blocked_until)
                               .where(auth_failures.c.address == address)).first()
        if row is None:
            return False, None
        until = row.blocked_until
        return True, until if until is not None and until > now else None

    def note_auth_failure(self, address: str, limit: int, window: timedelta,
                          block: timedelta) -> datetime | None:
        """Count a failed secret; block the address once ``limit`` fail within ``window``."""
        now = self._clock.now()
        with exclusive(self.engine, f"auth:{address}") as conn:
            row = conn.execute(select(auth_failures)
                               .where(auth_failures.c.address == address)).first()
            if row is None or row.first_at < now - window:
                count, first = 1, now
            else:
                count, first = int(row._mapping["count"]) + 1, row.first_at
            blocked = now + block if count >= limit else None
            values = {"count": count, "first_at": first, "blocked_until": blocked}
            if row is None:
                conn.execute(insert(auth_failures).values(address=address, **values))
            else:
                conn.execute(update(auth_failures).where(auth_failures.c.address == address)
                             .values(**values))
        return blocked

    def clear_auth_failures(self, address: str) -> None:
        with writing(self.engine) as conn:
            conn.execute(delete(auth_failures).where(
                auth_failures.c.address == address, auth_failures.c.blocked_until.is_(None)))
