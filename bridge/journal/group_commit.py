"""Writes from many threads, committed together: one transaction for all that are waiting.

A fan-out to 200 accounts answers 200 orders within milliseconds of each other, and each
answer used to be a transaction of its own (connection check-out, ``BEGIN``, nine
statements, ``COMMIT``), about 2 ms of the bridge's one interpreter each, taken from the
copies still waiting to be sent. Here the first writer to arrive writes; whoever arrives
while it does waits, and the next of them then writes everything that queued meanwhile in
one transaction. A writer alone (the usual single signal) writes at once, as before: no
writer ever waits for company.

A batch that fails is written again one by one, so one bad change never takes the others
down with it, and each caller gets its own result or its own exception.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


class _Slot(Generic[T, R]):
    __slots__ = ("error", "item", "leads", "result", "woken")

    def __init__(self, item: T) -> None:
        self.item = item
        self.woken = threading.Event()
        self.leads = False
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """``write_many`` writes a batch in one transaction, returning one result per item in
    order; ``write_one`` writes one item in a transaction of its own."""

    def __init__(self, write_many: Callable[[list[T]], list[R]],
                 write_one: Callable[[T], R]) -> None:
        self._write_many = write_many
        self._write_one = write_one
        self._guard = threading.Lock()
        self._waiting: list[_Slot[T, R]] = []
        self._writing = False

    def write(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._guard:
            self._waiting.append(slot)
            if not self._writing:
                self._writing = slot.leads = True
        if not slot.leads:
            slot.woken.wait()
        if slot.leads:
            self._lead()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]  # set whenever error is not

    def _lead(self) -> None:
        with self._guard:
            batch, self._waiting = self._waiting, []
        try:
            self._run(batch)
        finally:
            with self._guard:
                if self._waiting:
                    # The next in line writes what queued meanwhile; this caller goes back.
                    self._waiting[0].leads = True
                    self._waiting[0].woken.set()
                else:
                    self._writing = False
            for slot in batch:
                slot.woken.set()

    def _run(self, batch: list[_Slot[T, R]]) -> None:
        if len(batch) > 1:
            try:
                results = self._write_many([slot.item for slot in batch])
            except Exception:
                log.info("%d journal writes failed together; writing each on its own",
                         len(batch), exc_info=True)
            else:
                for slot, result in zip(batch, results, strict=True):
                    slot.result = result
                return
        for slot in batch:
            try:
                slot.result = self._write_one(slot.item)
            except BaseException as exc:
                slot.error = exc
