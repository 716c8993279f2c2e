"""PostgreSQL's advisory locks span a whole database: two journals in different schemas of
one database must not take each other's locks (one bridge's scheduler kept the other's from
leading), while two processes on one journal still exclude each other."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from bridge.journal.db import create_db_engine
from bridge.journal.locks import HeldLock
from tests.conftest import POSTGRES_URL


@pytest.fixture
def two_schemas(postgres_available: bool) -> Iterator[tuple[str, str]]:
    if not postgres_available:
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}")
    names = [f"t_{secrets.token_hex(6)}" for _ in range(2)]
    admin = create_db_engine(POSTGRES_URL)
    with admin.begin() as conn:
        for name in names:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        first, second = (f"{POSTGRES_URL}?options=-csearch_path%3D{name}" for name in names)
        yield first, second
    finally:
        with admin.begin() as conn:
            for name in names:
                conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@pytest.mark.postgres
def test_journals_in_two_schemas_lead_each_their_own(two_schemas: tuple[str, str]) -> None:
    engines: list[Engine] = [create_db_engine(url) for url in (*two_schemas, two_schemas[0])]
    locks = [HeldLock(engine, "scheduler") for engine in engines]
    try:
        assert locks[0].try_acquire()
        assert locks[1].try_acquire()  # another journal: not the first one's lock
        assert not locks[2].try_acquire()  # the first journal again: held
    finally:
        for lock in locks:
            lock.release()
        for engine in engines:
            engine.dispose()
