"""Following orders after the caller has been answered.

Every open order of ours (accepted, or sent without an answer) is compared with Kotak's order
book, found by order number or by our tag, until it is final. An order whose request got no
answer and that is still absent from the book a minute after sending never arrived: it is
marked ``not_placed``, and since the book proves nothing reached Kotak its signal is queued
again while still within its validity window (the same orders, sent again under new tags),
else expired. Nothing is ever re-sent on a guess. One process at a time sweeps an account.

Orders a sender stopped following before they were final (a queued signal's, sent by the
dispatcher with nobody waiting on the answer; a signal's whose answer budget ran out) are
handed over (:meth:`Tracker.hand_over`) and looked at every :data:`FOLLOW_EVERY_S` for
:data:`HANDED_FOR_S`, all of them read from the journal in one query and each account's
asked of Kotak together: no sending thread is held waiting for an order to fill, and an
account with many orders in flight costs one book read, not one history read per order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy import Engine

from bridge.clock import Clock
from bridge.domain import BrokerOrder, OrderStatus
from bridge.journal.journal import Journal
from bridge.journal.locks import LockTimeout, try_lock
from bridge.journal.rows import OrderRow, OrderState, SignalStatus
from bridge.kotak.client import KotakClient
from bridge.kotak.errors import BrokerUnavailable, KotakError
from bridge.orders.service import BOOK_WAIT_S, OrderService, new_tag, order_state

log = logging.getLogger(__name__)

#: up to this many open orders are looked up one by one rather than through the whole book
FEW = 5
#: at most this many are looked up one by one while the book does not answer
MANY = 50
#: how often orders handed over by their senders are looked at, and for how long
FOLLOW_EVERY_S = 0.2
HANDED_FOR_S = 5.0


class Tracker:
    def __init__(self, journal: Journal, service: OrderService,
                 brokers: Mapping[str, KotakClient], clock: Clock, engine: Engine, *,
                 unknown_deadline: timedelta = timedelta(seconds=60),
                 sending_grace: timedelta = timedelta(seconds=30),
                 settle_after: timedelta = timedelta(seconds=3)) -> None:
        self.journal = journal
        self.service = service
        self.brokers = brokers
        self.clock = clock
        self._engine = engine
        self.unknown_deadline = unknown_deadline
        self.sending_grace = sending_grace
        self.settle_after = settle_after
        self._complained: dict[str, float] = {}
        self._guard = threading.Lock()
        #: order id -> (account, when it was handed over, monotonic)
        self._handed: dict[int, tuple[str, float]] = {}

    def hand_over(self, orders: list[OrderRow]) -> None:
        """Follow these orders from now on (their sender stopped following them before
        they were final): see :meth:`follow_handed`."""
        now = time.monotonic()
        with self._guard:
            for order in orders:
                if not order.status.final and order.id:
                    self._handed[order.id] = (order.account, now)

    def has_handed(self) -> bool:
        with self._guard:
            return bool(self._handed)

    def follow_handed(self) -> None:
        """One look at the orders handed over in the last :data:`HANDED_FOR_S`: read from the
        journal in one query, each account's asked of Kotak together (its orders' reports
        when few, else its book), what changed recorded. Final ones are dropped; older ones
        are left to the regular sweep.

        No lock is taken: like a sender following its own orders, this only records what
        Kotak said, and an order's state never moves back whoever records it.
        """
        cutoff = time.monotonic() - HANDED_FOR_S
        with self._guard:
            self._handed = {order_id: entry for order_id, entry in self._handed.items()
                            if entry[1] > cutoff}
            wanted = list(self._handed)
        if not wanted:
            return
        current = self.journal.orders.orders_by_ids(wanted)
        done = [order_id for order_id in wanted
                if order_id not in current or current[order_id].status.final]
        by_account: dict[str, list[OrderRow]] = {}
        for order in current.values():
            if not order.status.final and order.broker_order_id:
                by_account.setdefault(order.account, []).append(order)
        reported: list[tuple[OrderRow, BrokerOrder]] = []
        for account, orders in by_account.items():
            if account not in self.brokers:
                continue
            try:
                found = self._rows(account, orders)
            except KotakError as exc:
                log.info("following %d orders of account %s: %s", len(orders), account,
                         exc.message)
                continue
            by_id = {row.order_id: row for row in found}
            reported += [(order, by_id[order.broker_order_id or ""]) for order in orders
                         if (order.broker_order_id or "") in by_id]
        # What every account said, recorded in one transaction.
        self.service.apply_many(reported)
        done += [order.id for order, row in reported if order_state(row.status).final]
        with self._guard:
            for order_id in done:
                self._handed.pop(order_id, None)

    def _rows(self, account: str, working: list[OrderRow]) -> list[BrokerOrder]:
        """Kotak's rows for these orders: each one's report when few, else the whole book
        (one call, but it grows all day). A book that does not answer in time (it hangs for
        up to a minute after a burst of orders, Kotak-neo-api-v2 #68) gives way to the
        reports of the orders Kotak numbered; the others wait for the next sweep."""
        broker = self.brokers[account]
        known = [order for order in working if order.broker_order_id]
        if len(known) == len(working) and len(known) <= FEW:
            return self._reports(broker, known)
        try:
            return broker.order_book(deadline=time.monotonic() + BOOK_WAIT_S)
        except BrokerUnavailable as exc:
            log.info("order book of account %s unreadable (%s); asking for %d orders one by "
                     "one", account, exc.message, min(len(known), MANY))
            return self._reports(broker, known[:MANY])

    @staticmethod
    def _reports(broker: KotakClient, orders: list[OrderRow]) -> list[BrokerOrder]:
        return [found for order in orders
                if (found := broker.order(order.broker_order_id or "")) is not None]

    def _retry(self, signal_id: int) -> None:
        status = self.journal.queue.retry_never_arrived(signal_id, new_tag)
        if status is SignalStatus.QUEUED:
            log.warning("signal %d: its order never reached Kotak; queued again to be sent "
                        "under a new tag", signal_id)
        elif status is SignalStatus.EXPIRED:
            log.warning("signal %d: its order never reached Kotak and it is past its validity; "
                        "expired, nothing placed", signal_id)

    def sweep_all(self) -> None:
        """Sweep every account with an order its sender no longer follows. Only those are
        locked and read: while a burst to 200 accounts is being sent, every order is younger
        than :attr:`settle_after` and the sweep costs one query, not two per account."""
        due = self.clock.now() - self.settle_after
        for account in self.journal.orders.accounts_with_working_orders(due):
            self.sweep_locked(account)

    def sweep_locked(self, account: str) -> None:
        """Sweep ``account`` unless another process is sweeping it right now."""
        if account not in self.brokers:
            return
        try:
            with try_lock(self._engine, f"tracker:{account}"):
                self.sweep(account)
        except LockTimeout:
            return  # another process is sweeping this account

    def sweep(self, account: str) -> None:
        now = self.clock.now()
        # An order its sender is still following (just sent) is left to the sender, and
        # one handed over by its sender is being looked at by follow_handed.
        with self._guard:
            handed = set(self._handed)
        working = [order for order in self.journal.orders.working_orders(account)
                   if now - (order.sent_at or order.updated_at) > self.settle_after
                   and order.id not in handed]
        if not working:
            return
        try:
            book = self._rows(account, working)
        except KotakError as exc:
            if time.monotonic() - self._complained.get(account, 0.0) > 60:
                log.warning("cannot follow %d open orders of account %s: %s", len(working),
                            account, exc.message)
                self._complained[account] = time.monotonic()
            return
        by_id = {row.order_id: row for row in book}
        by_tag = {row.tag: row for row in book if row.tag}
        for order in working:
            found = by_id.get(order.broker_order_id or "") or by_tag.get(order.tag)
            if found is not None:
                # A rejection tells of itself; any other state proves the order arrived.
                if (self.service.apply(order, found) and order.status is OrderState.UNKNOWN
                        and found.status is not OrderStatus.REJECTED):
                    self.service.tell_settled(order, f"it reached Kotak as order "
                                                     f"{found.order_id} ({found.status.value})")
            elif order.status in (OrderState.UNKNOWN, OrderState.SENDING):
                age = now - (order.sent_at or order.updated_at)
                if age > self.unknown_deadline:
                    if self.journal.orders.set_order(
                            order.id, OrderState.NOT_PLACED, error_code="not_placed",
                            reason=f"not in Kotak's order book {int(age.total_seconds())} s "
                                   "after sending: the request never arrived; nothing was "
                                   "placed", detail="settled from the order book: never arrived"
                    ) and order.status is OrderState.UNKNOWN:
                        self.service.tell_settled(order, "it never reached Kotak, so nothing "
                                                         "was placed; the signal goes again "
                                                         "while still valid, else expires")
                    if order.signal_id is not None:
                        self._retry(order.signal_id)
                        # Only now: before the retry the signal looked failed for a moment.
                        self.service.report.settled(order.signal_id)
                elif order.status is OrderState.SENDING and age > self.sending_grace:
                    why = "the sending process stopped without an answer"
                    if self.journal.orders.set_order(
                            order.id, OrderState.UNKNOWN, error_code="outcome_unknown",
                            reason=why,
                            detail="sending process gone; settling from the order book"):
                        self.service.tell_unknown(order, why)
            elif order.status is OrderState.CREATED and now - order.created_at > timedelta(
                    minutes=2):
                self._never_sent(order)

    def _never_sent(self, order: OrderRow) -> None:
        """An order recorded long ago and never marked ``sending``: nothing of it left.

        While its signal is still being dispatched it is not the tracker's: a live sender
        sends it, and a dead one's signal is taken over by the dispatcher, sent again or
        expired (:meth:`~bridge.orders.dispatch.Dispatcher.recover`). Failing it here would
        leave that signal ``failed: never sent`` though it was accepted and still valid.
        Otherwise (its signal settled, or a square-off close) it is failed.
        """
        if order.signal_id is not None:
            signal = self.journal.signals.signal(order.signal_id)
            if signal is not None and signal.status.pending:
                return
        self.journal.orders.set_order(
            order.id, OrderState.FAILED, error_code="not_sent",
            reason="never sent: the process stopped first", detail="never sent")
        self.service.report.settled(order.signal_id)
