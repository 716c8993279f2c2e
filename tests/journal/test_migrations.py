"""The journal's schema migrations (Alembic, run by the bridge at start), on SQLite and
PostgreSQL: a journal from before migrations keeps every row and reaches the head, a fresh
one is created at the head, a current one is left alone, starts together migrate once, a
journal from a newer bridge is refused, and the tables and the revisions agree."""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event, insert, inspect, select, text

from bridge.journal import migrations
from bridge.journal.db import create_db_engine
from bridge.journal.migrations import HEAD
from bridge.journal.schema import JournalTooNew, create_schema
from bridge.journal.tables import (
    auth_failures,
    bridge_meta,
    broker_calls,
    broker_sessions,
    events,
    job_runs,
    leaders,
    login_failures,
    metadata,
    notices,
    orders,
    pending_logins,
    processes,
    refusals,
    signal_keys,
    signals,
    used_signatures,
)
from tests.e2e.helpers import ROOT, free_port

AT = datetime(2026, 11, 24, 3, 45, 12, tzinfo=UTC)
LATER = AT + timedelta(minutes=5)


def fill(engine: Engine) -> None:
    """A row or more in every table, as a trading day leaves them."""
    with engine.begin() as conn:
        conn.execute(insert(bridge_meta).values(key="kill_switch", value="on"))
        conn.execute(insert(broker_sessions).values(account="asha", sealed="gAAAA-sealed",
                                                    expires_at=LATER, updated_at=AT))
        conn.execute(insert(login_failures).values(account="ravi", failed_at=AT,
                                                   reason="wrong TOTP", attended=False))
        conn.execute(insert(pending_logins).values(account="ravi", sealed="gAAAA-otp",
                                                   created_at=AT))
        for number, status in ((1, "done"), (2, "rejected")):
            conn.execute(insert(signals).values(
                id=number, alert_id=f"tv-{number}", source="tradingview", account="asha",
                received_at=AT, remote_addr="52.89.214.238", raw_body='{"secret": "***"}',
                parsed='{"action": "buy"}', strategy="orb", symbol="NSE:SBIN",
                instrument="NSE:SBIN-EQ", side="BUY", status=status, priority=1,
                error_code=None if number == 1 else "RISK_LIMIT",
                error_message=None if number == 1 else "daily order cap reached",
                updated_at=LATER))
            conn.execute(insert(signal_keys).values(key=f"id:tv-{number}", signal_id=number))
        conn.execute(insert(signal_keys).values(key="body:3f2a", signal_id=1,
                                                expires_at=LATER))
        conn.execute(insert(orders).values(
            id=7, signal_id=1, account="asha", tag="b1a2c3", strategy="orb", exchange="NSE",
            trading_symbol="SBIN-EQ", side="BUY", quantity=10, product="MIS",
            order_type="LMT", price="812.35", is_exit=False, status="filled",
            broker_order_id="251124000123", broker_status="complete", filled_quantity=10,
            average_price="812.30", created_at=AT, sent_at=AT, updated_at=LATER,
            final_at=LATER))
        conn.execute(insert(events).values(signal_id=1, order_id=7, at=AT, status="sent",
                                           detail="to Kotak"))
        conn.execute(insert(events).values(signal_id=1, order_id=7, at=LATER,
                                           status="filled", detail="10 @ 812.30"))
        conn.execute(insert(broker_calls).values(account="asha", at=1764042312.5, sent=True,
                                                 done=True))
        conn.execute(insert(processes).values(id="host-a:4242", started_at=AT,
                                              heartbeat_at=LATER))
        conn.execute(insert(auth_failures).values(address="203.0.113.9", count=3,
                                                  first_at=AT, blocked_until=LATER))
        conn.execute(insert(job_runs).values(
            key=f"squareoff@{AT.isoformat()}", job="squareoff", trigger_at=AT,
            status="succeeded", runner="host-a:4242", attempts=1, started_at=AT,
            finished_at=LATER, summary="2 positions closed", report='{"closed": 2}'))
        conn.execute(insert(leaders).values(role="scheduler", holder="host-a:4242", since=AT,
                                            heartbeat_at=LATER))
        conn.execute(insert(notices).values(at=AT, kind="squareoff", level="info",
                                            text="square-off closed 2 positions",
                                            delivered_at=LATER, attempts=1,
                                            sent_to="telegram"))
        conn.execute(insert(refusals).values(minute=AT, source="tradingview",
                                             address="203.0.113.9", code="BAD_SECRET",
                                             reason="wrong secret", count=4))
        conn.execute(insert(used_signatures).values(digest="9f" * 32, expires_at=LATER))


def everything(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {table.name: [tuple(row) for row in conn.execute(
                    select(table).order_by(*table.primary_key.columns))]
                for table in metadata.sorted_tables}


def stamped(engine: Engine) -> tuple[str, ...]:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_heads()


def differences(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def test_a_journal_from_before_migrations_keeps_every_row_and_reaches_the_head(
        engine_before_migrations: Engine) -> None:
    engine = engine_before_migrations
    fill(engine)
    before = everything(engine)
    assert all(before.values()), "every table holds a row"

    create_schema(engine)

    assert everything(engine) == before
    assert stamped(engine) == (HEAD,)
    indexes = {index["name"] for index in inspect(engine).get_indexes("signal_keys")}
    assert {"ix_signal_keys_signal", "ix_signal_keys_expires"} <= indexes  # revision 0002
    queue = {index["name"] for index in inspect(engine).get_indexes("signals")}
    assert "ix_signals_status" in queue  # revision 0003
    assert differences(engine) == []


def test_a_journal_with_only_some_of_the_tables_is_completed(database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE bridge_meta (key VARCHAR(64) NOT NULL, "
                              "value TEXT NOT NULL, PRIMARY KEY (key))"))
            conn.execute(text("INSERT INTO bridge_meta (key, value) VALUES ('schema', '1')"))

        create_schema(engine)

        assert stamped(engine) == (HEAD,)
        assert differences(engine) == []
        with engine.connect() as conn:
            assert conn.execute(select(bridge_meta.c.key, bridge_meta.c.value)).all() == [
                ("schema", "1")]
    finally:
        engine.dispose()


def test_a_fresh_journal_is_created_at_the_head_in_its_own_schema(engine: Engine) -> None:
    assert stamped(engine) == (HEAD,)
    assert differences(engine) == []
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            # The test schema comes through the URL's search_path: the version table goes
            # where the journal's tables go, not to public.
            # (Other tests' schemas, running beside this one, hold their own.)
            mine = conn.execute(text("SELECT current_schema()")).scalar()
            assert mine != "public"
            assert conn.execute(text(
                "SELECT table_schema FROM information_schema.tables "
                "WHERE table_name = 'alembic_version' AND table_schema IN (:mine, 'public')"),
                {"mine": mine}).scalars().all() == [mine]


def test_head_names_the_newest_revision() -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD]


def test_a_journal_at_the_head_costs_one_read_of_its_version(engine: Engine) -> None:
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(" ".join(statement.split()))

    fill(engine)
    before = everything(engine)
    event.listen(engine, "before_cursor_execute", record)
    try:
        create_schema(engine)
        create_schema(engine)
    finally:
        event.remove(engine, "before_cursor_execute", record)

    journal = [s for s in sent if "advisory" not in s]  # PostgreSQL's start-up lock
    assert journal == ["SELECT alembic_version.version_num FROM alembic_version"] * 2
    assert everything(engine) == before


def test_starts_together_migrate_once(engine_before_migrations: Engine, database_url: str,
                                      caplog: pytest.LogCaptureFixture) -> None:
    fill(engine_before_migrations)
    before = everything(engine_before_migrations)
    engines = [create_db_engine(database_url) for _ in range(3)]
    ready = threading.Barrier(len(engines))
    failures: list[BaseException] = []

    def start(engine: Engine) -> None:
        ready.wait()
        try:
            create_schema(engine)
        except BaseException as exc:
            failures.append(exc)

    caplog.set_level(logging.INFO, logger="alembic")
    threads = [threading.Thread(target=start, args=(engine,)) for engine in engines]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for engine in engines:
            engine.dispose()

    assert failures == []
    runs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Running")]
    assert [" ".join(run.split()) for run in runs] == [
        "Running upgrade -> 0001, " + _summary("0001"),
        "Running upgrade 0001 -> 0002, " + _summary("0002"),
        "Running upgrade 0002 -> 0003, " + _summary("0003")]
    assert stamped(engine_before_migrations) == (HEAD,)
    assert everything(engine_before_migrations) == before


def _summary(revision: str) -> str:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    script = ScriptDirectory.from_config(config).get_revision(revision)
    assert script is not None
    return " ".join(script.doc.split())


def test_a_journal_from_a_newer_bridge_is_refused_untouched(engine: Engine) -> None:
    fill(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0042'"))
    before = everything(engine)

    with pytest.raises(JournalTooNew) as refused:
        create_schema(engine)

    assert str(refused.value) == ("The journal was written by a newer version of the bridge "
                                  "(revision 0042); update the bridge or restore a backup.")
    assert stamped(engine) == ("0042",)
    assert everything(engine) == before


@pytest.mark.e2e
def test_the_server_refuses_a_journal_from_a_newer_bridge_in_one_sentence(
        tmp_path: Path) -> None:
    journal = tmp_path / "bridge.db"
    engine = create_db_engine(f"sqlite:///{journal}")
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0042'"))
    engine.dispose()
    env = {**os.environ, "ENV_FILE": str(tmp_path / "none.env"),
           "WEBHOOK_SECRET": "start-test-secret-0123456789", "DATA_DIR": str(tmp_path),
           "BRIDGE_BIND": f"127.0.0.1:{free_port()}", "DATABASE_URL": f"sqlite:///{journal}"}

    done = subprocess.run([str(ROOT / ".venv/bin/gunicorn"), "-c", "deploy/gunicorn.conf.py",
                           "wsgi:app"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)

    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert "the bridge cannot start: The journal was written by a newer version of the " \
           "bridge (revision 0042); update the bridge or restore a backup." in said
    assert "Traceback" not in said
