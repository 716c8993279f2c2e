"""Paper mode's state in a SQLite file shared by every worker, at a cost per call that does not
grow with the day's orders.

Each record is a row of ``sandbox_records``, keyed by kind, owner (the account, or ``""``)
and key, holding its JSON and the version that last wrote it; ``sandbox_clock`` holds the
file's version (one more for every call that changed something) and its generation (one
more whenever a record was removed). Every call runs under ``BEGIN IMMEDIATE``, as before:

* **reading**: each process keeps the state it last saw, decoded. When the file's version is
  the one it saw, nothing is read; when it is newer, only rows stamped newer are decoded and
  laid over it; when the generation moved (a record was removed: the daily book roll, a
  session ended), it is read whole again, once.
* **writing**: only records the call may have changed are encoded and compared with what the
  file holds: the orders that are new, or were working at the start of the call, or are
  working now; new fills and tags; and the small maps (positions, book headers, sessions,
  tokens, prices, counters). A finished order is never encoded again.

This leans on how the engine changes a book, and says so here: orders, fills and tags are
only ever added, except when a book is replaced whole (the daily roll assigns new
collections, which is seen and written whole); an order that is finished (not in
``book.working``) never changes.

A block that raises leaves the file as it was and drops the decoded state, so the next call
reads the file afresh. A file from before (the state as one JSON document in
``sandbox_state``) is turned into rows when first opened.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from pathlib import Path

from bridge.kotak.sandbox.records import (
    BearerRecord,
    BookRecord,
    FillRecord,
    OrderRecord,
    PositionRecord,
    SandboxState,
    SessionRecord,
    from_json,
    loads,
    to_json,
)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS sandbox_clock (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "version INTEGER NOT NULL, generation INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO sandbox_clock (id, version, generation) VALUES (1, 0, 0)",
    "CREATE TABLE IF NOT EXISTS sandbox_records (kind TEXT NOT NULL, owner TEXT NOT NULL, "
    "key TEXT NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL, "
    "PRIMARY KEY (kind, owner, key))",
    "CREATE INDEX IF NOT EXISTS sandbox_records_version ON sandbox_records (version)",
)
# An upsert keeps the row's rowid, so rows read in rowid order come in the order their
# records were first added: the order of the book's dicts and lists.
_UPSERT = ("INSERT INTO sandbox_records (kind, owner, key, version, body) VALUES (?, ?, ?, ?, ?) "
           "ON CONFLICT (kind, owner, key) DO UPDATE SET version = excluded.version, "
           "body = excluded.body")
_COLUMNS = "kind, owner, key, body"

# Kinds of row. A book's header holds what is not a collection; its collections are rows.
_BOOK, _ORDER, _FILL, _TAG, _POSITION = "book", "order", "fill", "tag", "position"
_SESSION, _BEARER, _PRICE, _FAILURE, _SEQ = "session", "bearer", "price", "failure", "seq"
#: the kinds added to one by one and written whole only when the book is replaced
_GROWING = (_ORDER, _FILL, _TAG)

Row = tuple[str, str, str, str]  # kind, owner, key, body


@dataclass(frozen=True)
class _BookMark:
    """A book as a call found it: enough to tell afterwards what the call added."""

    orders: dict[str, OrderRecord]
    order_count: int
    fills: list[FillRecord]
    fill_count: int
    tags: set[str]
    working: tuple[str, ...]

    @classmethod
    def of(cls, book: BookRecord) -> _BookMark:
        return cls(book.orders, len(book.orders), book.fills, len(book.fills), book.tags,
                   tuple(book.working))

    def replaced(self, book: BookRecord) -> bool:
        return (book.orders is not self.orders or len(book.orders) < self.order_count
                or book.fills is not self.fills or len(book.fills) < self.fill_count
                or book.tags is not self.tags)


@dataclass
class _Changes:
    rows: list[Row]
    deleted: list[tuple[str, str, str]]  # kind, owner, key
    dropped: list[tuple[str, str]]  # every row of a kind and owner

    @property
    def removes(self) -> bool:
        return bool(self.deleted or self.dropped)


class SqliteStateStore:
    """The state in a SQLite file shared by several processes, one record a row."""

    def __init__(self, path: Path) -> None:
        self._path = path
        # One call at a time per process: the decoded state below is shared by its threads.
        self._lock = threading.Lock()
        self._state: SandboxState | None = None
        self._version = self._generation = -1
        #: the JSON the file holds for each record this process knows, by (kind, owner) and
        #: key, to tell a changed record from an unchanged one (fills are never rewritten,
        #: so theirs are not kept)
        self._bodies: dict[tuple[str, str], dict[str, str]] = {}
        #: rows decoded from the file since this store was opened (what reading has cost)
        self.rows_decoded = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                conn.execute(statement)
            _migrate(conn)
            conn.execute("COMMIT")
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    @contextmanager
    def transaction(self) -> Iterator[SandboxState]:
        with self._lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    state = self._current(conn)
                    marks = {ucc: _BookMark.of(book) for ucc, book in state.books.items()}
                    yield state
                    self._commit(conn, state, marks)
                except BaseException:
                    # The block may have changed the decoded state half way: forget it, so the
                    # next call reads what the file holds.
                    self._forget()
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            finally:
                conn.close()

    def _forget(self) -> None:
        self._state = None
        self._bodies = {}
        self._version = self._generation = -1

    # --- reading --------------------------------------------------------------------------

    def _current(self, conn: sqlite3.Connection) -> SandboxState:
        version, generation = conn.execute(
            "SELECT version, generation FROM sandbox_clock WHERE id = 1").fetchone()
        state = self._state
        if state is None or generation != self._generation:
            self._forget()
            state = SandboxState()
            self._lay(state, conn.execute(
                f"SELECT {_COLUMNS} FROM sandbox_records ORDER BY rowid"))
        elif version != self._version:
            self._lay(state, conn.execute(
                f"SELECT {_COLUMNS} FROM sandbox_records WHERE version > ? ORDER BY rowid",
                (self._version,)))
        self._state, self._version, self._generation = state, version, generation
        return state

    def _lay(self, state: SandboxState, rows: Iterable[Row]) -> None:
        """Put ``rows`` over ``state``: each record added, or put in place of the one it
        replaces. Book headers go first, so a new book exists before its orders."""
        ordered = sorted(rows, key=lambda row: row[0] != _BOOK)
        for kind, owner, key, body in ordered:
            _lay_row(state, kind, owner, key, body)
            if kind != _FILL:
                self._bodies.setdefault((kind, owner), {})[key] = body
        self.rows_decoded += len(ordered)

    # --- writing --------------------------------------------------------------------------

    def _commit(self, conn: sqlite3.Connection, state: SandboxState,
                marks: dict[str, _BookMark]) -> None:
        changes = self._changes(state, marks)
        if not (changes.rows or changes.removes):
            conn.execute("COMMIT")  # a call that changed nothing leaves the file alone
            return
        version = self._version + 1
        generation = self._generation + (1 if changes.removes else 0)
        for kind, owner in changes.dropped:
            conn.execute("DELETE FROM sandbox_records WHERE kind = ? AND owner = ?",
                         (kind, owner))
        conn.executemany("DELETE FROM sandbox_records WHERE kind = ? AND owner = ? AND key = ?",
                         changes.deleted)
        conn.executemany(_UPSERT, [(kind, owner, key, version, body)
                                   for kind, owner, key, body in changes.rows])
        conn.execute("UPDATE sandbox_clock SET version = ?, generation = ? WHERE id = 1",
                     (version, generation))
        conn.execute("COMMIT")
        self._version, self._generation = version, generation
        for kind, owner in changes.dropped:
            self._bodies.pop((kind, owner), None)
        for kind, owner, key in changes.deleted:
            self._bodies.get((kind, owner), {}).pop(key, None)
        for kind, owner, key, body in changes.rows:
            if kind != _FILL:
                self._bodies.setdefault((kind, owner), {})[key] = body

    def _changes(self, state: SandboxState, marks: dict[str, _BookMark]) -> _Changes:
        changes = _Changes([], [], [])
        for ucc, book in state.books.items():
            mark = marks.get(ucc)
            if mark is None or mark.replaced(book):
                # A new book, or one replaced whole (the daily roll): written whole.
                if mark is not None:
                    changes.dropped.extend((kind, ucc) for kind in _GROWING)
                changes.rows.extend(_book_rows(book))
            else:
                self._added(book, mark, changes)
            self._compare(changes, _POSITION, ucc,
                          {key: to_json(p) for key, p in book.positions.items()})
            self._compare(changes, _BOOK, ucc, {"": _header(book)})
        for ucc in marks.keys() - state.books.keys():
            changes.dropped.extend((kind, ucc) for kind in (*_GROWING, _POSITION, _BOOK))
        for kind, values in _small_maps(state).items():
            self._compare(changes, kind, "", values)
        return changes

    def _added(self, book: BookRecord, mark: _BookMark, changes: _Changes) -> None:
        """What a call changed in a book it did not replace: its new, working and just
        finished orders, its new fills and its new tags."""
        ucc = book.ucc
        new = list(islice(reversed(book.orders), len(book.orders) - mark.order_count))
        stored = self._bodies.get((_ORDER, ucc), {})
        for order_id in {*new, *mark.working, *book.working}:
            order = book.orders.get(order_id)
            if order is None:
                continue
            body = to_json(order)
            if stored.get(order_id) != body:
                changes.rows.append((_ORDER, ucc, order_id, body))
        changes.rows.extend((_FILL, ucc, fill.fill_id, to_json(fill))
                            for fill in book.fills[mark.fill_count:])
        known = self._bodies.get((_TAG, ucc), {})
        if len(book.tags) != len(known):
            # A tag is added with its order, so the new orders' tags are the new ones; should
            # something else have added one, the count tells and the whole set is compared.
            tags = {order.tag for order in (book.orders[oid] for oid in new)
                    if order.tag in book.tags and order.tag not in known}
            if len(known) + len(tags) != len(book.tags):
                tags = book.tags - known.keys()
            changes.rows.extend((_TAG, ucc, tag, "") for tag in sorted(tags))

    def _compare(self, changes: _Changes, kind: str, owner: str,
                 values: dict[str, str]) -> None:
        """Write the records of a small map that differ from the file's; remove those gone."""
        stored = self._bodies.get((kind, owner), {})
        changes.rows.extend((kind, owner, key, body) for key, body in values.items()
                            if stored.get(key) != body)
        changes.deleted.extend((kind, owner, key) for key in stored.keys() - values.keys())


# --- rows <-> records ---------------------------------------------------------------------


def _header(book: BookRecord) -> str:
    return json.dumps({"ucc": book.ucc, "day": book.day.isoformat(), "cash": str(book.cash),
                       "working": book.working}, separators=(",", ":"))


def _book_rows(book: BookRecord) -> Iterator[Row]:
    """Every growing row of a book (its header and positions are compared as small maps)."""
    ucc = book.ucc
    for order_id, order in book.orders.items():
        yield _ORDER, ucc, order_id, to_json(order)
    for fill in book.fills:
        yield _FILL, ucc, fill.fill_id, to_json(fill)
    for tag in sorted(book.tags):
        yield _TAG, ucc, tag, ""


def _small_maps(state: SandboxState) -> dict[str, dict[str, str]]:
    return {
        _SESSION: {sid: to_json(s) for sid, s in state.sessions.items()},
        _BEARER: {token: to_json(b) for token, b in state.bearers.items()},
        _PRICE: {key: to_json(price) for key, price in state.prices.items()},
        _FAILURE: {ucc: to_json(count) for ucc, count in state.login_failures.items()},
        _SEQ: {"": to_json([state.order_seq, state.fill_seq, state.exchange_seq])},
    }


def _all_rows(state: SandboxState) -> Iterator[Row]:
    for ucc, book in state.books.items():
        yield _BOOK, ucc, "", _header(book)
        yield from _book_rows(book)
        for key, position in book.positions.items():
            yield _POSITION, ucc, key, to_json(position)
    for kind, values in _small_maps(state).items():
        for key, body in values.items():
            yield kind, "", key, body


def _lay_row(state: SandboxState, kind: str, owner: str, key: str, body: str) -> None:
    if kind == _BOOK:
        header: BookRecord = from_json(BookRecord, body)
        book = state.books.get(owner)
        if book is None:
            state.books[owner] = header
        else:
            book.day, book.cash, book.working = header.day, header.cash, header.working
    elif kind == _ORDER:
        state.books[owner].orders[key] = from_json(OrderRecord, body)
    elif kind == _FILL:
        state.books[owner].fills.append(from_json(FillRecord, body))
    elif kind == _TAG:
        state.books[owner].tags.add(key)
    elif kind == _POSITION:
        state.books[owner].positions[key] = from_json(PositionRecord, body)
    elif kind == _SESSION:
        state.sessions[key] = from_json(SessionRecord, body)
    elif kind == _BEARER:
        state.bearers[key] = from_json(BearerRecord, body)
    elif kind == _PRICE:
        state.prices[key] = Decimal(json.loads(body))
    elif kind == _FAILURE:
        state.login_failures[key] = int(json.loads(body))
    elif kind == _SEQ:
        state.order_seq, state.fill_seq, state.exchange_seq = json.loads(body)


def _migrate(conn: sqlite3.Connection) -> None:
    """Turn a file from before (the whole state as one JSON document in ``sandbox_state``)
    into rows, once: whichever worker opens it first, under the write lock."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                          "AND name = 'sandbox_state'").fetchone()
    if exists is None:
        return
    row = conn.execute("SELECT body FROM sandbox_state WHERE id = 1").fetchone()
    if row is not None:
        version, generation = conn.execute(
            "SELECT version, generation FROM sandbox_clock WHERE id = 1").fetchone()
        conn.execute("DELETE FROM sandbox_records")
        conn.executemany(_UPSERT, [(kind, owner, key, version + 1, body)
                                   for kind, owner, key, body in _all_rows(loads(row[0]))])
        conn.execute("UPDATE sandbox_clock SET version = ?, generation = ? WHERE id = 1",
                     (version + 1, generation + 1))
    conn.execute("DROP TABLE sandbox_state")
