"""The journal's rows as the bridge sees them, and the words they are written in: a signal's
and an order's statuses, the records read back, the plans and requests handed in, and what a
claim or an admission decided.

Every store of the journal speaks these, and so do its callers; kept in a module of their
own, beneath every store, so that the stores can share them without importing each other.
The converters from database rows (and :func:`storable`, for text from outside) live here
for the same reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.engine import CursorResult, Row

from bridge.domain import Signal


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


FINAL_ORDER_STATES = frozenset({OrderState.COMPLETE, OrderState.REJECTED, OrderState.CANCELLED,
                                OrderState.NOT_PLACED, OrderState.FAILED})
WORKING_ORDER_STATES = frozenset(set(OrderState) - FINAL_ORDER_STATES)


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


#: a count with no cap: every matching order is counted
UNCAPPED = 2**31 - 1


@dataclass(frozen=True)
class EntryQuery:
    """What the entry rules count: the account's day, a strategy, an instrument."""

    since: datetime
    strategy: str
    exchange: str
    trading_symbol: str
    #: the caps the counts are compared with: counting stops there (0: the cap is off)
    account_cap: int = UNCAPPED
    strategy_cap: int = UNCAPPED
    #: whether the strategy's quantity in the instrument is wanted (its cap is on)
    sum_quantity: bool = True


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
    #: dead process recorded and never sent (:meth:`QueueStore.take_over`)
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
    """What taking over a dead process's claim did (:meth:`QueueStore.take_over`)."""

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


def new_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the database returned no id for a new row")
    return int(key[0])


def storable(text: str) -> str:
    """Text from outside, made storable everywhere: PostgreSQL refuses NUL characters."""
    return text.replace("\x00", "\\u0000")


def error_columns(error: ErrorInfo | None) -> dict[str, Any]:
    if error is None:
        return {}
    return {"error_code": error.code, "error_message": storable(error.message[:2000]),
            "error_details": json.dumps(error.details, default=str)[:8000]}


def signal_row(row: Row[Any]) -> SignalRow:
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


def order_row(row: Row[Any]) -> OrderRow:
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


@dataclass(frozen=True)
class AdmitRequest:
    """One signal to admit (see :meth:`SignalStore.admit_many`)."""

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


def signal_columns(r: AdmitRequest, now: datetime) -> dict[str, Any]:
    """The row a signal is journaled as on admission, still queued."""
    return {
        "alert_id": storable(r.alert_id), "source": r.source, "account": r.account,
        "received_at": r.received_at or now, "remote_addr": storable(r.remote_addr[:64]),
        "raw_body": storable(r.raw_body), "parsed": json.dumps(r.signal.to_dict()),
        "strategy": storable(r.signal.strategy), "symbol": storable(r.signal.symbol[:96]),
        "instrument": r.instrument, "side": r.signal.side.value,
        "status": SignalStatus.QUEUED.value, "priority": r.priority,
        "expires_at": r.expires_at, "updated_at": now,
    }
