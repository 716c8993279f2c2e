"""Tables of the journal (SQLAlchemy Core)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
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


# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
Id = BigInteger().with_variant(Integer(), "sqlite")

# One row per signal received (authenticated), whatever became of it.
signals = Table(
    "signals", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("alert_id", String(96), nullable=False),
    Column("source", String(16), nullable=False),
    Column("account", String(64), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("remote_addr", String(64), nullable=False, default=""),
    Column("raw_body", Text, nullable=False),  # as received, the secret masked
    Column("parsed", Text),  # the validated signal, JSON
    Column("strategy", String(64), nullable=False, default=""),
    Column("symbol", String(96), nullable=False, default=""),
    Column("instrument", String(120), nullable=False, default=""),  # EXCH:TRADINGSYMBOL
    Column("side", String(4), nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("priority", SmallInteger, nullable=False, default=1),  # 0: exit, 1: entry
    Column("error_code", String(40)),
    Column("error_message", Text),
    Column("error_details", Text),
    Column("duplicate_of", BigInteger),
    Column("claimed_by", String(96)),
    Column("claimed_at", UtcDateTime),
    Column("expires_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_signals_queue", "account", "status", "priority", "id"),
    Index("ix_signals_alert", "alert_id"),
    Index("ix_signals_received", "received_at"),
    # Which accounts have signals queued, without reading the whole history (revision 0003).
    Index("ix_signals_status", "status", "account"),
)

# Idempotency: "id:<alert_id>" forever, "body:<hash>" until the dedup window passes.
signal_keys = Table(
    "signal_keys", metadata,
    Column("key", String(128), primary_key=True),
    Column("signal_id", BigInteger, nullable=False),
    Column("expires_at", UtcDateTime),
    # Pruning old signals deletes their keys, housekeeping the lapsed ones (revision 0002).
    Index("ix_signal_keys_signal", "signal_id"),
    Index("ix_signal_keys_expires", "expires_at"),
)

orders = Table(
    "orders", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("signal_id", BigInteger, ForeignKey("signals.id"), nullable=True),
    Column("account", String(64), nullable=False),
    Column("tag", String(20), nullable=False, unique=True),
    Column("strategy", String(64), nullable=False, default=""),
    Column("exchange", String(8), nullable=False),
    Column("trading_symbol", String(96), nullable=False),
    Column("side", String(4), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("product", String(8), nullable=False),
    Column("order_type", String(8), nullable=False),
    Column("price", String(32)),
    Column("trigger_price", String(32)),
    Column("is_exit", Boolean, nullable=False, default=False),
    Column("status", String(16), nullable=False),
    Column("broker_order_id", String(40)),
    Column("broker_status", String(64)),
    Column("filled_quantity", Integer, nullable=False, default=0),
    Column("average_price", String(32)),
    Column("error_code", String(40)),
    Column("reason", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("final_at", UtcDateTime),
    Index("ix_orders_state", "account", "status"),
    Index("ix_orders_day", "account", "created_at"),
    Index("ix_orders_signal", "signal_id"),
    Index("ix_orders_broker", "broker_order_id"),
)

# Every state change of a signal or of one of its orders: the timeline a trader reads.
events = Table(
    "events", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("signal_id", BigInteger, index=True),
    Column("order_id", BigInteger),
    Column("at", UtcDateTime, nullable=False),
    Column("status", String(24), nullable=False),
    Column("detail", Text, nullable=False, default=""),
)

# Broker order requests in the last moments, per account: the shared rate limiter's log.
broker_calls = Table(
    "broker_calls", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),
    Column("at", Float, nullable=False),  # epoch seconds: granted, then actually sent
    Column("sent", Boolean, nullable=False, default=False),
    Column("done", Boolean, nullable=False, default=False),  # the request was answered
    Index("ix_broker_calls", "account", "at"),
)

# Live bridge processes and their heartbeats: a claim held by a dead process is taken over.
processes = Table(
    "processes", metadata,
    Column("id", String(96), primary_key=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("heartbeat_at", UtcDateTime, nullable=False),
)

auth_failures = Table(
    "auth_failures", metadata,
    Column("address", String(64), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("first_at", UtcDateTime, nullable=False),
    Column("blocked_until", UtcDateTime),
)

# One row per trigger of a scheduled job: the unique key makes each trigger run once.
job_runs = Table(
    "job_runs", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(120), nullable=False, unique=True),  # job@trigger time
    Column("job", String(40), nullable=False),
    Column("trigger_at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # running, succeeded, failed, skipped
    Column("runner", String(96), nullable=False),
    Column("attempts", Integer, nullable=False, default=1),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("summary", Text, nullable=False, default=""),
    Column("report", Text),  # JSON: what the job did, for the CLI and the dashboard
    Index("ix_job_runs_job", "job", "trigger_at"),
)

# Who leads the scheduler, and its heartbeat (the lock itself is a file or advisory lock).
leaders = Table(
    "leaders", metadata,
    Column("role", String(40), primary_key=True),
    Column("holder", String(96), nullable=False),
    Column("since", UtcDateTime, nullable=False),
    Column("heartbeat_at", UtcDateTime, nullable=False),
)

# What the operator must hear about (failed login, square-off result ...): an outbox that
# the notification channels deliver from.
notices = Table(
    "notices", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("level", String(8), nullable=False),  # info, warning, error
    Column("text", Text, nullable=False),
    Column("delivered_at", UtcDateTime),
    # Delivery (bridge.outbox). Columns added after release carry a server default or are
    # nullable, so a migration can add them to a journal that has rows.
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("next_try_at", UtcDateTime),  # wall-clock time; NULL: now
    Column("claimed_until", UtcDateTime),  # a courier's lease while it sends
    Column("sent_to", String(64), nullable=False, default="", server_default=""),
    Column("refused_by", String(64), nullable=False, default="", server_default=""),
    Column("last_error", Text),
    Column("gave_up_at", UtcDateTime),
    Index("ix_notices_at", "at"),
)


# Requests the front doors refused before a signal existed (wrong secret, blocked or flooding
# address, unreadable body ...): one row per minute, source, address and reason, counted, so
# a flood costs an update, not a row each.
refusals = Table(
    "refusals", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("minute", UtcDateTime, nullable=False),
    Column("source", String(16), nullable=False),
    Column("address", String(64), nullable=False),
    Column("code", String(40), nullable=False),
    Column("reason", String(200), nullable=False),
    Column("count", Integer, nullable=False),
    UniqueConstraint("minute", "source", "address", "code", "reason",
                     name="uq_refusals_bucket"),
    Index("ix_refusals_minute", "minute"),
)

# Signed requests already accepted: a signature is good once (replay protection), kept until
# its timestamp leaves the signature window.
used_signatures = Table(
    "used_signatures", metadata,
    Column("digest", String(64), primary_key=True),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_used_signatures_expires", "expires_at"),
)


@event.listens_for(bridge_meta, "after_create")
def _seed_meta(target: Table, connection: Any, **_kw: Any) -> None:
    connection.execute(insert(target).values(key="schema", value="1"))
