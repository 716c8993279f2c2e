"""A PostgreSQL lock held for a long time (the scheduler's leadership) and dropped without
release, as a scheduler thrown away or a process winding down drops it, frees the lock and
its connection, even once the engine it came from was disposed."""

from __future__ import annotations

import gc
import secrets

import pytest
from sqlalchemy import Engine

from bridge.journal.db import create_db_engine
from bridge.journal.locks import HeldLock


def _postgres_only(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("a SQLite lock is a file the operating system frees with its holder")


def _collect() -> None:
    # The lock's holder, then the pool it may have gone back to, each takes a pass.
    for _ in range(3):
        gc.collect()


def test_a_lock_dropped_without_release_is_free_for_the_next_holder(
        database_url: str, engine: Engine) -> None:
    _postgres_only(database_url)
    name = f"leader-{secrets.token_hex(4)}"
    first = HeldLock(engine, name)
    assert first.try_acquire()
    del first
    _collect()
    other_process = create_db_engine(database_url)
    successor = HeldLock(other_process, name)
    try:
        assert successor.try_acquire()
    finally:
        successor.release()
        other_process.dispose()


def test_a_lock_dropped_after_its_engine_was_disposed_leaves_no_connection_open(
        database_url: str) -> None:
    # psycopg warns of a connection deleted while open, and the suite makes that an error.
    _postgres_only(database_url)
    services_engine = create_db_engine(database_url)
    lock = HeldLock(services_engine, f"leader-{secrets.token_hex(4)}")
    assert lock.try_acquire()
    services_engine.dispose()
    del lock
    _collect()
