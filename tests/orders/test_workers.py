"""The dispatcher's sending threads: up before the first fan-out needs them, and never in
the way of a signal that arrives while they are still starting."""

from __future__ import annotations

import threading
import time

import pytest

from bridge.orders.workers import WorkerPool


def test_threads_start_in_the_background_and_all_run_at_once() -> None:
    pool = WorkerPool(60, "test-order")
    try:
        deadline = time.monotonic() + 30
        while pool.started < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.started == 60
        together = threading.Barrier(60, timeout=30)
        futures = [pool.submit(together.wait) for _ in range(60)]
        assert sorted(f.result(timeout=30) for f in futures) == list(range(60))
    finally:
        pool.shutdown()


def test_work_sent_at_once_is_done_by_the_threads_already_up() -> None:
    """The first signal after a start is not held back until hundreds of threads exist."""
    pool = WorkerPool(200, "test-order")
    try:
        assert pool.submit(lambda: "sent").result(timeout=10) == "sent"
    finally:
        pool.shutdown()


def test_a_failing_job_hands_its_error_to_its_waiter_and_the_pool_carries_on() -> None:
    pool = WorkerPool(2, "test-order")
    try:
        def fail() -> None:
            raise ValueError("broken")

        with pytest.raises(ValueError, match="broken"):
            pool.submit(fail).result(timeout=10)
        assert pool.submit(lambda: 42).result(timeout=10) == 42
    finally:
        pool.shutdown()


def test_shutdown_finishes_queued_work_then_refuses_more() -> None:
    pool = WorkerPool(1, "test-order")
    done: list[int] = []
    for n in range(5):
        pool.submit(lambda n=n: done.append(n))
    pool.shutdown()
    assert done == [0, 1, 2, 3, 4]
    assert all(not t.is_alive() for t in threading.enumerate() if t.name.startswith("test-order"))
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)
