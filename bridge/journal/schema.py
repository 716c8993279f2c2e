"""Creating the journal's tables, and proving the journal writable."""

from __future__ import annotations

import logging

from sqlalchemy import Engine, Table, inspect, text
from sqlalchemy.schema import CreateColumn

from bridge.journal.locks import named_lock
from bridge.journal.tables import metadata
from bridge.journal.txn import writing

log = logging.getLogger(__name__)


def create_schema(engine: Engine) -> None:
    """Create missing tables and add missing columns; under a lock, since several workers
    or hosts start together.

    One catalogue read tells which tables exist: the new ones are created without a check
    each, and only the existing ones are inspected for missing columns, so a fresh journal
    (every test, every first start) costs one round trip per statement and no more.
    """
    with named_lock(engine, "journal-schema", timeout=120.0):
        existing = set(inspect(engine).get_table_names())
        new = [table for table in metadata.sorted_tables if table.name not in existing]
        if new:
            metadata.create_all(engine, tables=new, checkfirst=False)
        add_missing_columns(engine, [table for table in metadata.sorted_tables
                                     if table.name in existing])


def add_missing_columns(engine: Engine, tables: list[Table]) -> None:
    """Bring tables made by an earlier version up to date: users keep their databases, and
    ``create_all`` never alters an existing table. New columns must be nullable or carry a
    server default, so existing rows get a value."""
    if not tables:
        return
    inspector = inspect(engine)
    missing = []
    for table in tables:
        have = {column["name"] for column in inspector.get_columns(table.name)}
        missing += [(table, column) for column in table.columns if column.name not in have]
    if not missing:
        return
    preparer = engine.dialect.identifier_preparer
    with writing(engine) as conn:
        for table, column in missing:
            spec = CreateColumn(column).compile(dialect=engine.dialect)
            conn.execute(text(f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {spec}"))
            log.info("journal: added column %s.%s", table.name, column.name)


def check_writable(engine: Engine) -> None:
    """Prove the journal accepts a write (readiness); raises on failure."""
    with writing(engine) as conn:
        conn.execute(text("UPDATE bridge_meta SET value = value WHERE key = 'schema'"))
