"""A journal exactly as the bridge wrote it before migrations (frozen DDL in fixtures/)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bridge.journal.db import create_db_engine

FIXTURES = Path(__file__).parent / "fixtures"


def statements_before_migrations(dialect: str) -> list[str]:
    """The statements main ran on a fresh journal just before migrations came in."""
    source = (FIXTURES / f"journal-before-migrations.{dialect}.sql").read_text()
    body = source.split("\n", 1)[1]  # the first line says what the file is
    return [statement.strip() for statement in body.split(";\n") if statement.strip()]


@pytest.fixture
def engine_before_migrations(database_url: str) -> Iterator[Engine]:
    """An engine on a journal with every table of that day and no alembic_version."""
    engine = create_db_engine(database_url)
    with engine.begin() as conn:
        for statement in statements_before_migrations(engine.dialect.name):
            conn.execute(text(statement))
    yield engine
    engine.dispose()
