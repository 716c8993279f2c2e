"""Tables of the journal (SQLAlchemy Core)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    MetaData,
    String,
    Table,
    Text,
    event,
    insert,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the journal stores timezone-aware times only")
        return value.astimezone(UTC) if dialect.name != "sqlite" else \
            value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None,
                             dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


bridge_meta = Table(
    "bridge_meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Sessions are sealed (encrypted) as a whole: tokens never sit in the database in clear.
broker_sessions = Table(
    "broker_sessions", metadata,
    Column("account", String(64), primary_key=True),
    Column("sealed", Text, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

login_failures = Table(
    "login_failures", metadata,
    Column("account", String(64), primary_key=True),
    Column("failed_at", UtcDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("attended", Boolean, nullable=False),
)

pending_logins = Table(
    "pending_logins", metadata,
    Column("account", String(64), primary_key=True),
    Column("sealed", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)


@event.listens_for(bridge_meta, "after_create")
def _seed_meta(target: Table, connection: Any, **_kw: Any) -> None:
    connection.execute(insert(target).values(key="schema", value="1"))
