"""Write transactions: atomic reads-then-writes, and SQLite writers that queue fairly.

SQLite has one write lock per database. A writer that finds it taken sleeps in SQLite's busy
handler with growing pauses (1, 2, 5, 10, 15, 20, 25 ms ...), so under many concurrent writers
a short transaction can wait tens of milliseconds for a lock that was free long before. The
writers of one process therefore queue on a lock of their own first and then take SQLite's
with ``BEGIN IMMEDIATE``: only writers of other processes ever meet the busy handler. Taking
the write lock at the start also makes the transaction's reads see the latest data and keeps
any other writer out until the commit (a deferred transaction reads first and writes later,
and nothing stops another process from writing in between).

PostgreSQL: a plain transaction for :func:`writing`; :func:`exclusive` adds a
transaction-scoped advisory lock on a name, so only transactions over the same thing queue.

Keep these short: on SQLite they hold the database's one write lock.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterable, Iterator

from sqlalchemy import Connection, Engine, text

from bridge.journal.locks import lock_key, lock_scope

# One lock per SQLite engine, living as long as the engine (not request state).
_WRITERS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_WRITERS_GUARD = threading.Lock()


def _writer_lock(engine: Engine) -> threading.Lock:
    with _WRITERS_GUARD:
        lock = _WRITERS.get(engine)
        if lock is None:
            lock = _WRITERS[engine] = threading.Lock()
        return lock


@contextlib.contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction, committed on success, rolled back on error."""
    with _transaction(engine, None) as conn:
        yield conn


@contextlib.contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[Connection]:
    """A write transaction no other writer of ``name`` interleaves with."""
    with _transaction(engine, name) as conn:
        yield conn


@contextlib.contextmanager
def exclusive_many(engine: Engine, names: Iterable[str]) -> Iterator[Connection]:
    """A write transaction that no other writer of any of ``names`` interleaves with.

    The locks are taken in one global order (by key), so two such transactions over
    overlapping names wait for each other instead of deadlocking.
    """
    scope = lock_scope(engine)
    with _transaction(engine, *sorted(set(names), key=lambda name: lock_key(name, scope))) \
            as conn:
        yield conn


@contextlib.contextmanager
def _transaction(engine: Engine, *names: str | None) -> Iterator[Connection]:
    if engine.dialect.name != "sqlite":
        scope = lock_scope(engine)
        keys = [lock_key(name, scope) for name in names if name is not None]
        with engine.begin() as conn:
            if len(keys) == 1:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": keys[0]})
            elif keys:
                # One round trip for a fan-out's hundreds of accounts; unnest yields the
                # keys in the array's order, so the global lock order still holds.
                conn.execute(text("SELECT pg_advisory_xact_lock(k) "
                                  "FROM unnest(CAST(:keys AS bigint[])) AS k"), {"keys": keys})
            yield conn
        return
    with _writer_lock(engine), engine.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
