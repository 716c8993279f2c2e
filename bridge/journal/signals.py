"""The signal journal: every signal, every order sent for it, and every change to either.

A signal is written before the caller is answered, and its orders before they are sent
(state ``sending`` just before the HTTP call), so a crash at any point leaves a record that
recovery can finish: queued signals are sent or expired, ``sending`` orders become
``unknown`` and are settled from the broker's order book by their tag, never sent again.

Shared across processes through the database:

* idempotency keys (:meth:`Journal.admit_many`): an ``alert_id`` forever, an identical body
  for the dedup window; the first writer of a key wins atomically;
* the dispatch queue per account: ordered by priority (exits first) then arrival, claimed
  with the broker rate-limit token in one exclusive transaction, so claim order is send order
  and no more than ``rate`` order requests leave in any rolling second (:meth:`take_head`);
* process heartbeats, so a claim held by a dead process is taken over.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.exc import IntegrityError

from bridge.clock import Clock
from bridge.domain import Signal
from bridge.journal import statements as st
from bridge.journal.entries import KEY_PREFIX, EntryBlock, blocked_day, closed_key, decoded
from bridge.journal.tables import (
    UtcDateTime,
    auth_failures,
    bridge_meta,
    broker_calls,
    events,
    orders,
    processes,
    signal_keys,
    signals,
)
from bridge.journal.txn import exclusive, exclusive_many, writing

log = logging.getLogger(__name__)

#: a rolling second, padded so requests stamped just over a second apart here cannot land
#: inside one second at the broker
RATE_WINDOW_S = 1.05
#: a token granted but never used (its sender died) stops counting after this long
UNSENT_TOKEN_S = 5.0
#: how often the next request in line looks at other processes' answers; requests further
#: back look less often (this much per request ahead, up to TURN_POLL_MAX_S)
TURN_POLL_S = 0.005
TURN_POLL_MAX_S = 0.05
#: a request behind only this process's requests is woken by their answers; this is a backstop
LOCAL_TURN_WAIT_S = 0.25


class SignalStatus(StrEnum):
    RECEIVED = "received"  # written, not yet checked for duplicates
    QUEUED = "queued"
    DISPATCHING = "dispatching"
    PLACED = "placed"
    #: a multi-order signal (legs, or slices) of which some orders stand at Kotak and at
    #: least one was refused or never sent: what stands is named in the error
    PARTIAL = "partial"
    NOOP = "noop"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    FAILED = "failed"
    UNKNOWN = "unknown"
    EXPIRED = "expired"

    @property
    def pending(self) -> bool:
        return self in (SignalStatus.RECEIVED, SignalStatus.QUEUED, SignalStatus.DISPATCHING)


class OrderState(StrEnum):
    CREATED = "created"  # planned, not sent
    SENDING = "sending"  # the request is (or was) on its way
    PENDING = "pending"  # accepted by Kotak, not yet open at the exchange
    OPEN = "open"
    TRIGGER_PENDING = "trigger_pending"
    COMPLETE = "complete"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # sent, no answer: settled from the order book by tag
    NOT_PLACED = "not_placed"  # an unknown that the order book proved never arrived
    FAILED = "failed"  # nothing reached Kotak

    @property
    def final(self) -> bool:
        return self in FINAL_ORDER_STATES

    @property
    def accepted(self) -> bool:
        return self in (OrderState.PENDING, OrderState.OPEN, OrderState.TRIGGER_PENDING,
                        OrderState.COMPLETE, OrderState.CANCELLED)


#: how far along each state is; an order's state never moves back (two threads may learn of
#: the same order in either order: the sender's "accepted" and the tracker's "complete")
_PROGRESS = {"created": 0, "sending": 1, "unknown": 2, "pending": 3, "open": 4,
             "trigger_pending": 4, "complete": 5, "rejected": 5, "cancelled": 5,
             "not_placed": 5, "failed": 5}
FINAL_ORDER_STATES = frozenset({OrderState.COMPLETE, OrderState.REJECTED, OrderState.CANCELLED,
                                OrderState.NOT_PLACED, OrderState.FAILED})
WORKING_ORDER_STATES = frozenset(set(OrderState) - FINAL_ORDER_STATES)
#: an order in these states never reached Kotak: never sent (``created``), or sent in an
#: earlier attempt and proven by the order book never to have arrived
_NEVER_ARRIVED = frozenset({OrderState.CREATED.value, OrderState.NOT_PLACED.value})


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    message: str
    details: dict[str, Any]


@dataclass(frozen=True)
class SignalRow:
    id: int
    alert_id: str
    source: str
    account: str
    received_at: datetime
    status: SignalStatus
    priority: int
    signal: Signal | None
    error: ErrorInfo | None
    duplicate_of: int | None
    expires_at: datetime | None
    strategy: str
    symbol: str
    instrument: str
    raw_body: str
    remote_addr: str


@dataclass(frozen=True)
class OrderRow:
    id: int
    signal_id: int | None
    account: str
    tag: str
    strategy: str
    exchange: str
    trading_symbol: str
    side: str
    quantity: int
    product: str
    order_type: str
    price: str | None
    trigger_price: str | None
    is_exit: bool
    status: OrderState
    broker_order_id: str | None
    broker_status: str | None
    filled_quantity: int
    average_price: str | None
    error_code: str | None
    reason: str | None
    created_at: datetime
    sent_at: datetime | None
    updated_at: datetime

    @property
    def signed_remaining(self) -> int:
        """Units still to trade, signed by side (buy positive)."""
        remaining = max(self.quantity - self.filled_quantity, 0)
        return remaining if self.side == "BUY" else -remaining


@dataclass(frozen=True)
class OrderPlan:
    """An order to record before it is sent."""

    exchange: str
    trading_symbol: str
    side: str
    quantity: int
    product: str
    order_type: str
    price: str | None
    trigger_price: str | None
    is_exit: bool
    tag: str


@dataclass(frozen=True)
class EntryQuery:
    """What the entry rules count: the account's day, a strategy, an instrument."""

    since: datetime
    strategy: str
    exchange: str
    trading_symbol: str


@dataclass(frozen=True)
class EntryCounts:
    """Entries sent since the day began (by the account, by the strategy), the strategy's
    entry quantity in the instrument, and whether the kill switch is on."""

    account_entries: int
    strategy_entries: int
    strategy_quantity: int
    kill_switch: bool
    #: the exchange was squared off today: no new intraday entries on it until tomorrow
    squared_off: bool = False


#: the orders a claimed signal will send, given the entry counts; ``None``: decide later
Planner = Callable[[EntryCounts], list[OrderPlan] | None]


@dataclass(frozen=True)
class Claim:
    """A signal claimed for sending, with the rate-limit token for its first order and,
    when claimed at admission, what was decided in the same transaction."""

    row: SignalRow
    token: int
    counts: EntryCounts | None = None
    #: orders recorded at admission (a plain signal the rules let through), the first
    #: already marked ``sending`` when ``first_sending``; or, claimed from the queue, those a
    #: dead process recorded and never sent (:meth:`Journal.take_over`)
    orders: tuple[OrderRow, ...] = ()
    first_sending: bool = False


@dataclass(frozen=True)
class Admission:
    """What taking a signal in decided: its id, whether it repeats an earlier one, and
    whether it may be sent at once (it heads its queue and a rate-limit token was free)."""

    signal_id: int
    duplicate_of: int | None = None
    claim: Claim | None = None


class TakeOver(StrEnum):
    """What taking over a dead process's claim did (:meth:`Journal.take_over`)."""

    QUEUED = "queued"  # nothing had been sent: it goes again
    EXPIRED = "expired"  # nothing had been sent, and its validity has passed
    HALF_SENT = "half_sent"  # an order went out: its orders are settled, never re-sent
    GONE = "gone"  # no longer a dead process's claim: another process took it over


@dataclass(frozen=True)
class EventRow:
    at: datetime
    status: str
    detail: str
    order_id: int | None


class Journal:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self._clock = clock
        self._turns = threading.Condition()
        self._mine: set[int] = set()  # rate-limit tokens granted here, not yet answered

    # --- signals ----------------------------------------------------------------------------

    def admit_many(self, requests: list[AdmitRequest]) -> list[Admission]:
        """Write valid signals and decide their fates, in one exclusive transaction (one
        commit for a signal's copies to several accounts, each account's queue lock held
        until it ends).

        Each signal is journaled; if its ``key`` is held by an earlier signal (an ``alert_id``
        forever, a body hash until ``key_expires``) it is recorded as that signal's
        duplicate; otherwise it is queued, and with ``claimant`` set it is also claimed for
        sending at once when nothing is queued ahead of it and a broker rate-limit token is
        free; a claimed signal also gets the counts of ``entry``, and the orders ``plan``
        makes of them are recorded at once (the first marked ``sending`` when it is its
        turn), saving its sender a transaction.
        """
        now = self._clock.now()
        dialect = self.engine.dialect.name
        granted: list[int] = []
        with exclusive_many(self.engine, [f"queue:{r.account}" for r in requests]) as conn:
            admissions = [_admit_in(conn, dialect, now, request, granted)
                          for request in requests]
        for token in granted:
            self._granted(token)
        return admissions

    def add_signal(self, *, alert_id: str, source: str, account: str, remote_addr: str,
                   raw_body: str, signal: Signal | None, status: SignalStatus, priority: int,
                   expires_at: datetime | None, error: ErrorInfo | None = None,
                   symbol: str = "", instrument: str = "",
                   received_at: datetime | None = None) -> int:
        now = self._clock.now()
        values = {
            "alert_id": storable(alert_id), "source": source, "account": account,
            "received_at": received_at or now, "remote_addr": storable(remote_addr[:64]),
            "raw_body": storable(raw_body),
            "parsed": json.dumps(signal.to_dict()) if signal else None,
            "strategy": storable(signal.strategy if signal else ""),
            "symbol": storable((signal.symbol if signal else symbol)[:96]),
            "instrument": instrument, "side": signal.side.value if signal else "",
            "status": status.value,
            "priority": priority, "expires_at": expires_at, "updated_at": now,
            **_error_columns(error),
        }
        with writing(self.engine) as conn:
            signal_id = _new_id(conn.execute(st.INSERT_SIGNAL, values))
            conn.execute(insert(events).values(
                signal_id=signal_id, at=now, status=status.value,
                detail=storable(error.message) if error else "received"))
        return signal_id

    def set_signal_status(self, signal_id: int, status: SignalStatus, *,
                          error: ErrorInfo | None = None, duplicate_of: int | None = None,
                          detail: str = "", only_from: Iterable[SignalStatus] = ()) -> bool:
        """Move a signal to ``status`` (only from ``only_from`` when given); record an event."""
        now = self._clock.now()
        condition = [signals.c.id == signal_id]
        allowed = [s.value for s in only_from]
        if allowed:
            condition.append(signals.c.status.in_(allowed))
        values: dict[str, Any] = {"status": status.value, "updated_at": now}
        if error is not None:
            values.update(_error_columns(error))
        if duplicate_of is not None:
            values["duplicate_of"] = duplicate_of
        if not status.pending:
            values.update(claimed_by=None, claimed_at=None)
        with writing(self.engine) as conn:
            changed = conn.execute(update(signals).where(*condition).values(**values)).rowcount
            if changed:
                conn.execute(insert(events).values(
                    signal_id=signal_id, at=now, status=status.value,
                    detail=storable(detail or (error.message if error else ""))))
        return bool(changed)

    def signal(self, signal_id: int) -> SignalRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(st.SIGNAL_BY_ID, {"where_id": signal_id}).first()
        return _signal_row(row) if row is not None else None

    def signal_with_orders(self, signal_id: int) -> tuple[SignalRow | None, list[OrderRow]]:
        """A signal and its orders, on one connection."""
        with self.engine.connect() as conn:
            row = conn.execute(st.SIGNAL_BY_ID, {"where_id": signal_id}).first()
            found = conn.execute(st.ORDERS_OF, {"where_signal": signal_id}).all()
        return (_signal_row(row) if row is not None else None,
                [_order_row(order) for order in found])

    def signals_with_orders(self, signal_ids: list[int]) -> dict[
            int, tuple[SignalRow, list[OrderRow]]]:
        """Several signals and their orders, in two queries (a fanned-out signal's copies)."""
        if not signal_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(signals).where(signals.c.id.in_(signal_ids))).all()
            found = orders_by_signal(conn, signal_ids)
        return {int(row.id): (_signal_row(row), found[int(row.id)]) for row in rows}

    def signals_by_alert_id(self, alert_id: str) -> list[SignalRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(signals).where(signals.c.alert_id == alert_id)
                                .order_by(signals.c.id)).all()
        return [_signal_row(row) for row in rows]

    def recent_signals(self, limit: int = 100) -> list[SignalRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(signals).order_by(signals.c.id.desc()).limit(limit)).all()
        return [_signal_row(row) for row in rows]

    # --- the queue ------------------------------------------------------------------------

    def take_head(self, account: str, process_id: str,
                  rate: int) -> tuple[Claim | None, float]:
        """Claim the account's next signal together with a broker rate-limit token.

        Returns the claim, or ``None`` and how long until a token frees (0 when the queue
        had nothing to give).
        """
        with exclusive(self.engine, f"queue:{account}") as conn:
            now = self._clock.now()
            head = conn.execute(
                select(signals).where(signals.c.account == account,
                                      signals.c.status == SignalStatus.QUEUED.value,
                                      or_(signals.c.expires_at.is_(None),
                                          signals.c.expires_at > now))
                .order_by(signals.c.priority, signals.c.id).limit(1)).first()
            if head is None:
                return None, 0.0
            token, wait = _take_token(conn, account, rate, self.engine.dialect.name)
            if token is None:
                return None, wait
            conn.execute(update(signals).where(signals.c.id == head.id).values(
                status=SignalStatus.DISPATCHING.value, claimed_by=process_id, claimed_at=now,
                updated_at=now))
            conn.execute(insert(events).values(signal_id=head.id, at=now,
                                               status=SignalStatus.DISPATCHING.value,
                                               detail="sending to Kotak"))
            # Orders a dead process recorded and never sent go as recorded (take_over).
            recorded = [_order_row(order) for order in conn.execute(
                st.ORDERS_OF, {"where_signal": head.id}).all()]
        self._granted(token)
        claimed = dataclasses.replace(_signal_row(head), status=SignalStatus.DISPATCHING)
        unsent = tuple(order for order in recorded if order.status is OrderState.CREATED)
        return Claim(claimed, token, orders=unsent), 0.0

    def take_token(self, account: str, rate: int) -> tuple[int | None, float]:
        """Take a broker rate-limit token: its id, or ``None`` and the seconds to wait."""
        with exclusive(self.engine, f"queue:{account}") as conn:
            token, wait = _take_token(conn, account, rate, self.engine.dialect.name)
        if token is not None:
            self._granted(token)
        return token, wait

    def start_sending(self, order: OrderRow, token: int,
                      patience: float = UNSENT_TOKEN_S) -> None:
        """Wait for this order's turn, then mark it ``sending`` (before the HTTP call).

        An account's requests go out one after another in the order their tokens were
        granted: this waits until every earlier request of the account has been answered
        (:meth:`finish_sending`) or given back, or, for a sender that died, ``patience``
        passes.
        """
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                ahead = _in_flight_before(conn, order.account, token, self.engine.dialect.name)
            if not ahead:
                break
            # Answers in this process wake the waiters at once; another process's answer is
            # seen by polling, most often by the request next in line.
            with self._turns:
                if self._mine.issuperset(ahead):
                    self._turns.wait(LOCAL_TURN_WAIT_S)
                elif not self._mine.isdisjoint(ahead) or len(ahead) == 1:
                    self._turns.wait(TURN_POLL_S)
                else:
                    self._turns.wait(min(TURN_POLL_S * len(ahead), TURN_POLL_MAX_S))
        now = self._clock.now()
        with writing(self.engine) as conn:
            conn.execute(st.UPDATE_CALL, {"where_id": token, "sent": True})
            conn.execute(st.UPDATE_ORDER, {"where_id": order.id,
                                           "status": OrderState.SENDING.value,
                                           "sent_at": now, "updated_at": now})
            conn.execute(st.INSERT_EVENT, {"signal_id": order.signal_id,
                                           "order_id": order.id, "at": now,
                                           "status": OrderState.SENDING.value,
                                           "detail": "sent to Kotak"})

    def finish_sending(self, token: int) -> None:
        """The request was answered (or failed): stamp its token and let the next one go.

        The stamp is taken when the answer is back, which is after the request reached
        Kotak; the next request starts after it. Spacing the one against the other keeps
        the window true at Kotak's door whatever the delays in between.
        """
        with writing(self.engine) as conn:
            _stamp_answer(conn, token, self.engine.dialect.name)
        self._answered(token)

    def release_token(self, token: int) -> None:
        """Give back a token whose request was never sent."""
        with writing(self.engine) as conn:
            conn.execute(delete(broker_calls).where(broker_calls.c.id == token,
                                                    broker_calls.c.sent.is_(False)))
        self._answered(token)

    def _granted(self, token: int | None) -> None:
        if token is not None:
            with self._turns:
                self._mine.add(token)

    def _answered(self, token: int) -> None:
        with self._turns:
            self._mine.discard(token)
            self._turns.notify_all()

    def queue_depth(self) -> tuple[int, datetime | None]:
        """Signals waiting to be sent, and when the oldest arrived."""
        with self.engine.connect() as conn:
            row = conn.execute(select(
                func.count(), func.min(signals.c.received_at, type_=UtcDateTime())).where(
                signals.c.status == SignalStatus.QUEUED.value)).one()
        return int(row[0] or 0), row[1]

    def queued_accounts(self) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(signals.c.account).distinct()
                                .where(signals.c.status == SignalStatus.QUEUED.value)).all()
        return [str(row.account) for row in rows]

    def expire_queued(self) -> list[int]:
        """Mark queued signals past their validity as expired, with any orders they recorded
        and never sent (a dead process's, see :meth:`take_over`); return their ids."""
        now = self._clock.now()
        with self.engine.connect() as conn:
            stale = [int(row.id) for row in conn.execute(
                select(signals.c.id).where(signals.c.status == SignalStatus.QUEUED.value,
                                           signals.c.expires_at.is_not(None),
                                           signals.c.expires_at <= now)).all()]
        expired = []
        for signal_id in stale:
            with writing(self.engine) as conn:
                if _expire_unsent(conn, signal_id, now, (
                        "not sent within its validity window (SIGNAL_TTL_S); nothing was "
                        "placed"), signals.c.status == SignalStatus.QUEUED.value):
                    expired.append(signal_id)
        return expired

    def orphaned_claims(self, live: set[str], grace: timedelta) -> list[SignalRow]:
        """Signals being dispatched by a process that is no longer alive."""
        cutoff = self._clock.now() - grace
        with self.engine.connect() as conn:
            rows = conn.execute(select(signals).where(
                signals.c.status == SignalStatus.DISPATCHING.value,
                signals.c.claimed_at < cutoff)).all()
        return [_signal_row(row) for row in rows if row.claimed_by not in live]

    def retry_never_arrived(self, signal_id: int) -> SignalStatus | None:
        """Queue a signal again when the order book proved none of its orders arrived.

        Only if every order is ``not_placed`` (or was never sent) and the signal is still
        within its validity window; past it, the signal is expired. Returns the new status.
        """
        now = self._clock.now()
        with exclusive(self.engine, f"retry:{signal_id}") as conn:
            row = conn.execute(select(signals).where(signals.c.id == signal_id)).first()
            states = {r.status for r in conn.execute(
                select(orders.c.status).where(orders.c.signal_id == signal_id)).all()}
            if (row is None or not states
                    or not states <= {OrderState.NOT_PLACED.value, OrderState.FAILED.value}
                    or OrderState.NOT_PLACED.value not in states
                    or row.status not in (SignalStatus.FAILED.value,
                                          SignalStatus.UNKNOWN.value)):
                return None
            if row.expires_at is not None and row.expires_at <= now:
                status, detail = SignalStatus.EXPIRED, (
                    "its order never reached Kotak and its validity window has passed; "
                    "nothing was placed")
            else:
                status, detail = SignalStatus.QUEUED, (
                    "its order never reached Kotak (checked in the order book): queued "
                    "again to be sent with a new tag")
            values: dict[str, Any] = {"status": status.value, "claimed_by": None,
                                      "claimed_at": None, "updated_at": now}
            if status is SignalStatus.EXPIRED:
                values.update(_error_columns(ErrorInfo("expired", detail, {})))
            else:
                values.update(error_code=None, error_message=None, error_details=None)
            conn.execute(update(signals).where(signals.c.id == signal_id).values(**values))
            conn.execute(insert(events).values(signal_id=signal_id, at=now,
                                               status=status.value, detail=detail))
        return status

    def take_over(self, signal_id: int, live: set[str]) -> TakeOver:
        """Take over a signal claimed by a process not in ``live``, in one transaction.

        An order is marked ``sending`` (committed) before its request leaves, so while every
        order of the signal is ``created`` (or ``not_placed``: an earlier attempt the order
        book proved never arrived) nothing of it reached Kotak. The signal is then queued
        again, its ``created`` orders kept to be sent as recorded when it is next claimed
        (:meth:`take_head`; their tags never reached Kotak, and other signals' sizing counts
        them already), or, past its validity, expired with them failed. Failing them while
        it is valid would leave an accepted signal ``failed: never sent``. Any other order
        went out (or was refused): :attr:`TakeOver.HALF_SENT`, for the caller to settle.
        """
        now = self._clock.now()
        with writing(self.engine) as conn:
            row = conn.execute(select(signals.c.status, signals.c.claimed_by,
                                      signals.c.expires_at)
                               .where(signals.c.id == signal_id)).first()
            if (row is None or row.status != SignalStatus.DISPATCHING.value
                    or row.claimed_by in live):
                return TakeOver.GONE
            states = set(conn.execute(select(orders.c.status)
                                      .where(orders.c.signal_id == signal_id)).scalars())
            if not states <= _NEVER_ARRIVED:
                return TakeOver.HALF_SENT
            # Only the claim looked at: another survivor may have taken it over meanwhile.
            claim = (signals.c.status == SignalStatus.DISPATCHING.value,
                     signals.c.claimed_by.is_not_distinct_from(row.claimed_by))
            if row.expires_at is not None and row.expires_at <= now:
                expired = _expire_unsent(conn, signal_id, now, (
                    "its process stopped before sending and its validity window has passed; "
                    "nothing was placed"), *claim)
                return TakeOver.EXPIRED if expired else TakeOver.GONE
            if not conn.execute(update(signals).where(signals.c.id == signal_id, *claim).values(
                    status=SignalStatus.QUEUED.value, claimed_by=None, claimed_at=None,
                    updated_at=now, error_code=None, error_message=None,
                    error_details=None)).rowcount:
                return TakeOver.GONE
            conn.execute(insert(events).values(
                signal_id=signal_id, at=now, status=SignalStatus.QUEUED.value,
                detail="its process stopped before sending, so nothing reached Kotak: queued "
                       "again" + (", its recorded orders to be sent as they are"
                                  if OrderState.CREATED.value in states else "")))
        return TakeOver.QUEUED

    # --- orders ---------------------------------------------------------------------------

    def add_orders(self, signal_id: int | None, account: str, strategy: str,
                   plans: list[OrderPlan],
                   send_first_with: int | None = None) -> tuple[list[OrderRow], bool]:
        """Record the orders a signal will send (``created``).

        With ``send_first_with`` (the first order's rate-limit token) and no earlier request
        of the account still waiting for its answer, the first order is recorded as
        ``sending`` straight away, saving a round trip on the common path; the second value
        returned says whether that happened (else :meth:`start_sending` must wait its turn).
        """
        with writing(self.engine) as conn:
            return _insert_orders(conn, self._clock.now(), signal_id, account, strategy, plans,
                                  send_first_with)

    def set_order(self, order_id: int, state: OrderState, *, detail: str = "",
                  answered: int | None = None, **fields: Any) -> bool:
        """Record an order's new state and whatever the broker said, and bring its signal's
        status along, in one transaction. Events only on change; returns whether it changed.

        ``answered``: the rate-limit token of the request whose answer this is, stamped in
        the same transaction (see :meth:`finish_sending`).
        """
        now = self._clock.now()
        fields = {key: storable(value) if isinstance(value, str) else value
                  for key, value in fields.items()}
        values: dict[str, Any] = {"status": state.value, "updated_at": now, **fields}
        if state.final:
            values["final_at"] = now
        try:
            with writing(self.engine) as conn:
                if answered is not None:
                    _stamp_answer(conn, answered, self.engine.dialect.name)
                return _set_order(conn, order_id, state, values, fields, detail, now)
        finally:
            if answered is not None:
                self._answered(answered)

    def settle(self, signal_id: int) -> SignalStatus | None:
        """Derive a signal's status from its orders and record it if it changed."""
        with writing(self.engine) as conn:
            return _settle(conn, signal_id, self._clock.now())

    def order(self, order_id: int) -> OrderRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(st.ORDER_BY_ID, {"where_id": order_id}).first()
        return _order_row(row) if row is not None else None

    def orders_of(self, signal_id: int) -> list[OrderRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(st.ORDERS_OF, {"where_signal": signal_id}).all()
        return [_order_row(row) for row in rows]

    def order_by_broker_id(self, account: str, broker_order_id: str) -> OrderRow | None:
        """The bridge's own order that Kotak numbered ``broker_order_id``, if it is one."""
        with self.engine.connect() as conn:
            row = conn.execute(select(orders).where(
                orders.c.account == account, orders.c.broker_order_id == broker_order_id)
                .order_by(orders.c.id.desc()).limit(1)).first()
        return _order_row(row) if row is not None else None

    def working_orders(self, account: str | None = None) -> list[OrderRow]:
        query = select(orders).where(orders.c.status.in_([s.value for s in
                                                          WORKING_ORDER_STATES]))
        if account is not None:
            query = query.where(orders.c.account == account)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(orders.c.id)).all()
        return [_order_row(row) for row in rows]

    def accounts_with_working_orders(self) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(orders.c.account).distinct().where(
                orders.c.status.in_([s.value for s in WORKING_ORDER_STATES]))).all()
        return [str(row.account) for row in rows]

    def entry_counts(self, account: str, entry: EntryQuery) -> EntryCounts:
        """What the entry rules need, in one query."""
        with self.engine.connect() as conn:
            return _entry_counts(conn, account, entry)

    def events_of(self, signal_id: int) -> list[EventRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(events).where(events.c.signal_id == signal_id)
                                .order_by(events.c.id)).all()
        return [EventRow(at=row.at, status=row.status, detail=row.detail,
                         order_id=row.order_id) for row in rows]

    # --- processes ------------------------------------------------------------------------

    def heartbeat(self, process_id: str) -> None:
        now = self._clock.now()
        with writing(self.engine) as conn:
            if not conn.execute(update(processes).where(processes.c.id == process_id)
                                .values(heartbeat_at=now)).rowcount:
                conn.execute(insert(processes).values(id=process_id, started_at=now,
                                                      heartbeat_at=now))

    def live_processes(self, within: timedelta) -> set[str]:
        cutoff = self._clock.now() - within
        with writing(self.engine) as conn:
            conn.execute(delete(processes).where(processes.c.heartbeat_at
                                                 < cutoff - timedelta(hours=1)))
            rows = conn.execute(select(processes.c.id)
                                .where(processes.c.heartbeat_at >= cutoff)).all()
        return {str(row.id) for row in rows}

    def forget_process(self, process_id: str) -> None:
        with writing(self.engine) as conn:
            conn.execute(delete(processes).where(processes.c.id == process_id))

    # --- inbound protection and the kill switch -------------------------------------------

    def auth_record(self, address: str) -> tuple[bool, datetime | None]:
        """Whether wrong secrets are on record for ``address``, and until when it is blocked."""
        now = self._clock.now()
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_failures.c.blocked_until)
                               .where(auth_failures.c.address == address)).first()
        if row is None:
            return False, None
        until = row.blocked_until
        return True, until if until is not None and until > now else None

    def note_auth_failure(self, address: str, limit: int, window: timedelta,
                          block: timedelta) -> datetime | None:
        """Count a failed secret; block the address once ``limit`` fail within ``window``."""
        now = self._clock.now()
        with exclusive(self.engine, f"auth:{address}") as conn:
            row = conn.execute(select(auth_failures)
                               .where(auth_failures.c.address == address)).first()
            if row is None or row.first_at < now - window:
                count, first = 1, now
            else:
                count, first = int(row._mapping["count"]) + 1, row.first_at
            blocked = now + block if count >= limit else None
            values = {"count": count, "first_at": first, "blocked_until": blocked}
            if row is None:
                conn.execute(insert(auth_failures).values(address=address, **values))
            else:
                conn.execute(update(auth_failures).where(auth_failures.c.address == address)
                             .values(**values))
        return blocked

    def clear_auth_failures(self, address: str) -> None:
        with writing(self.engine) as conn:
            conn.execute(delete(auth_failures).where(
                auth_failures.c.address == address, auth_failures.c.blocked_until.is_(None)))

    def claim_once(self, key: str, value: str) -> bool:
        """Record ``key`` unless it is recorded already: True for the one caller (of every
        thread and process) that recorded it, so a one-time action runs once."""
        try:
            with writing(self.engine) as conn:
                if conn.execute(select(bridge_meta.c.key)
                                .where(bridge_meta.c.key == key)).first() is not None:
                    return False
                conn.execute(insert(bridge_meta).values(key=key, value=value))
        except IntegrityError:
            return False
        return True

    def kill_switch(self) -> bool:
        with self.engine.connect() as conn:
            value = conn.execute(select(bridge_meta.c.value)
                                 .where(bridge_meta.c.key == "kill_switch")).scalar()
        return value == "on"

    def set_kill_switch(self, on: bool) -> None:
        with writing(self.engine) as conn:
            value = "on" if on else "off"
            if not conn.execute(update(bridge_meta).where(bridge_meta.c.key == "kill_switch")
                                .values(value=value)).rowcount:
                conn.execute(insert(bridge_meta).values(key="kill_switch", value=value))

    def close_entries(self, account: str, exchanges: Iterable[str], day: date, *,
                      why: str = "the scheduled square-off", by: str = "schedule") -> None:
        """Refuse new intraday entries on these exchanges for the rest of ``day`` (a
        square-off has begun); exits still go. ``why`` and ``by`` are shown to the trader."""
        now = self._clock.now()
        with writing(self.engine) as conn:
            for exchange in exchanges:
                key = closed_key(account, exchange)
                value = EntryBlock(account, exchange, day, why, by, now).encoded()
                if not conn.execute(update(bridge_meta).where(bridge_meta.c.key == key)
                                    .values(value=value)).rowcount:
                    conn.execute(insert(bridge_meta).values(key=key, value=value))

    def entry_blocks(self, day: date) -> list[EntryBlock]:
        """The stops on new intraday entries that hold on ``day``, by account and exchange."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(bridge_meta.c.key, bridge_meta.c.value).where(
                bridge_meta.c.key.startswith(KEY_PREFIX, autoescape=True))).all()
        found = [block for row in rows if (block := decoded(row.key, row.value))]
        return sorted((b for b in found if b.day == day), key=lambda b: (b.account, b.exchange))

    def allow_entries(self, day: date, *, account: str | None = None,
                      exchanges: Iterable[str] | None = None) -> list[EntryBlock]:
        """Lift the stops of ``day`` (of one account and some exchanges, or all); returns
        the stops lifted."""
        wanted = set(exchanges) if exchanges is not None else None
        lifted = [b for b in self.entry_blocks(day)
                  if (account is None or b.account == account)
                  and (wanted is None or b.exchange in wanted)]
        with writing(self.engine) as conn:
            for block in lifted:
                conn.execute(delete(bridge_meta).where(
                    bridge_meta.c.key == closed_key(block.account, block.exchange)))
        return lifted

    def busy_instruments(self, account: str) -> set[str]:
        """Instruments (``EXCH:SYMBOL``) of signals queued or being sent for ``account``."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(signals.c.instrument).distinct().where(
                signals.c.account == account,
                signals.c.status.in_([SignalStatus.QUEUED.value,
                                      SignalStatus.DISPATCHING.value]))).all()
        return {row.instrument for row in rows if row.instrument}

    def last_order_id(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(orders.c.id))).scalar() or 0)

    def signal_orders_after(self, account: str, order_id: int) -> set[str]:
        """``EXCH:SYMBOL:PRODUCT`` of orders that signals of ``account`` recorded after the
        order ``order_id`` (ids only grow, whatever the clock says)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(orders.c.exchange, orders.c.trading_symbol,
                                       orders.c.product).distinct()
                                .where(orders.c.account == account,
                                       orders.c.signal_id.is_not(None),
                                       orders.c.id > order_id)).all()
        return {f"{row.exchange}:{row.trading_symbol}:{row.product}" for row in rows}

    def prune_history(self, before: datetime) -> int:
        """Delete signals received before ``before`` that are settled, with their orders and
        events; returns how many signals went. Orders of no signal (square-off closes) go
        when final and older than ``before``."""
        pending = [status.value for status in SignalStatus if status.pending]
        with writing(self.engine) as conn:
            old = select(signals.c.id).where(signals.c.received_at < before,
                                             signals.c.status.not_in(pending))
            ids = [row.id for row in conn.execute(old.limit(5000)).all()]
            if ids:
                conn.execute(delete(events).where(events.c.signal_id.in_(ids)))
                conn.execute(delete(orders).where(orders.c.signal_id.in_(ids)))
                conn.execute(delete(signal_keys).where(signal_keys.c.signal_id.in_(ids)))
                conn.execute(delete(signals).where(signals.c.id.in_(ids)))
            loose = select(orders.c.id).where(orders.c.signal_id.is_(None),
                                              orders.c.final_at.is_not(None),
                                              orders.c.final_at < before)
            loose_ids = [row.id for row in conn.execute(loose.limit(5000)).all()]
            if loose_ids:
                conn.execute(delete(events).where(events.c.order_id.in_(loose_ids)))
                conn.execute(delete(orders).where(orders.c.id.in_(loose_ids)))
        return len(ids)

    # --- housekeeping ---------------------------------------------------------------------

    def prune(self) -> None:
        """Forget lapsed dedup keys and rate-limit stamps (housekeeping, off the hot path)."""
        now = self._clock.now()
        with writing(self.engine) as conn:
            conn.execute(delete(signal_keys).where(
                and_(signal_keys.c.expires_at.is_not(None),
                     signal_keys.c.expires_at < now - timedelta(minutes=5))))
            conn.execute(delete(broker_calls).where(
                broker_calls.c.at < _now_seconds(conn, self.engine.dialect.name) - 60))


def orders_by_signal(conn: Connection, signal_ids: list[int]) -> dict[int, list[OrderRow]]:
    """The orders of each of ``signal_ids`` (an empty list for one with none), in one query."""
    found: dict[int, list[OrderRow]] = {signal_id: [] for signal_id in signal_ids}
    if signal_ids:
        for row in conn.execute(select(orders).where(orders.c.signal_id.in_(signal_ids))
                                .order_by(orders.c.id)).all():
            found[int(row.signal_id)].append(_order_row(row))
    return found


@dataclass(frozen=True)
class AdmitRequest:
    """One signal to admit (see :meth:`Journal.admit_many`)."""

    alert_id: str
    source: str
    account: str
    remote_addr: str
    raw_body: str
    signal: Signal
    priority: int
    expires_at: datetime
    instrument: str
    key: str | None
    key_expires: datetime | None
    claimant: str | None
    rate: int
    received_at: datetime | None = None
    entry: EntryQuery | None = None
    plan: Planner | None = None


def _admit_in(conn: Connection, dialect: str, now: datetime, r: AdmitRequest,
              granted: list[int]) -> Admission:
    values = {
        "alert_id": storable(r.alert_id), "source": r.source, "account": r.account,
        "received_at": r.received_at or now, "remote_addr": storable(r.remote_addr[:64]),
        "raw_body": storable(r.raw_body), "parsed": json.dumps(r.signal.to_dict()),
        "strategy": storable(r.signal.strategy), "symbol": storable(r.signal.symbol[:96]),
        "instrument": r.instrument, "side": r.signal.side.value,
        "status": SignalStatus.QUEUED.value, "priority": r.priority,
        "expires_at": r.expires_at, "updated_at": now,
    }
    # Decided before the row exists: everything queued now arrived earlier, so the signal
    # is at the head unless something of the same or a higher priority waits.
    token = None
    if r.claimant is not None and conn.execute(st.QUEUED_AT_OR_ABOVE, {
            "account": r.account, "priority": r.priority}).first() is None:
        token, _ = _take_token(conn, r.account, r.rate, dialect)
    if token is not None:
        values.update(status=SignalStatus.DISPATCHING.value, claimed_by=r.claimant,
                      claimed_at=now)
    signal_id = _new_id(conn.execute(st.INSERT_SIGNAL, values))
    timeline = [{"signal_id": signal_id, "at": now, "status": "received",
                 "detail": "received"}]
    original = (_hold_key(conn, dialect, r.key, signal_id, r.key_expires, now)
                if r.key is not None else None)
    if original is not None:
        conn.execute(st.UPDATE_SIGNAL, {
            "where_id": signal_id, "status": SignalStatus.DUPLICATE.value,
            "duplicate_of": original, "claimed_by": None, "claimed_at": None})
        if token is not None:
            conn.execute(st.DELETE_CALL, {"where_id": token})
        timeline.append({"signal_id": signal_id, "at": now,
                         "status": SignalStatus.DUPLICATE.value,
                         "detail": f"repeat of signal {original}, answered with its outcome; "
                                   "nothing sent"})
        conn.execute(st.INSERT_EVENT, timeline)
        return Admission(signal_id, duplicate_of=original)
    timeline.append({"signal_id": signal_id, "at": now, "status": SignalStatus.QUEUED.value,
                     "detail": "waiting to be sent to Kotak"})
    if token is not None:
        timeline.append({"signal_id": signal_id, "at": now,
                         "status": SignalStatus.DISPATCHING.value,
                         "detail": "sending to Kotak"})
    conn.execute(st.INSERT_EVENT, timeline)
    if token is None:
        return Admission(signal_id)
    granted.append(token)
    counts = _entry_counts(conn, r.account, r.entry) if r.entry is not None else None
    plans = r.plan(counts) if r.plan is not None and counts is not None else None
    made, first_sending = (
        _insert_orders(conn, now, signal_id, r.account, r.signal.strategy, plans, token)
        if plans else ([], False))
    row = SignalRow(
        id=signal_id, alert_id=r.alert_id, source=r.source, account=r.account,
        received_at=r.received_at or now, status=SignalStatus.DISPATCHING,
        priority=r.priority, signal=r.signal, error=None, duplicate_of=None,
        expires_at=r.expires_at, strategy=r.signal.strategy, symbol=r.signal.symbol,
        instrument=r.instrument, raw_body=r.raw_body, remote_addr=r.remote_addr)
    return Admission(signal_id, claim=Claim(row, token, counts, tuple(made), first_sending))


def derive_status(orders: list[OrderRow]) -> tuple[SignalStatus, ErrorInfo | None]:
    """A signal's status from its orders' states.

    Orders that proved never to have arrived are history once the signal was sent again.
    """
    resent = [o for o in orders if o.status is not OrderState.NOT_PLACED]
    if resent and len(resent) < len(orders):
        orders = resent
    states = [o.status for o in orders]
    if any(s is OrderState.UNKNOWN for s in states):
        unknown = next(o for o in orders if o.status is OrderState.UNKNOWN)
        return SignalStatus.UNKNOWN, ErrorInfo(
            "outcome_unknown", unknown.reason or "sent to Kotak without an answer; it is being "
            "settled from the order book by its tag (never re-sent)", {"tag": unknown.tag})
    if any(s in (OrderState.CREATED, OrderState.SENDING) for s in states):
        return SignalStatus.DISPATCHING, None  # still being sent
    accepted = [o for o in orders if o.status.accepted]
    failed = [o for o in orders if o.status in (OrderState.REJECTED, OrderState.FAILED,
                                                OrderState.NOT_PLACED)]
    if accepted:
        if failed:
            first = failed[0]
            return SignalStatus.PARTIAL, ErrorInfo(
                "partial", f"{len(accepted)} of {len(orders)} orders placed; "
                           f"{first.side} {first.quantity} {first.trading_symbol}: "
                           f"{first.reason or first.status.value}",
                {"placed": [f"{o.side} {o.quantity} {o.trading_symbol}" for o in accepted],
                 "not_placed": [f"{o.side} {o.quantity} {o.trading_symbol}" for o in failed]})
        return SignalStatus.PLACED, None
    first = failed[0] if failed else orders[0]
    code = first.error_code or ("broker_rejected" if first.status is OrderState.REJECTED
                                else "not_placed")
    reason = first.reason or first.status.value
    if first.status is OrderState.REJECTED:
        return SignalStatus.REJECTED, ErrorInfo(code, reason, {"tag": first.tag})
    if first.status is OrderState.NOT_PLACED:
        return SignalStatus.FAILED, ErrorInfo("not_placed", reason, {"tag": first.tag})
    return SignalStatus.FAILED, ErrorInfo(code, reason, {"tag": first.tag})


def _expire_unsent(conn: Connection, signal_id: int, now: datetime, message: str,
                   *only_if: ColumnElement[bool]) -> bool:
    """Within a write transaction: expire a signal that sent nothing (while ``only_if``
    holds) and fail the orders it recorded but never sent, so that none of them is still
    counted as working (sizing) nor failed later in a way that turns the signal ``failed``.
    Returns whether it was expired."""
    if not conn.execute(update(signals).where(signals.c.id == signal_id, *only_if).values(
            status=SignalStatus.EXPIRED.value, claimed_by=None, claimed_at=None,
            updated_at=now, **_error_columns(ErrorInfo("expired", message, {})))).rowcount:
        return False
    timeline = [{"signal_id": signal_id, "order_id": None, "at": now,
                 "status": SignalStatus.EXPIRED.value, "detail": storable(message)}]
    reason = "never sent: its signal's validity window passed first"
    for order_id in conn.execute(select(orders.c.id).where(
            orders.c.signal_id == signal_id,
            orders.c.status == OrderState.CREATED.value)).scalars().all():
        conn.execute(st.UPDATE_ORDER, {"where_id": order_id, "status": OrderState.FAILED.value,
                                       "error_code": "not_sent", "reason": reason,
                                       "updated_at": now, "final_at": now})
        timeline.append({"signal_id": signal_id, "order_id": order_id, "at": now,
                         "status": OrderState.FAILED.value, "detail": reason})
    conn.execute(st.INSERT_EVENT, timeline)
    return True


def _summary(orders: list[OrderRow]) -> str:
    return "; ".join(f"{o.side} {o.quantity} {o.trading_symbol}: {o.status.value}"
                     for o in orders)


def _settle(conn: Connection, signal_id: int, now: datetime) -> SignalStatus | None:
    row = conn.execute(st.SIGNAL_STATE, {"where_id": signal_id}).first()
    found = [_order_row(r) for r in conn.execute(st.ORDERS_OF,
                                                 {"where_signal": signal_id}).all()]
    if row is None or not found:
        return None
    status, error = derive_status(found)
    same_error = (error.code, error.message) == (row.error_code, row.error_message) \
        if error is not None else row.error_code is None
    if status.value == row.status and same_error:
        return status
    values: dict[str, Any] = {"status": status.value, "updated_at": now}
    values.update(_error_columns(error) if error is not None else
                  {"error_code": None, "error_message": None, "error_details": None})
    if not status.pending:
        values.update(claimed_by=None, claimed_at=None)
    conn.execute(st.UPDATE_SIGNAL, {"where_id": signal_id, **values})
    if status.value != row.status:
        conn.execute(st.INSERT_EVENT, {
            "signal_id": signal_id, "at": now, "status": status.value,
            "detail": storable(error.message if error else _summary(found))})
    return status


def _entry_counts(conn: Connection, account: str, entry: EntryQuery) -> EntryCounts:
    row = conn.execute(st.ENTRY_COUNTS, {
        "account": account, "since": entry.since, "strategy": entry.strategy,
        "exchange": entry.exchange, "trading_symbol": entry.trading_symbol,
        "closed_key": closed_key(account, entry.exchange)}).one()
    return EntryCounts(int(row[0] or 0), int(row[1] or 0), int(row[2] or 0), row[3] == "on",
                       blocked_day(row[4]) == entry.since.date().isoformat())


def _insert_orders(conn: Connection, now: datetime, signal_id: int | None, account: str,
                   strategy: str, plans: list[OrderPlan],
                   send_first_with: int | None) -> tuple[list[OrderRow], bool]:
    """Within a write transaction: the body of :meth:`Journal.add_orders`."""
    rows: list[OrderRow] = []
    sending = send_first_with is not None and not _in_flight_before(
        conn, account, send_first_with, conn.dialect.name)
    for index, plan in enumerate(plans):
        state = OrderState.SENDING if sending and index == 0 else OrderState.CREATED
        sent_at = now if state is OrderState.SENDING else None
        order_id = _new_id(conn.execute(st.INSERT_ORDER, {
            "signal_id": signal_id, "account": account, "strategy": strategy,
            "tag": plan.tag, "exchange": plan.exchange, "trading_symbol": plan.trading_symbol,
            "side": plan.side, "quantity": plan.quantity, "product": plan.product,
            "order_type": plan.order_type, "price": plan.price,
            "trigger_price": plan.trigger_price, "is_exit": plan.is_exit,
            "status": state.value, "created_at": now, "updated_at": now, "sent_at": sent_at}))
        rows.append(OrderRow(
            id=order_id, signal_id=signal_id, account=account, tag=plan.tag,
            strategy=strategy, exchange=plan.exchange, trading_symbol=plan.trading_symbol,
            side=plan.side, quantity=plan.quantity, product=plan.product,
            order_type=plan.order_type, price=plan.price, trigger_price=plan.trigger_price,
            is_exit=plan.is_exit, status=state, broker_order_id=None, broker_status=None,
            filled_quantity=0, average_price=None, error_code=None, reason=None,
            created_at=now, sent_at=sent_at, updated_at=now))
        created = {"signal_id": signal_id, "order_id": order_id, "at": now,
                   "status": OrderState.CREATED.value,
                   "detail": f"{plan.side} {plan.quantity} {plan.exchange}:"
                             f"{plan.trading_symbol} {plan.order_type} {plan.product} "
                             f"tag {plan.tag}"}
        entries = [created]
        if state is OrderState.SENDING:
            entries.append({**created, "status": OrderState.SENDING.value,
                            "detail": "sent to Kotak"})
        conn.execute(st.INSERT_EVENT, entries)
    if sending:
        conn.execute(st.UPDATE_CALL, {"where_id": send_first_with, "sent": True})
    return rows, sending


def _stamp_answer(conn: Connection, token: int, dialect: str) -> None:
    conn.execute(st.UPDATE_CALL, {"where_id": token, "at": _now_seconds(conn, dialect),
                                  "done": True})


def _set_order(conn: Connection, order_id: int, state: OrderState, values: dict[str, Any],
               fields: dict[str, Any], detail: str, now: datetime) -> bool:
    current = conn.execute(st.ORDER_BY_ID, {"where_id": order_id}).first()
    if current is None or _PROGRESS[state.value] < _PROGRESS[current.status]:
        return False
    if _PROGRESS[current.status] == 5 and current.status != state.value:
        return False  # final is final
    changed = current.status != state.value or any(
        getattr(current, key) != value for key, value in fields.items())
    if not changed:
        return False
    conn.execute(st.UPDATE_ORDER, {"where_id": order_id, **values})
    if current.status != state.value or detail:
        conn.execute(st.INSERT_EVENT, {
            "signal_id": current.signal_id, "order_id": order_id, "at": now,
            "status": state.value, "detail": storable(detail)})
    if current.signal_id is not None:
        _settle(conn, int(current.signal_id), now)
    return True


def _in_flight_before(conn: Connection, account: str, token: int, dialect: str) -> list[int]:
    """The requests granted before ``token`` that still wait for their answers (a few)."""
    now = _now_seconds(conn, dialect)
    return [int(token_id) for token_id in conn.execute(st.EARLIER_IN_FLIGHT, {
        "account": account, "token": token, "stale_start": now - UNSENT_TOKEN_S,
    }).scalars()]


def _hold_key(conn: Connection, dialect: str, key: str, signal_id: int,
              expires: datetime | None, now: datetime) -> int | None:
    """Take the idempotency key for ``signal_id``; if a live earlier signal holds it,
    return that signal's id instead."""
    if conn.execute(st.CLAIM_KEY[dialect], {"key": key, "signal_id": signal_id,
                                            "expires_at": expires}).first() is not None:
        return None
    holder = conn.execute(st.KEY_HOLDER, {"key": key}).first()
    if holder is not None and (holder.expires_at is None or holder.expires_at > now):
        return int(holder.signal_id)
    conn.execute(st.UPDATE_KEY, {"where_key": key, "signal_id": signal_id,
                                 "expires_at": expires})
    return None


def _take_token(conn: Connection, account: str, rate: int,
                dialect: str) -> tuple[int | None, float]:
    """Within an exclusive transaction: grant one broker call, or say when one may go.

    A granted token counts as "happening now" until its request has been answered
    (:meth:`Journal.token_done` stamps it then), so the window holds at the moment requests
    reach the broker, not at the moment signals were claimed.
    """
    now = _now_seconds(conn, dialect)
    rows = conn.execute(st.RATE_WINDOW, {"account": account,
                                         "window_start": now - RATE_WINDOW_S,
                                         "stale_start": now - UNSENT_TOKEN_S}).all()
    if len(rows) >= rate:
        moments = sorted(float(row.at) if row.done else now for row in rows)
        return None, max(moments[len(moments) - rate] + RATE_WINDOW_S - now, 0.01)
    result = conn.execute(st.INSERT_CALL, {"account": account, "at": now, "sent": False,
                                           "done": False})
    return _new_id(result), 0.0


def _now_seconds(conn: Connection, dialect: str) -> float:
    """Epoch seconds; PostgreSQL's clock, so every host of a shared journal agrees."""
    if dialect == "postgresql":
        return float(conn.execute(text("SELECT extract(epoch from clock_timestamp())"))
                     .scalar() or 0.0)
    return time.time()


def _new_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the database returned no id for a new row")
    return int(key[0])


def storable(text: str) -> str:
    """Text from outside, made storable everywhere: PostgreSQL refuses NUL characters."""
    return text.replace("\x00", "\\u0000")


def _error_columns(error: ErrorInfo | None) -> dict[str, Any]:
    if error is None:
        return {}
    return {"error_code": error.code, "error_message": storable(error.message[:2000]),
            "error_details": json.dumps(error.details, default=str)[:8000]}


def _signal_row(row: Row[Any]) -> SignalRow:
    error = None
    if row.error_code:
        details = json.loads(row.error_details) if row.error_details else {}
        error = ErrorInfo(row.error_code, row.error_message or "", details)
    return SignalRow(
        id=int(row.id), alert_id=row.alert_id, source=row.source, account=row.account,
        received_at=row.received_at, status=SignalStatus(row.status),
        priority=int(row.priority),
        signal=Signal.from_dict(json.loads(row.parsed)) if row.parsed else None,
        error=error, duplicate_of=row.duplicate_of, expires_at=row.expires_at,
        strategy=row.strategy, symbol=row.symbol, instrument=row.instrument,
        raw_body=row.raw_body,
        remote_addr=row.remote_addr,
    )


def _order_row(row: Row[Any]) -> OrderRow:
    return OrderRow(
        id=int(row.id), signal_id=row.signal_id, account=row.account, tag=row.tag,
        strategy=row.strategy, exchange=row.exchange, trading_symbol=row.trading_symbol,
        side=row.side, quantity=int(row.quantity), product=row.product,
        order_type=row.order_type, price=row.price, trigger_price=row.trigger_price,
        is_exit=bool(row.is_exit), status=OrderState(row.status),
        broker_order_id=row.broker_order_id, broker_status=row.broker_status,
        filled_quantity=int(row.filled_quantity or 0), average_price=row.average_price,
        error_code=row.error_code, reason=row.reason, created_at=row.created_at,
        sent_at=row.sent_at, updated_at=row.updated_at,
    )
