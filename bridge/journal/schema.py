"""Creating the journal's tables, and proving the journal writable."""

from __future__ import annotations

from sqlalchemy import Engine, text

from bridge.journal.locks import named_lock
from bridge.journal.tables import metadata
from bridge.journal.txn import writing


def create_schema(engine: Engine) -> None:
    """Create missing tables; under a lock, since several workers or hosts start together."""
    with named_lock(engine, "journal-schema", timeout=120.0):
        metadata.create_all(engine, checkfirst=True)


def check_writable(engine: Engine) -> None:
    """Prove the journal accepts a write (readiness); raises on failure."""
    with writing(engine) as conn:
        conn.execute(text("UPDATE bridge_meta SET value = value WHERE key = 'schema'"))
