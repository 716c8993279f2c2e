"""Rows inserted in bulk (a fan-out's copies, their orders, tokens and keys) are stored
exactly as a plain insert stores them, on SQLite and PostgreSQL: times to the microsecond,
numbers exactly, defaults filled, a value too long refused rather than cut, a held key
skipped, and each row's id handed back with what tells it apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import DBAPIError, StatementError

from bridge.journal.bulk import insert_returning
from bridge.journal.tables import broker_calls, orders, signal_keys, signals

NOW = datetime(2026, 12, 1, 9, 15, 0, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))


def _order(tag: str, **extra: object) -> dict[str, object]:
    return {"signal_id": None, "account": "a", "tag": tag, "exchange": "NFO",
            "trading_symbol": "NIFTY26DEC24000CE", "side": "BUY", "quantity": 75,
            "product": "NRML", "order_type": "L", "price": "101.05", "trigger_price": None,
            "status": "created", "created_at": NOW, "updated_at": NOW, "sent_at": None,
            **extra}


def test_bulk_rows_are_stored_as_a_plain_insert_stores_them(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(orders).values(_order("plain")))
        made = dict(insert_returning(conn, orders, [_order("bulk1"), _order(
            "bulk2", is_exit=True, sent_at=NOW + timedelta(microseconds=1))], ("tag", "id")))
    with engine.connect() as conn:
        rows = {row.tag: row for row in conn.execute(select(orders))}
    assert set(made) == {"bulk1", "bulk2"} and made["bulk1"] != made["bulk2"]
    assert rows["bulk2"].id == made["bulk2"]
    skip = {"id", "tag", "is_exit", "sent_at"}
    assert {k: v for k, v in rows["bulk1"]._mapping.items() if k not in skip} == {
        k: v for k, v in rows["plain"]._mapping.items() if k not in skip}
    assert rows["bulk1"].created_at == NOW.astimezone(UTC)
    assert rows["bulk1"].is_exit is False and rows["bulk1"].filled_quantity == 0  # defaults
    assert rows["bulk2"].is_exit is True
    assert rows["bulk2"].sent_at == NOW.astimezone(UTC) + timedelta(microseconds=1)


def test_numbers_and_missing_values_come_back_exactly(engine: Engine) -> None:
    at = 1764560100.123456
    with engine.begin() as conn:
        made = dict(insert_returning(conn, broker_calls, [
            {"account": "x", "at": at, "sent": False, "done": False},
            {"account": "y", "at": at + 0.000001, "sent": True, "done": False}],
            ("account", "id")))
    with engine.connect() as conn:
        rows = {row.account: row for row in conn.execute(select(broker_calls))}
    assert {a: rows[a].id for a in rows} == made
    assert rows["x"].at == at and rows["y"].at == at + 0.000001
    assert (rows["x"].sent, rows["y"].sent) == (False, True)


def test_a_value_too_long_is_refused_not_cut(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite keeps any length (a plain insert does the same)")
    with pytest.raises((DBAPIError, StatementError)), engine.begin() as conn:
        insert_returning(conn, orders, [_order("t" * 21)], ("tag", "id"))
    with engine.connect() as conn:
        assert conn.execute(select(orders)).all() == []


def test_a_held_key_is_skipped_and_the_others_taken(engine: Engine) -> None:
    with engine.begin() as conn:
        ids = dict(insert_returning(conn, signals, [
            {"alert_id": f"a{n}", "source": "tradingview", "account": f"acc{n}",
             "received_at": NOW, "raw_body": "{}", "parsed": "{}", "status": "queued",
             "expires_at": NOW, "updated_at": NOW} for n in range(3)], ("account", "id")))
        conn.execute(insert(signal_keys).values(key="held", signal_id=ids["acc0"],
                                                expires_at=None))
        taken = insert_returning(conn, signal_keys, [
            {"key": "held", "signal_id": ids["acc1"], "expires_at": None},
            {"key": "free", "signal_id": ids["acc2"], "expires_at": NOW}],
            ("key",), skip_conflicts_on=("key",))
    assert taken == [("free",)]
    with engine.connect() as conn:
        holders = dict(conn.execute(select(signal_keys.c.key, signal_keys.c.signal_id)).all())
    assert holders == {"held": ids["acc0"], "free": ids["acc2"]}
