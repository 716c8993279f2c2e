"""Sending queued signals, in order, within the broker's rate limit, from every process.

Each bridge process runs one :class:`Dispatcher`: a small pool that executes signals, and a
background loop that

* claims the head of each account's queue together with a rate-limit token (exits before
  entries, then arrival order), so no more than ``KOTAK_ORDER_RATE`` order requests leave per
  rolling second across all processes; every account's head in one transaction, a plain
  signal's orders recorded with its claim (:mod:`bridge.journal.heads`);
* expires queued signals past their validity, and takes over signals claimed by a process
  that died: never sent (no order of theirs ever marked ``sending``), they are queued again
  and their recorded orders sent as recorded, or expired past their validity; half sent,
  their orders are settled from the order book, never re-sent;
* keeps this process's heartbeat, and follows open orders (:class:`~bridge.orders.tracking.
  Tracker`).

An account whose previous request from this process still waits for Kotak's answer is not
claimed from: its next signal would only wait for its turn on a sending thread. Any answer
wakes the loop. A signal the loop claimed is not followed by its sending thread (nobody waits
on its answer): once sent, its open orders are handed to the tracker, which follows each
account's orders together, so the threads go on sending.

A request whose signal is at the head runs it on the pool at once and waits for it within
its time budget (:meth:`Dispatcher.try_inline`); otherwise it is answered "queued".
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import timedelta

from bridge.clock import Clock
from bridge.config import Settings
from bridge.journal.journal import Journal
from bridge.journal.rows import Claim, ErrorInfo, OrderState, SignalRow, SignalStatus, TakeOver
from bridge.orders.barrier import Arrival
from bridge.orders.service import OrderService
from bridge.orders.tracking import FOLLOW_EVERY_S, Tracker
from bridge.orders.workers import WorkerPool

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 2.0
ALIVE_WITHIN = timedelta(seconds=15)
MAINTAIN_EVERY = 3.0
TRACK_EVERY = 1.0
#: how soon an account whose request from another process awaits its answer is looked at again
ELSEWHERE_LOOK_S = 0.02


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Dispatcher:
    def __init__(self, journal: Journal, service: OrderService, tracker: Tracker,
                 settings: Settings, clock: Clock, *, workers: int = 8) -> None:
        self.journal = journal
        self.service = service
        self.tracker = tracker
        self.settings = settings
        self.clock = clock
        self.process_id = process_id()
        self._workers = workers
        self._pool: WorkerPool | None = None
        self._inflight = 0
        self._guard = threading.Lock()
        #: a process silent this long is dead; its claims are taken over
        self.alive_within = ALIVE_WITHIN
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._due: dict[str, float] = {}
        #: accounts out of rate-limit tokens, and when their next one frees (monotonic)
        self._not_before: dict[str, float] = {}
        self._running: set[str] = set()  # background jobs (following, sweeping) under way
        #: whether the last pass left queued signals of accounts waiting for an answer
        self._held_back = False
        #: whether the last pass left queued signals for want of a free sending thread
        self._short_of_room = False

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._pool = WorkerPool(self._workers, "bridge-order")
        self.journal.turns.on_answer = self._answered
        self.journal.processes.heartbeat(self.process_id)
        self._thread = threading.Thread(target=self._loop, name="bridge-dispatcher",
                                        daemon=True)
        self._thread.start()
        log.info("dispatcher %s started", self.process_id)

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown()
        self.journal.processes.forget_process(self.process_id)

    def wake(self) -> None:
        self._wake.set()

    def _answered(self) -> None:
        """An answer frees its account: wake the loop if it left an account for that."""
        if self._held_back:
            self._wake.set()

    # --- sending --------------------------------------------------------------------------

    def claimant(self) -> str | None:
        """This process's id when it can start a signal now, else ``None``."""
        if self._pool is None or not self._has_capacity():
            return None
        return self.process_id

    def free_slots(self) -> int:
        """How many more signals this process could start sending now."""
        if self._pool is None:
            return 0
        with self._guard:
            return max(self._workers - self._inflight, 0)

    def run(self, claim: Claim, follow_until: float,
            sent: Arrival | None = None) -> Future[None]:
        """Send a signal claimed on the request's path; ``sent``: a fan-out copy's part in
        holding its follow-up until every copy has been sent."""
        return self._submit(claim, follow_until, sent)

    def _submit(self, claim: Claim, follow_until: float,
                sent: Arrival | None = None) -> Future[None]:
        assert self._pool is not None
        with self._guard:
            self._inflight += 1
        future: Future[None] = self._pool.submit(lambda: self._run(claim, follow_until, sent))
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Future[None]) -> None:
        with self._guard:
            self._inflight -= 1
        # A freed thread matters only to signals left queued for want of one; a signal's
        # end means nothing else to the queue (its answer already woke what waited for it),
        # and a pass per signal cost a journal read per signal.
        if self._short_of_room:
            self._wake.set()

    def _has_capacity(self) -> bool:
        with self._guard:
            return self._inflight < self._workers

    def _run(self, claim: Claim, follow_until: float, sent: Arrival | None = None) -> None:
        try:
            orders = self.service.execute(claim, follow_until, sent)
        except Exception:
            log.exception("signal %s failed unexpectedly; settling what was sent", claim.row.id)
            self._salvage(claim.row, "an internal error stopped the signal")
            return
        finally:
            if sent is not None:
                sent.arrive()  # however it ended, the other copies wait no longer for it
        self.tracker.hand_over(orders)

    def _salvage(self, row: SignalRow, why: str) -> None:
        """Make a half-done signal safe: unsent orders failed, sent ones settled by tag."""
        orders = self.journal.orders.orders_of(row.id)
        for order in orders:
            if order.status is OrderState.CREATED:
                self.journal.orders.set_order(order.id, OrderState.FAILED, error_code="not_sent",
                                              reason=f"never sent: {why}", detail="never sent")
            elif order.status is OrderState.SENDING and self.journal.orders.set_order(
                    order.id, OrderState.UNKNOWN, error_code="outcome_unknown",
                    reason=f"{why} while sending; settling from the order book",
                    detail="settling from the order book"):
                self.service.tell_unknown(order, f"{why} while sending")
        if orders:
            self.service.settle(row.id)
            if row.signal is not None and row.signal.legs:
                self.service.legs.check(row.id, self.service)
        else:
            self.journal.signals.set_signal_status(row.id, SignalStatus.FAILED, error=ErrorInfo(
                "internal_error", f"{why}; nothing was sent", {}))
        self.service.report.settled(row.id)

    # --- the background loop --------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:
                log.exception("dispatcher loop error (it carries on)")
            soonest = min(self._not_before.values(), default=time.monotonic() + 0.2)
            self._wake.wait(min(max(soonest - time.monotonic(), 0.005), 0.2))
            self._wake.clear()

    def _tick(self) -> None:
        if self._is_due("heartbeat", HEARTBEAT_EVERY):
            self.journal.processes.heartbeat(self.process_id)
        if self._is_due("maintain", MAINTAIN_EVERY):
            self.maintain()
        self._dispatch()
        if self._is_due("follow", FOLLOW_EVERY_S) and self.tracker.has_handed():
            self._in_background("follow", self.tracker.follow_handed)
        if self._is_due("track", TRACK_EVERY):
            self._in_background("track", self.tracker.sweep_all)

    def _in_background(self, name: str, job: Callable[[], None]) -> None:
        """Run ``job`` on the pool, so the loop goes on claiming meanwhile (following a
        hundred accounts' orders takes as many calls to Kotak); one ``name`` at a time."""
        if self._pool is None:
            return
        with self._guard:
            if name in self._running:
                return
            self._running.add(name)

        def run() -> None:
            try:
                job()
            except Exception:
                log.exception("%s failed (it runs again shortly)", name)
            finally:
                with self._guard:
                    self._running.discard(name)

        self._pool.submit(run)

    def _dispatch(self) -> None:
        """Claim what each account may send now. An account out of rate-limit tokens is
        skipped until its next token frees, never waited for: the others go meanwhile. An
        account whose previous request still waits for Kotak's answer is skipped too: this
        process's answers wake the loop, another process's are looked for shortly."""
        now = time.monotonic()
        queued = self.journal.queue.queued_accounts()
        if not queued:
            self._held_back = self._short_of_room = False
            return
        mine = self.journal.turns.busy_accounts()
        elsewhere = self.journal.queue.accounts_in_flight() - mine
        held_back = short_of_room = False
        wanted: dict[str, int] = {}
        room = self.free_slots()
        for account in queued:
            if account in mine:
                held_back = True
                continue
            if account in elsewhere:
                self._not_before[account] = now + ELSEWHERE_LOOK_S
                continue
            if self._not_before.get(account, 0.0) > now:
                continue
            if len(wanted) >= room:
                short_of_room = True
                continue
            wanted[account] = self.service.accounts.rate(account)
        # Every account's head in one transaction, its orders recorded with the claim.
        claims, waits = self.journal.queue.take_heads(wanted, self.process_id,
                                                      self.service.claim_plan)
        for claim in claims:
            self._submit(claim, time.monotonic())
        for account, wait in waits.items():
            self._not_before[account] = time.monotonic() + wait
        self._held_back = held_back
        self._short_of_room = short_of_room
        self._not_before = {account: moment for account, moment in self._not_before.items()
                            if moment > now}

    def maintain(self) -> None:
        """Expire stale queued signals, take over claims of dead processes, prune."""
        for signal_id in self.journal.queue.expire_queued():
            log.warning("signal %d expired before it could be sent (SIGNAL_TTL_S); nothing "
                        "was placed", signal_id)
            self.service.report.settled(signal_id)
        live = self.journal.processes.live_processes(self.alive_within) | {self.process_id}
        for row in self.journal.queue.orphaned_claims(live, self.alive_within):
            self.recover(row, live)
        self.journal.history.prune()

    def recover(self, row: SignalRow, live: set[str]) -> None:
        """Take over a signal whose dispatching process (not in ``live``) died.

        Nothing sent yet (its orders, if any, never marked ``sending``): it goes again while
        valid, else expires. Something maybe sent: its orders are settled from the order
        book by their tags, never re-sent.
        """
        outcome = self.journal.queue.take_over(row.id, live)
        if outcome is TakeOver.HALF_SENT:
            log.warning("signal %d: its process died while sending; settling its orders from "
                        "the order book", row.id)
            self._salvage(row, "the sending process stopped")
        elif outcome is TakeOver.QUEUED:
            log.warning("signal %d: its process died before sending; queued again", row.id)
            self._wake.set()
        elif outcome is TakeOver.EXPIRED:
            log.warning("signal %d: its process died before sending and it is past its "
                        "validity; expired, nothing placed", row.id)
            self.service.report.settled(row.id)

    def _is_due(self, name: str, every: float) -> bool:
        now = time.monotonic()
        if now >= self._due.get(name, 0.0):
            self._due[name] = now + every
            return True
        return False
