"""A journal written by an earlier version keeps its rows when the bridge starts: missing
tables are created and missing columns added, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, insert, inspect, select, text

from bridge.journal.schema import create_schema
from bridge.journal.tables import notices, used_signatures


def test_an_earlier_journal_gains_the_new_columns_and_tables_with_its_rows_intact(
        engine_before_migrations: Engine) -> None:
    engine = engine_before_migrations
    with engine.begin() as conn:
        conn.execute(insert(notices).values(at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
                                            kind="login", level="info",
                                            text="logged in to Kotak"))
        # As an earlier version left it: no delivery columns, no signature table.
        for column in ("sent_to", "refused_by", "last_error", "gave_up_at"):
            conn.execute(text(f"ALTER TABLE notices DROP COLUMN {column}"))
        conn.execute(text("DROP TABLE used_signatures"))

    create_schema(engine)

    inspector = inspect(engine)
    assert {"sent_to", "refused_by", "last_error", "gave_up_at"} <= {
        column["name"] for column in inspector.get_columns("notices")}
    assert used_signatures.name in inspector.get_table_names()
    with engine.connect() as conn:
        rows = conn.execute(select(notices.c.text, notices.c.sent_to,
                                   notices.c.last_error)).all()
    assert [tuple(row) for row in rows] == [("logged in to Kotak", "", None)]
    create_schema(engine)  # a second start changes nothing
