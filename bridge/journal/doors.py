"""What the front doors remember between requests and across processes: the requests they
refused before any signal existed, and the signed requests already used.

Refusals are journaled so the dashboard can say "N refused alerts from TradingView in the
last hour" and why: a wrong secret sent through TradingView's shared addresses, a flood, an
unreadable body. They are counted per minute, source, address and reason, so a flood of them
costs one row a minute, not one a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from bridge.clock import Clock
from bridge.journal.tables import refusals, used_signatures
from bridge.journal.txn import writing


@dataclass(frozen=True)
class RefusalCount:
    source: str
    code: str
    reason: str
    count: int
    last_at: datetime


class DoorBook:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def refused(self, source: str, address: str, code: str, reason: str) -> None:
        """Count one refused request."""
        now = self.clock.now()
        minute = now.replace(second=0, microsecond=0)
        key = (refusals.c.minute == minute, refusals.c.source == source[:16],
               refusals.c.address == address[:64], refusals.c.code == code[:40],
               refusals.c.reason == reason[:200])
        try:
            with writing(self.engine) as conn:
                if not conn.execute(update(refusals).where(*key)
                                    .values(count=refusals.c.count + 1)).rowcount:
                    conn.execute(insert(refusals).values(
                        minute=minute, source=source[:16], address=address[:64],
                        code=code[:40], reason=reason[:200], count=1))
        except IntegrityError:  # another process made the bucket a moment ago
            with writing(self.engine) as conn:
                conn.execute(update(refusals).where(*key).values(count=refusals.c.count + 1))

    def refusals_since(self, since: datetime) -> list[RefusalCount]:
        """Refused requests since ``since`` by source and reason, most frequent first."""
        query = (select(refusals.c.source, refusals.c.code, refusals.c.reason,
                        func.sum(refusals.c.count).label("count"),
                        func.max(refusals.c.minute).label("last_at"))
                 .where(refusals.c.minute >= since.replace(second=0, microsecond=0))
                 .group_by(refusals.c.source, refusals.c.code, refusals.c.reason)
                 .order_by(func.sum(refusals.c.count).desc()))
        with self.engine.connect() as conn:
            return [RefusalCount(row.source, row.code, row.reason, int(row._mapping["count"]),
                                 row.last_at) for row in conn.execute(query)]

    def use_signature(self, digest: str, valid_for: timedelta) -> bool:
        """Record a signed request's signature; ``False`` when it was used before (a
        replay). Expired records are dropped on the way."""
        now = self.clock.now()
        try:
            with writing(self.engine) as conn:
                conn.execute(delete(used_signatures).where(used_signatures.c.expires_at < now))
                conn.execute(insert(used_signatures).values(digest=digest,
                                                            expires_at=now + valid_for))
        except IntegrityError:
            return False
        return True

    def prune(self, before: datetime) -> int:
        with writing(self.engine) as conn:
            return int(conn.execute(delete(refusals).where(refusals.c.minute < before))
                       .rowcount or 0)
