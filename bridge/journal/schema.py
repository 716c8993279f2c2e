"""Bringing the journal's tables to this code's revision at start, and proving the journal
writable.

The schema's history is Alembic's, in :mod:`bridge.journal.migrations`; the bridge runs it
itself, here, never a person with the ``alembic`` command.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError

from bridge.journal import migrations
from bridge.journal.locks import named_lock
from bridge.journal.migrations import HEAD
from bridge.journal.tables import metadata
from bridge.journal.txn import writing

log = logging.getLogger(__name__)
# Alembic names each of its plugins at INFO when first imported: noise in the bridge's log.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

VERSION_TABLE = "alembic_version"
# Alembic's version table, laid out as Alembic makes it (DefaultImpl.version_table_impl), so
# that a fresh journal is stamped and a current one checked without importing Alembic.
_versions = Table(
    VERSION_TABLE, MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
)


class JournalTooNew(Exception):
    """The journal carries a revision this code does not know: a newer bridge wrote it."""

    def __init__(self, revision: str) -> None:
        super().__init__(f"The journal was written by a newer version of the bridge (revision "
                         f"{revision}); update the bridge or restore a backup.")
        self.revision = revision


def create_schema(engine: Engine) -> None:
    """Bring the journal to :data:`HEAD`; under a lock, since several workers or hosts start
    together (the first migrates, the others then find the head).

    * At the head: one read of the version, nothing more.
    * Fresh (none of the journal's tables): every table is created and stamped with the head
      in one transaction, without Alembic (every test and every first start goes here).
    * Older (an earlier revision, or no version table at all: written before migrations):
      Alembic runs the revisions it lacks, the baseline 0001 first, in one transaction where
      the database allows DDL in one (PostgreSQL).
    * Newer: refused with :class:`JournalTooNew`, before anything is touched.
    """
    with named_lock(engine, "journal-schema", timeout=120.0), engine.connect() as conn:
        found = _stamped(conn)
        if found == [HEAD]:
            return
        if found is None and not set(metadata.tables) & set(inspect(conn).get_table_names()):
            metadata.create_all(conn, checkfirst=False)
            _versions.create(conn)
            conn.execute(insert(_versions).values(version_num=HEAD))
            conn.commit()
            return
        conn.rollback()
        _migrate(conn, found or [])


def _stamped(conn: Connection) -> list[str] | None:
    """The revisions the journal is stamped with; None when it has no version table."""
    try:
        found = list(conn.execute(select(_versions.c.version_num)).scalars())
    except DBAPIError:
        # A missing table is learnt from the failed read, so a journal at the head costs
        # that one read; anything else the read met is raised as it was.
        conn.rollback()
        if inspect(conn).has_table(VERSION_TABLE):
            raise
        return None
    conn.rollback()
    return found


def _migrate(conn: Connection, found: list[str]) -> None:
    # Alembic (its import alone ~90 ms) and the revision files are loaded only here.
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    location = str(Path(migrations.__file__).parent)
    config.set_main_option("script_location", location.replace("%", "%%"))
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    for revision in found:
        if revision not in known:
            raise JournalTooNew(revision)
    log.info("journal: migrating from %s to revision %s",
             ", ".join(found) or "before migrations", HEAD)
    with conn.begin():
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def check_writable(engine: Engine) -> None:
    """Prove the journal accepts a write (readiness); raises on failure."""
    with writing(engine) as conn:
        conn.execute(text("UPDATE bridge_meta SET value = value WHERE key = 'schema'"))
