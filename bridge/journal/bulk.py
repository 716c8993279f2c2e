"""Many rows inserted in one statement whose text does not grow with the rows.

SQLAlchemy inserts many rows with RETURNING as one ``INSERT ... VALUES (...), (...)`` naming
every value apart: for a fan-out's 200 orders, 3,400 parameters in a statement of some 60 KB
that psycopg then parses placeholder by placeholder on every call (it caches the parse only
for statements under 4 KB and 50 parameters). That cost about a tenth of a second of a
200-account fan-out before its first order left. On PostgreSQL the rows go instead as one
JSON document read by ``json_to_recordset``: a short statement, parsed once and kept, and one
parameter that ``json.dumps`` writes in C, whatever the number of rows (arrays per column
through ``unnest`` were tried: psycopg escapes their text element by element in Python, which
cost as much as the parse it saved). SQLite, in the process, keeps SQLAlchemy's statement.

The rows come back unordered, each with the columns named in ``returning``, so a caller
finds its ids by something the rows already hold apart (a fan-out's copies by account, orders
by tag), never by position.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, Connection, Dialect, Float, String, Table, insert, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql.schema import ScalarElementColumnDefault


def insert_returning(conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
                     returning: Sequence[str], *, skip_conflicts_on: Sequence[str] = ()
                     ) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (each with the same columns; columns left out take their defaults)
    and return ``returning`` of each row inserted, in no particular order. With
    ``skip_conflicts_on``, a row whose value there is already held is not inserted and not
    returned."""
    if not rows:
        return []
    given = list(rows[0])
    filled = _defaults(table, given)
    values = [{**filled, **row} for row in rows]
    names = [*given, *filled]
    if conn.dialect.name != "postgresql":
        statement = (sqlite.insert(table).on_conflict_do_nothing(
            index_elements=list(skip_conflicts_on)) if skip_conflicts_on else insert(table))
        return [tuple(row) for row in conn.execute(
            statement.returning(*(table.c[name] for name in returning)), values)]
    columns = [table.c[name] for name in names]
    quote = conn.dialect.identifier_preparer.quote
    listed = ", ".join(quote(name) for name in names)
    record = ", ".join(f"{quote(column.name)} {_sql_type(column, conn.dialect)}"
                       for column in columns)
    conflict = (f" ON CONFLICT ({', '.join(quote(name) for name in skip_conflicts_on)}) "
                "DO NOTHING" if skip_conflicts_on else "")
    sql = (f"INSERT INTO {quote(table.name)} ({listed}) SELECT {listed} "
           f"FROM json_to_recordset(CAST(:rows AS json)) AS x({record}){conflict} "
           f"RETURNING {', '.join(quote(name) for name in returning)}")
    bound = _bound(conn, columns, values)
    return [tuple(row) for row in conn.execute(text(sql), {"rows": json.dumps(
        bound, default=_json_value, separators=(",", ":"))})]


def _defaults(table: Table, given: list[str]) -> dict[str, Any]:
    """The Python-side scalar defaults of the columns a row leaves out (``insert()`` fills
    them; a statement of our own must too)."""
    return {column.name: column.default.arg for column in table.columns
            if column.name not in given and isinstance(column.default, ScalarElementColumnDefault)}


def _sql_type(column: Column[Any], dialect: Dialect) -> str:
    """The type a column's values are read as from the JSON. Text is read as ``text``,
    never as the column's ``varchar(n)``: the insert itself then refuses a value too long,
    as a plain insert does."""
    kind = column.type
    if isinstance(kind, String):
        return "text"
    if isinstance(kind, Boolean):
        return "boolean"
    if isinstance(kind, Float):
        return "double precision"
    return str(kind.compile(dialect=dialect))


def _bound(conn: Connection, columns: list[Column[Any]],
           values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows' values as their columns' types bind them (an aware time made UTC, say)."""
    processors: list[tuple[str, Callable[[Any], Any]]] = []
    for column in columns:
        found = column.type.bind_processor(conn.dialect)
        if found is not None:
            processors.append((column.name, found))
    if not processors:
        return values
    bound = []
    for row in values:
        copy = dict(row)
        for name, process in processors:
            if copy[name] is not None:
                copy[name] = process(copy[name])
        bound.append(copy)
    return bound


def _json_value(value: Any) -> str:
    """A time as PostgreSQL reads one (ISO 8601 with its offset)."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot insert a {type(value).__name__} in bulk")
