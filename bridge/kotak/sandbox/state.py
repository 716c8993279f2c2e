"""The sandbox's books, and where they are kept.

Everything the simulated broker knows is one :class:`SandboxState` (its records are in
:mod:`~bridge.kotak.sandbox.records`). Every request runs inside ``store.transaction()``,
which hands out the state exclusively and keeps what the request changed:

* :class:`MemoryStateStore` for one process (tests, the standalone server);
* :class:`SqliteStateStore` for paper mode, where each gunicorn worker runs its own in-process
  sandbox and all of them must see the same book. The state is kept in a SQLite file one
  record a row (an order, a fill, a position, a session ...), each stamped with the version
  that wrote it; each process keeps the state decoded between calls and reads back only the
  rows written since, and writes only the records a call may have changed, so a call costs
  the same late in a busy day as at its start (see :mod:`~bridge.kotak.sandbox.sqlite_store`).
"""

from __future__ import annotations

import threading
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from bridge.kotak.sandbox.records import (
    BearerRecord,
    BookRecord,
    FillRecord,
    HistoryRow,
    OrderRecord,
    PositionRecord,
    SandboxState,
    SessionRecord,
    decode,
    dumps,
    encode,
    loads,
)
from bridge.kotak.sandbox.sqlite_store import SqliteStateStore

__all__ = [
    "BearerRecord", "BookRecord", "FillRecord", "HistoryRow", "MemoryStateStore",
    "OrderRecord", "PositionRecord", "SandboxState", "SessionRecord", "SqliteStateStore",
    "StateStore", "decode", "dumps", "encode", "loads",
]


class StateStore(Protocol):
    def transaction(self) -> typing.ContextManager[SandboxState]:
        """Hold the state exclusively; what the block changes is kept."""
        ...


class MemoryStateStore:
    def __init__(self) -> None:
        self._state = SandboxState()
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[SandboxState]:
        with self._lock:
            yield self._state
