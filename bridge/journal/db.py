"""The database behind the journal: SQLite in WAL mode by default, PostgreSQL by URL."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

#: per process on SQLite: gunicorn's request threads, the order senders and the background
#: loop each keep a connection (opening one is dearer than most statements)
POOL_SIZE = 20
POOL_OVERFLOW = 10
#: per process on PostgreSQL, where connections are the server's to ration: the pool keeps
#: this many open and opens up to the overflow more for a burst, closing them after use.
#: Several processes x workers x (pool + overflow) must stay under the server's
#: max_connections (100 by default): DATABASE_POOL_SIZE and DATABASE_MAX_OVERFLOW tune it.
PG_POOL_SIZE = 5
PG_POOL_OVERFLOW = 10


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


def create_db_engine(url: str, *, pool_size: int | None = None,
                     max_overflow: int | None = None) -> Engine:
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
        engine = create_engine(parsed, connect_args={"timeout": 30},
                               pool_size=POOL_SIZE if pool_size is None else pool_size,
                               max_overflow=POOL_OVERFLOW if max_overflow is None
                               else max_overflow)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # A thread waits for a pooled connection (pool_timeout) rather than failing at once.
    return create_engine(parsed, pool_pre_ping=True,
                         pool_size=PG_POOL_SIZE if pool_size is None else pool_size,
                         max_overflow=PG_POOL_OVERFLOW if max_overflow is None else max_overflow,
                         pool_timeout=60)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
