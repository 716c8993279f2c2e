"""Changing orders already at Kotak: cancel one, cancel every working one, or modify one.

A change is an order call like a placement (DESIGN.md section 5b), so each one is:

1. looked up at Kotak by its order number (within ``BOOK_WAIT_S``): a modify must keep the
   order's contract, side and product, and whole lots and a price where its type needs one;
2. journaled as a signal of its own (the caller's source and address, the raw body with the
   key masked, the order's trading symbol), so the dashboard lists it beside the signals;
3. sent once, in a slot of the account's Kotak rate limit shared with every order the bridge
   sends, waiting at most ``TOKEN_WAIT_S`` for one;
4. closed with what Kotak said: ``placed`` when it accepted the change, ``rejected`` with its
   reason when it refused, ``failed`` when nothing reached it, ``unknown`` when the request
   went and no answer came back; ``noop`` when there was nothing to change. When the order is
   one of the bridge's own, its journaled order is brought up to date as well.

A refusal is journaled first and then raised for the caller to answer: a
:class:`~bridge.errors.BridgeError` (no such order, an order already final, an invalid
modify, the rate limit full), the :class:`~bridge.kotak.errors.KotakError` Kotak's answer
raised, or :class:`~bridge.kotak.instruments.InstrumentsUnavailable`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from bridge.domain import (
    BrokerOrder,
    Exchange,
    Instrument,
    ModifyRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
    SignalSource,
    Validity,
    round_to_tick,
)
from bridge.errors import (
    BridgeError,
    InvalidSignal,
    NoSuchOrder,
    RuleRefusal,
    TooManyRequests,
)
from bridge.journal.rows import ErrorInfo, SignalStatus
from bridge.kotak.client import KotakClient
from bridge.kotak.errors import (
    BrokerRejected,
    BrokerUnavailable,
    KotakError,
    ProtocolError,
    RateLimited,
    RequestInvalid,
    SessionInvalid,
)
from bridge.kotak.instruments import (
    InstrumentError,
    InstrumentIndex,
    InstrumentsUnavailable,
)
from bridge.orders.service import BOOK_WAIT_S, OrderService

log = logging.getLogger(__name__)

#: how long a change waits for a slot of the account's Kotak rate limit
TOKEN_WAIT_S = 5.0
#: what a change row names when it is about no one contract
ALL_ORDERS = "all working orders"


@dataclass(frozen=True)
class ChangeCall:
    """Who asked for a change, as the web layer hands it over."""

    source: SignalSource
    account: str
    remote_addr: str
    raw_body: str  # as received, the key masked
    received_at: datetime | None = None


@dataclass(frozen=True)
class NewTerms:
    """What a modify asks of a working order: Kotak wants the full set, not a delta."""

    order_type: OrderType
    quantity: int
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    disclosed_quantity: int = 0
    #: what the caller says the order is, each to be checked against it (None: not said)
    side: Side | None = None
    product: Product | None = None
    symbol: str = ""  # the contract as the caller wrote it
    #: the caller's ``symbol`` read in the day's scrip master, on the order's exchange when
    #: the caller named none; raises UnknownInstrument (or another InstrumentError)
    contract: Callable[[InstrumentIndex, Exchange], Instrument] | None = None


@dataclass(frozen=True)
class Changed:
    """A change as journaled: its signal row, and what became of it."""

    signal_id: int
    alert_id: str
    status: SignalStatus
    order_id: str  # Kotak's order number (a modify may answer a new one)
    error: ErrorInfo | None = None


class OrderChanges:
    def __init__(self, service: OrderService,
                 count: Callable[[str, str], None] | None = None) -> None:
        self.service = service
        self.journal = service.journal
        self._count = count  # (source, status) of each change, for the metrics

    def cancel(self, call: ChangeCall, order_id: str) -> Changed:
        """Cancel one order; ``noop`` when it was cancelled already.

        :raises NoSuchOrder: Kotak has no such order today.
        :raises RuleRefusal: the order is complete or rejected (code ``order_final``).
        :raises TooManyRequests: no slot of the rate limit freed up in time.
        :raises KotakError: Kotak could not be asked, or refused the cancel.
        """
        found = self._look_up(call, "cancel", order_id)
        changed, problem = self._cancel(call, found)
        if problem is not None:
            raise problem
        return changed

    def cancel_all(self, call: ChangeCall) -> list[Changed]:
        """Cancel every working order of the account, each its own journaled change; one
        failing does not stop the others. A ``noop`` row says when there was none.

        :raises KotakError: the order book could not be read (journaled ``failed``).
        """
        broker = self._broker(call)
        try:
            book = broker.order_book(deadline=time.monotonic() + BOOK_WAIT_S)
        except KotakError as exc:
            status, error = _failure(exc, "Cancel of all working orders", sent=False)
            self._record(call, "cancel-all", ALL_ORDERS, "", status, error=error)
            raise
        working = [order for order in book if order.status.is_working]
        if not working:
            self._record(call, "cancel-all", ALL_ORDERS, "", SignalStatus.NOOP,
                         detail="no working orders at Kotak: nothing to cancel")
            return []
        return [self._cancel(call, order)[0] for order in working]

    def modify(self, call: ChangeCall, order_id: str, terms: NewTerms) -> Changed:
        """Give a working order new terms; its contract, side and product stay (Kotak's rule).

        :raises NoSuchOrder: Kotak has no such order today.
        :raises RuleRefusal: the order is final (code ``order_final``).
        :raises InvalidSignal: the terms would change the contract, side or product, or miss
            a price, trigger price or whole lots (``details`` name the fields).
        :raises InstrumentsUnavailable: the order's contract cannot be read in the scrip master.
        :raises TooManyRequests: no slot of the rate limit freed up in time.
        :raises KotakError: Kotak could not be asked, or refused the change.
        """
        found = self._look_up(call, "modify", order_id)
        symbol, where = found.trading_symbol, _key(found)
        label = f"Change of Kotak order {order_id} ({symbol})"
        if found.status.is_final:
            final = RuleRefusal(f"order {order_id} is {found.status.value}: it cannot be "
                                "modified", {"orderid": [found.status.value]},
                                code="order_final")
            self._refused(call, "modify", found, final)
            raise final
        try:
            index = self.service.instruments.current()
            instrument = index.get(found.exchange, symbol)
            if instrument is None:
                raise InstrumentsUnavailable(f"order {order_id} is for {where}, which today's "
                                             "scrip master does not list")
        except InstrumentError as exc:
            self._record(call, "modify", symbol, order_id, SignalStatus.FAILED,
                         error=ErrorInfo("instruments_unavailable", str(exc), {}),
                         instrument=where)
            raise
        try:
            change = _checked(terms, found, instrument, index)
        except InvalidSignal as exc:
            self._refused(call, "modify", found, exc)
            raise
        words = _terms(change)
        changed, problem = self._send(
            call, "modify", found, label, lambda broker: broker.modify_order(change),
            lambda number: f"{label} to {words} accepted by Kotak"
                           + (f" as order {number}" if number != order_id else ""))
        if problem is not None:
            raise problem
        self._ours_changed(call, order_id, change)
        return changed

    # --- the steps ------------------------------------------------------------------------

    def _look_up(self, call: ChangeCall, kind: str, order_id: str) -> BrokerOrder:
        """The order at Kotak; a failure is journaled (the row names the order number)."""
        name = f"Kotak order {order_id}"
        try:
            found = self._broker(call).order(order_id, deadline=time.monotonic() + BOOK_WAIT_S)
        except KotakError as exc:
            verb = "Cancel" if kind == "cancel" else "Change"
            status, error = _failure(exc, f"{verb} of {name}", sent=False)
            self._record(call, kind, name, order_id, status, error=error)
            raise
        if found is None:
            problem = NoSuchOrder(f"order {order_id} is not in today's order book",
                                  {"orderid": ["not in today's order book"]})
            self._record(call, kind, name, order_id, SignalStatus.REJECTED,
                         error=ErrorInfo(problem.code, problem.message, problem.details))
            raise problem
        return found

    def _cancel(self, call: ChangeCall,
                found: BrokerOrder) -> tuple[Changed, Exception | None]:
        order_id, symbol = found.order_id, found.trading_symbol
        label = f"Cancel of Kotak order {order_id} ({symbol})"
        if found.status is OrderStatus.CANCELLED:
            return self._record(call, "cancel", symbol, order_id, SignalStatus.NOOP,
                                detail=f"Kotak order {order_id} ({symbol}) was already "
                                       "cancelled: nothing sent",
                                instrument=_key(found)), None
        if found.status.is_final:
            final = RuleRefusal(f"order {order_id} is {found.status.value}: it cannot be "
                                "cancelled", {"orderid": [found.status.value]},
                                code="order_final")
            return self._refused(call, "cancel", found, final), final
        changed, problem = self._send(
            call, "cancel", found, label,
            lambda broker: broker.cancel_order(order_id, trading_symbol=symbol),
            lambda _: f"{label} accepted by Kotak")
        if problem is None:
            self._ours_changed(call, order_id, None)
        return changed, problem

    def _send(self, call: ChangeCall, kind: str, found: BrokerOrder, label: str,
              send: Callable[[KotakClient], str],
              accepted: Callable[[str], str]) -> tuple[Changed, Exception | None]:
        """Journal the change, send it once in a rate-limit slot, and record Kotak's answer."""
        order_id = found.order_id
        opened = self._open(call, kind, found.trading_symbol, order_id, _key(found))
        token = self._slot(call.account)
        if token is None:
            problem = TooManyRequests("Kotak's order rate limit for this account is taken by "
                                      "other orders; try again in a moment",
                                      code="rate_limited")
            return self._close(call, opened, SignalStatus.FAILED, ErrorInfo(
                "rate_limited", f"{label} not sent: Kotak's order rate limit for this "
                                "account stayed full", {})), problem
        try:
            number = send(self._broker(call))
        except KotakError as exc:
            status, error = _failure(exc, label, sent=True)
            return self._close(call, opened, status, error), exc
        except Exception as exc:
            # Whatever broke, the request may have reached Kotak: never call it not sent.
            self._close(call, opened, SignalStatus.UNKNOWN, ErrorInfo(
                "outcome_unknown", f"{label}: no answer could be read ({exc}); check the "
                                   "order book", {}))
            raise
        finally:
            self.journal.queue.finish_sending(token)
        number = number or order_id
        return self._close(call, opened, SignalStatus.PLACED, None,
                           detail=accepted(number), order_id=number), None

    def _slot(self, account: str) -> int | None:
        """A slot of the account's Kotak rate limit, shared with every order the bridge
        sends; ``None`` when none frees up in ``TOKEN_WAIT_S``. Give it back with
        ``finish_sending``."""
        rate = self.service.accounts.rate(account)
        deadline = time.monotonic() + TOKEN_WAIT_S
        while True:
            token, wait = self.journal.queue.take_token(account, rate)
            if token is not None:
                return token
            if time.monotonic() + wait > deadline:
                return None
            time.sleep(min(max(wait, 0.005), 0.25))

    def _ours_changed(self, call: ChangeCall, order_id: str,
                      change: ModifyRequest | None) -> None:
        """When the order changed is one of the bridge's own, record what Kotak says of it
        now and, for a modify, its new terms. Never fails the change: Kotak has it."""
        try:
            ours = self.journal.orders.order_by_broker_id(call.account, order_id)
            if ours is None:
                return
            now = self.service.refresh(ours)
            if change is None or now is None:
                return
            self.journal.orders.set_order(
                now.id, now.status, detail=f"changed through the {call.source.value}: "
                                           f"{_terms(change)}",
                quantity=change.quantity, order_type=change.order_type.value,
                price=str(change.price) if change.price is not None else None,
                trigger_price=str(change.trigger_price)
                if change.trigger_price is not None else None)
        except Exception:
            log.warning("Kotak order %s changed, but the bridge's record of it could not be "
                        "brought up to date", order_id, exc_info=True)

    # --- the journal ----------------------------------------------------------------------

    def _open(self, call: ChangeCall, kind: str, symbol: str, order_id: str,
              instrument: str) -> Changed:
        alert_id = f"{kind}-{order_id}"[:80] if order_id else kind
        signal_id = self.journal.signals.add_signal(
            alert_id=alert_id, source=call.source.value, account=call.account,
            remote_addr=call.remote_addr, raw_body=call.raw_body, signal=None,
            status=SignalStatus.RECEIVED, priority=1, expires_at=None, symbol=symbol,
            instrument=instrument, received_at=call.received_at)
        return Changed(signal_id, alert_id, SignalStatus.RECEIVED, order_id)

    def _close(self, call: ChangeCall, opened: Changed, status: SignalStatus,
               error: ErrorInfo | None, *, detail: str = "",
               order_id: str = "") -> Changed:
        self.journal.signals.set_signal_status(opened.signal_id, status, error=error, detail=detail,
                                               only_from=[SignalStatus.RECEIVED])
        self.service.report.settled(opened.signal_id)
        if self._count is not None:
            self._count(call.source.value, status.value)
        return Changed(opened.signal_id, opened.alert_id, status,
                       order_id or opened.order_id, error)

    def _record(self, call: ChangeCall, kind: str, symbol: str, order_id: str,
                status: SignalStatus, *, error: ErrorInfo | None = None, detail: str = "",
                instrument: str = "") -> Changed:
        """One row for a change that ends before anything is sent."""
        opened = self._open(call, kind, symbol, order_id, instrument)
        return self._close(call, opened, status, error, detail=detail)

    def _refused(self, call: ChangeCall, kind: str, found: BrokerOrder,
                 problem: BridgeError) -> Changed:
        """One ``rejected`` row for a change refused before it was sent."""
        return self._record(call, kind, found.trading_symbol, found.order_id,
                            SignalStatus.REJECTED,
                            error=ErrorInfo(problem.code, problem.message, problem.details),
                            instrument=_key(found))

    def _broker(self, call: ChangeCall) -> KotakClient:
        return self.service.brokers[call.account]


def _checked(terms: NewTerms, found: BrokerOrder, instrument: Instrument,
             index: InstrumentIndex) -> ModifyRequest:
    """The modify Kotak is sent, once the terms keep the order what it is and are complete.

    :raises InvalidSignal: naming the fields at fault.
    """
    order_id = found.order_id
    name = f"{instrument.exchange.value}:{instrument.trading_symbol}"
    if terms.contract is not None:
        try:
            asked = terms.contract(index, found.exchange)
        except InstrumentError as exc:
            raise InvalidSignal(str(exc), {"symbol": [str(exc)]}) from exc
        if (asked.exchange, asked.trading_symbol) != (instrument.exchange,
                                                      instrument.trading_symbol):
            raise InvalidSignal(f"order {order_id} is for {name}, not {terms.symbol}: a modify "
                                "cannot change the contract (cancel it and place a new order)",
                                {"symbol": [f"is {name}"]})
    if terms.side is not None and terms.side is not found.side:
        raise InvalidSignal(f"order {order_id} is a {found.side.value}: a modify cannot change "
                            "the side", {"action": [f"is {found.side.value}"]})
    if terms.product is not None and terms.product.value != found.product:
        raise InvalidSignal(f"order {order_id} is {found.product}: a modify cannot change the "
                            "product", {"product": [f"is {found.product}"]})
    kind = terms.order_type
    price, trigger = terms.price or None, terms.trigger_price or None
    problems: dict[str, list[str]] = {}
    if kind.needs_price and price is None:
        problems["price"] = [f"is required for {kind.value} orders"]
    if kind.needs_trigger and trigger is None:
        problems["trigger_price"] = [f"is required for {kind.value} orders"]
    if terms.quantity <= 0 or terms.quantity % instrument.lot_size:
        problems["quantity"] = [f"must be a positive multiple of the lot size "
                                f"{instrument.lot_size}"]
    if problems:
        raise InvalidSignal(f"order {order_id}: " + "; ".join(
            f"{field} {text[0]}" for field, text in problems.items()), dict(problems))
    try:
        product: Product | None = Product(found.product)
    except ValueError:
        product = None
    return ModifyRequest(
        order_id=order_id, instrument=instrument, side=found.side, quantity=terms.quantity,
        order_type=kind,
        price=round_to_tick(price, instrument.tick_size) if kind.needs_price and price
        else None,
        trigger_price=round_to_tick(trigger, instrument.tick_size)
        if kind.needs_trigger and trigger else None,
        validity=Validity.IOC if found.validity.upper() == "IOC" else Validity.DAY,
        disclosed_quantity=terms.disclosed_quantity, product=product,
        filled_quantity=found.filled_quantity)


def _failure(exc: KotakError, label: str, *, sent: bool) -> tuple[SignalStatus, ErrorInfo]:
    """The journal's status and reason for a Kotak call that did not come back accepted
    (the same words as for a placement); ``sent``: the call could have changed the order."""
    if isinstance(exc, BrokerRejected):
        return SignalStatus.REJECTED, ErrorInfo("broker_rejected",
                                                f"{label} refused: {exc.message}", {})
    if isinstance(exc, SessionInvalid):
        code, why = "broker_session", f"no valid Kotak session: {exc.message}"
    elif isinstance(exc, RateLimited):
        code, why = "broker_rate_limited", exc.message
    elif isinstance(exc, BrokerUnavailable):
        code, why = "broker_unavailable", exc.message
    elif isinstance(exc, ProtocolError):
        code, why = "broker_protocol", exc.message
    elif isinstance(exc, RequestInvalid):
        code, why = "not_sent", exc.message
    elif sent:
        return SignalStatus.UNKNOWN, ErrorInfo(
            "outcome_unknown", f"{label} sent without an answer ({exc.message}); check the "
                               "order book before trying again", {})
    else:
        code, why = "broker_error", exc.message
    return SignalStatus.FAILED, ErrorInfo(code, f"{label} not sent: {why}", {})


def _terms(change: ModifyRequest) -> str:
    """``2 LIMIT @ 2900.05``, ``1 SL @ 101 trigger 100``: a modify's terms in a line."""
    words = [str(change.quantity), change.order_type.value]
    if change.price is not None:
        words.append(f"@ {change.price}")
    if change.trigger_price is not None:
        words.append(f"trigger {change.trigger_price}")
    return " ".join(words)


def _key(found: BrokerOrder) -> str:
    """The order's instrument as signal rows name it (``NSE:TCS-EQ``)."""
    return f"{found.exchange.value}:{found.trading_symbol}"
