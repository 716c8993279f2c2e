"""The journal as the bridge wrote it before migrations: every table, column and index of
that day, frozen here (never edit it; change the schema in a new revision).

A fresh journal never runs this: the bridge creates it from the tables and stamps the head.
It brings a journal with no ``alembic_version`` table (one written before migrations, or by
an earlier version still) to that day's schema, keeping every row: tables it lacks are
created, and columns and indexes its tables lack are added; those columns are nullable or
carry a server default, so existing rows get a value.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import CreateColumn

revision = "0001"
down_revision: str | None = None

log = logging.getLogger(__name__)


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())
    baseline = _baseline()
    new = [table for table in baseline.sorted_tables if table.name not in existing]
    baseline.create_all(bind, tables=new, checkfirst=False)
    if "bridge_meta" not in existing:
        op.execute(baseline.tables["bridge_meta"].insert().values(key="schema", value="1"))
    preparer = bind.dialect.identifier_preparer
    for table in baseline.sorted_tables:
        if table.name not in existing:
            continue
        have = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:
                spec = CreateColumn(column).compile(dialect=bind.dialect)
                op.execute(f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {spec}")
                log.info("journal: added column %s.%s", table.name, column.name)
        indexed = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexed:
                index.create(bind)


def _baseline() -> sa.MetaData:
    meta = sa.MetaData()
    time = sa.DateTime(timezone=True)
    # SQLite autoincrements only an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit serial.
    row_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    sa.Table(
        "bridge_meta", meta,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    sa.Table(
        "broker_sessions", meta,
        sa.Column("account", sa.String(64), primary_key=True),
        sa.Column("sealed", sa.Text, nullable=False),
        sa.Column("expires_at", time, nullable=False),
        sa.Column("updated_at", time, nullable=False),
    )
    sa.Table(
        "login_failures", meta,
        sa.Column("account", sa.String(64), primary_key=True),
        sa.Column("failed_at", time, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("attended", sa.Boolean, nullable=False),
    )
    sa.Table(
        "pending_logins", meta,
        sa.Column("account", sa.String(64), primary_key=True),
        sa.Column("sealed", sa.Text, nullable=False),
        sa.Column("created_at", time, nullable=False),
    )
    sa.Table(
        "signals", meta,
        sa.Column("id", row_id, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(96), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("received_at", time, nullable=False),
        sa.Column("remote_addr", sa.String(64), nullable=False),
        sa.Column("raw_body", sa.Text, nullable=False),
        sa.Column("parsed", sa.Text),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(96), nullable=False),
        sa.Column("instrument", sa.String(120), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("error_code", sa.String(40)),
        sa.Column("error_message", sa.Text),
        sa.Column("error_details", sa.Text),
        sa.Column("duplicate_of", sa.BigInteger),
        sa.Column("claimed_by", sa.String(96)),
        sa.Column("claimed_at", time),
        sa.Column("expires_at", time),
        sa.Column("updated_at", time, nullable=False),
        sa.Index("ix_signals_queue", "account", "status", "priority", "id"),
        sa.Index("ix_signals_alert", "alert_id"),
        sa.Index("ix_signals_received", "received_at"),
    )
    sa.Table(
        "signal_keys", meta,
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("signal_id", sa.BigInteger, nullable=False),
        sa.Column("expires_at", time),
    )
    sa.Table(
        "orders", meta,
        sa.Column("id", row_id, primary_key=True, autoincrement=True),
        sa.Column("signal_id", sa.BigInteger, sa.ForeignKey("signals.id"), nullable=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("tag", sa.String(20), nullable=False, unique=True),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("exchange", sa.String(8), nullable=False),
        sa.Column("trading_symbol", sa.String(96), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("product", sa.String(8), nullable=False),
        sa.Column("order_type", sa.String(8), nullable=False),
        sa.Column("price", sa.String(32)),
        sa.Column("trigger_price", sa.String(32)),
        sa.Column("is_exit", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("broker_order_id", sa.String(40)),
        sa.Column("broker_status", sa.String(64)),
        sa.Column("filled_quantity", sa.Integer, nullable=False),
        sa.Column("average_price", sa.String(32)),
        sa.Column("error_code", sa.String(40)),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", time, nullable=False),
        sa.Column("sent_at", time),
        sa.Column("updated_at", time, nullable=False),
        sa.Column("final_at", time),
        sa.Index("ix_orders_state", "account", "status"),
        sa.Index("ix_orders_day", "account", "created_at"),
        sa.Index("ix_orders_signal", "signal_id"),
        sa.Index("ix_orders_broker", "broker_order_id"),
    )
    sa.Table(
        "events", meta,
        sa.Column("id", row_id, primary_key=True, autoincrement=True),
        sa.Column("signal_id", sa.BigInteger),
        sa.Column("order_id", sa.BigInteger),
        sa.Column("at", time, nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Index("ix_events_signal_id", "signal_id"),
    )
    sa.Table(
        "broker_calls", meta,
        sa.Column("id", row_id, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("sent", sa.Boolean, nullable=False),
        sa.Column("done", sa.Boolean, nullable=False),
        sa.Index("ix_broker_calls", "account", "at"),
    )
    sa.Table(
        "processes", meta,
        sa.Column("id", sa.String(96), primary_key=True),
        sa.Column("started_at", time, nullable=False),
        sa.Column("heartbeat_at", time, nullable=False),
    )
    sa.Table(
        "auth_failures", meta,
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("first_at", time, nullable=False),
        sa.Column("blocked_until", time),
    )
    sa.Table(
        "job_runs", meta,
        sa.Column("id", row_id, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(120), nullable=False, unique=True),
        sa.Column("job", sa.String(40), nullable=False),
        sa.Column("trigger_at", time, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("runner", sa.String(96), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("started_at", time, nullable=False),
        sa.Column("finished_at", time),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("report", sa.Text),
        sa.Index("ix_job_runs_job", "job", "trigger_at"),
    )
    sa.Table(
        "leaders", meta,
        sa.Column("role", sa.String(40), primary_key=True),
        sa.Column("holder", sa.String(96), nullable=False),
        sa.Column("since", time, nullable=False),
        sa.Column("heartbeat_at", time, nullable=False),
    )
    sa.Table(
        "notices", meta,
        sa.Column("id", row_id, primary_key=True, autoincrement=True),
        sa.Column("at", time, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("delivered_at", time),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_try_at", time),
        sa.Column("claimed_until", time),
        sa.Column("sent_to", sa.String(64), nullable=False, server_default=""),
        sa.Column("refused_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("last_error", sa.Text),
        sa.Column("gave_up_at", time),
        sa.Index("ix_notices_at", "at"),
    )
    sa.Table(
        "refusals", meta,
        sa.Column("id", row_id, primary_key=True, autoincrement=True),
        sa.Column("minute", time, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.UniqueConstraint("minute", "source", "address", "code", "reason",
                            name="uq_refusals_bucket"),
        sa.Index("ix_refusals_minute", "minute"),
    )
    sa.Table(
        "used_signatures", meta,
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("expires_at", time, nullable=False),
        sa.Index("ix_used_signatures_expires", "expires_at"),
    )
    return meta
