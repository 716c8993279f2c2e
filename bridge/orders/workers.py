"""The threads that send signals: a fixed pool, started in the background.

A fan-out bridge sizes its pool to its accounts (hundreds of threads). Started on first use,
as :class:`concurrent.futures.ThreadPoolExecutor` does, the first fan-out after a start
would pay for starting every thread inside its own request (about 0.45 s for 200 threads on
two cores, a third of its time budget). Here one starter thread brings them up as soon as
the pool is made. No work waits for that: work is queued and taken by whichever thread is
up, so a signal that arrives while threads are still starting is taken by the ones already
running, never held back by the ones that are not.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)


class _Job:
    __slots__ = ("call", "future")

    def __init__(self, call: Callable[[], Any], future: Future[Any]) -> None:
        self.call = call
        self.future = future


class WorkerPool:
    """``size`` threads named ``name``-N taking jobs from one queue, in arrival order."""

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._guard = threading.Lock()
        self._starter = threading.Thread(target=self._start_all, name=f"{name}-starter",
                                         daemon=True)
        self._starter.start()

    def submit(self, call: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        with self._guard:
            if self._closed:
                raise RuntimeError("the pool is shut down")
            self._jobs.put(_Job(call, future))
        return future

    def shutdown(self, timeout: float | None = None) -> None:
        """Let queued jobs finish, then stop every thread."""
        with self._guard:
            self._closed = True
        self._starter.join(timeout)
        with self._guard:
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join(timeout)

    @property
    def started(self) -> int:
        with self._guard:
            return len(self._threads)

    def _start_all(self) -> None:
        for number in range(self._size):
            with self._guard:
                if self._closed:
                    return
                thread = threading.Thread(target=self._work, name=f"{self._name}-{number}",
                                          daemon=True)
                self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                result = job.call()
            except BaseException as exc:  # handed to whoever waits on the future
                job.future.set_exception(exc)
            else:
                job.future.set_result(result)
