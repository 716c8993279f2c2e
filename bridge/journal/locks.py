"""Named locks that hold across every process sharing the journal's database.

* PostgreSQL: a session-level advisory lock on a dedicated connection (works across hosts).
* SQLite: an ``flock`` on a file beside the database (every process on the host shares it;
  SQLite itself cannot be shared across hosts). An advisory file lock does not hold SQLite's
  write lock, so other journal writes go on while, say, a login takes seconds.

In-memory SQLite cannot hold a journal shared by anyone, so it is refused.

A lock held by a process that dies is released by the operating system or by PostgreSQL when
its connection closes, so a crash never leaves a lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

from bridge.journal.db import sqlite_path

log = logging.getLogger(__name__)


class LockTimeout(Exception):
    """The lock was not obtained in time."""


@contextlib.contextmanager
def named_lock(engine: Engine, name: str, timeout: float = 60.0) -> Iterator[None]:
    """Hold the lock ``name`` for the block.

    :raises LockTimeout: another holder kept it longer than ``timeout`` seconds.
    """
    if engine.dialect.name == "postgresql":
        with _advisory(engine, name, timeout):
            yield
        return
    path = sqlite_path(engine)
    if path is None:
        raise ValueError("named locks need a SQLite file or PostgreSQL, not in-memory SQLite")
    with _file_lock(path.parent / f".{path.name}.locks" / _file_name(name), timeout):
        yield


def try_lock(engine: Engine, name: str) -> contextlib.AbstractContextManager[None]:
    """The same lock without waiting (raises :class:`LockTimeout` at once when held)."""
    return named_lock(engine, name, timeout=0.0)


def lock_key(name: str, scope: str = "") -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory locks, within ``scope``."""
    digest = hashlib.sha256((f"{scope}|{name}" if scope else name).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_scope(engine: Engine) -> str:
    """What an advisory lock belongs to: PostgreSQL's advisory locks span the whole
    database, so two journals in different schemas of one database (set through the URL's
    ``options``) would otherwise take each other's locks: one bridge's scheduler kept
    another's from leading. A plain URL keeps the old keys, so processes of the previous
    version and this one still exclude each other during an upgrade."""
    return str(engine.url.query.get("options", ""))


@contextlib.contextmanager
def _advisory(engine: Engine, name: str, timeout: float) -> Iterator[None]:
    key = lock_key(name, lock_scope(engine))
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            conn.rollback()
            if time.monotonic() >= deadline:
                raise LockTimeout(f"lock {name!r} is held elsewhere")
            time.sleep(0.05)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(f"lock {path.name!r} is held elsewhere") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".lock"


def _end_session(conn: Connection, *, name: str) -> None:
    """Close the database session under ``conn`` itself, not back into the pool."""
    try:
        conn.invalidate()
    except Exception:
        log.debug("ending the session of dropped lock %r failed", name)


class HeldLock:
    """A named lock held for as long as a process wants it (the scheduler's leadership),
    not for one block: taken without waiting, checked, and released on demand or by the
    process's death (the file is closed, or PostgreSQL ends the session)."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self._key = lock_key(name, lock_scope(engine))
        self.name = name
        self._fd: int | None = None
        self._conn: Connection | None = None
        self._closer: weakref.finalize[Any, Any] | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None or self._conn is not None

    def try_acquire(self) -> bool:
        if self.held:
            return True
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            try:
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                        {"k": self._key}).scalar())
                conn.commit()
            except Exception:
                conn.close()
                raise
            if got:
                self._conn = conn
                # A holder dropped without release() (a test's scheduler, a process winding
                # down) ends its session, which frees the lock. Closing the connection
                # would hand it back to the pool still holding the lock (no one else could
                # lead), or, once the engine is disposed, to a pool no one empties, where
                # it waits open for the garbage collector.
                self._closer = weakref.finalize(self, _end_session, conn, name=self.name)
            else:
                conn.close()
            return got
        path = sqlite_path(self.engine)
        if path is None:
            raise ValueError("a held lock needs a SQLite file or PostgreSQL")
        lock_file = path.parent / f".{path.name}.locks" / _file_name(self.name)
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def still_held(self) -> bool:
        """Whether the lock is still ours: a PostgreSQL session that broke lost it."""
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                self._conn.commit()
            except Exception:
                self._drop_connection()
                return False
            return True
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"),
                                   {"k": self._key})
                self._conn.commit()
            except Exception:
                log.warning("releasing lock %r: the database connection is gone (the lock "
                            "went with it)", self.name)
            self._drop_connection()

    def _drop_connection(self) -> None:
        if self._closer is not None:
            self._closer.detach()
            self._closer = None
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                log.debug("closing the connection of lock %r failed", self.name)
            self._conn = None
