"""The database behind the journal: SQLite in WAL mode by default, PostgreSQL by URL."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

#: per process: gunicorn's request threads, the order senders and the background loop
POOL_SIZE = 20
POOL_OVERFLOW = 10


def database_url(url: str) -> URL:
    """Normalise the configured URL: PostgreSQL through psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def sqlite_path(engine: Engine) -> Path | None:
    """The database file of a SQLite engine (None for PostgreSQL or in-memory SQLite)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    return Path(database)


def create_db_engine(url: str) -> Engine:
    """Make the engine; for SQLite create the folder and turn on WAL and a busy timeout.

    WAL lets readers carry on while one process writes; the busy timeout makes a writer wait
    for another instead of failing with "database is locked".
    """
    parsed = database_url(url)
    if parsed.drivername.startswith("sqlite"):
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Enough pooled connections for every request and sender thread of a process: a
        # connection opened past the pool is closed again after one use, and opening one
        # (file, WAL index, pragmas) costs more than most statements.
        engine = create_engine(parsed, connect_args={"timeout": 30}, pool_size=POOL_SIZE,
                               max_overflow=POOL_OVERFLOW)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=POOL_SIZE,
                         max_overflow=POOL_OVERFLOW)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
