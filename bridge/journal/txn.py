"""Transactions that read and then write, without another process slipping in between.

SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock at the start, so the reads see
the latest data and no other writer can act before the commit (a deferred transaction would
read a snapshot and then fail to write when another process committed meanwhile).
PostgreSQL: a transaction-scoped advisory lock on ``name``, so only transactions over the
same thing queue behind each other.

Keep these short: on SQLite they hold the one write lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Connection, Engine, text

from bridge.journal.locks import lock_key


@contextlib.contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[Connection]:
    """A connection in a transaction no other writer of ``name`` interleaves with."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.begin()
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(name)})
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
