"""The order service: the only code that turns a signal into broker orders.

For one signal it resolves the instrument, sizes the order (a target position against the
live position and our working orders, under a lock per instrument held across every process),
applies the rules, records each order before sending it, sends it once through the
connector with our tag, and follows it until Kotak says ``complete``, ``rejected`` or
``cancelled`` or the caller's time budget ends (the tracker carries on from there).

What happens at the broker is never guessed: a request that got no answer is ``unknown`` and
is settled from the order book by its tag; an order Kotak accepted and then rejected is
``rejected`` with Kotak's reason.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from bridge.accounts import AccountBook, single
from bridge.clock import IST, Clock, today_ist
from bridge.config import Mode, Settings
from bridge.domain import (
    BrokerOrder,
    Exchange,
    Instrument,
    Leg,
    OptionRequest,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionScope,
    Product,
    Resolution,
    Side,
    Signal,
    price_on_tick,
)
from bridge.errors import InvalidSignal, RuleRefusal
from bridge.journal.journal import Journal
from bridge.journal.locks import named_lock
from bridge.journal.orders import OrderChange
from bridge.journal.rows import (
    Claim,
    EntryCounts,
    EntryQuery,
    ErrorInfo,
    OrderPlan,
    OrderRow,
    OrderState,
    Planner,
    SignalRow,
    SignalStatus,
)
from bridge.journal.strategy_position import strategy_position
from bridge.kotak.client import KotakClient
from bridge.kotak.errors import (
    BrokerRejected,
    BrokerUnavailable,
    KotakError,
    OutcomeUnknown,
    ProtocolError,
    RateLimited,
    RequestInvalid,
    SessionInvalid,
)
from bridge.kotak.instruments import (
    AmbiguousInstrument,
    InstrumentError,
    InstrumentIndex,
    InstrumentStore,
    InstrumentsUnavailable,
    UnknownInstrument,
)
from bridge.kotak.sandbox.paper import unknown_symbol_hint
from bridge.kotak.session import SessionManager
from bridge.notify import Notifier
from bridge.orders import rules, sizing
from bridge.orders.barrier import Arrival
from bridge.orders.legs import LegFailures
from bridge.orders.options import Quote
from bridge.orders.report import SignalReport
from bridge.schedule.calendar import TradingCalendar
from bridge.schemas import product_problem

log = logging.getLogger(__name__)

PriceHint = Callable[[Instrument, Decimal], None]
#: picks the contract of an option by offset: (index, request, amo, deadline, the quotes
#: this signal has read) -> the option and why it was picked; raises InvalidSignal naming
#: the field
OptionPick = Callable[[InstrumentIndex, OptionRequest, bool, float, dict[Instrument, Quote]],
                      tuple[Instrument, Resolution]]
#: how long picking an option may wait for the underlying's quote
QUOTE_WAIT_S = 1.0
#: told the seconds from a signal's arrival to Kotak's answer to its place-order request
AnswerObserver = Callable[[float], None]
#: seconds a signal or a square-off waits for Kotak's order book, which can hang for a
#: minute after a burst of orders (Kotak-neo-api-v2 #68), before doing without it
BOOK_WAIT_S = 2.0
_BROKER_STATE = {
    OrderStatus.PENDING: OrderState.PENDING, OrderStatus.OPEN: OrderState.OPEN,
    OrderStatus.TRIGGER_PENDING: OrderState.TRIGGER_PENDING,
    OrderStatus.COMPLETE: OrderState.COMPLETE, OrderStatus.REJECTED: OrderState.REJECTED,
    OrderStatus.CANCELLED: OrderState.CANCELLED,
}


def order_state(status: OrderStatus) -> OrderState:
    """The journal's state for an order Kotak reports in ``status``."""
    return _BROKER_STATE[status]


class SignalFailed(Exception):
    """The signal cannot go on; carries the journal status and error to record."""

    def __init__(self, status: SignalStatus, error: ErrorInfo) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error


class NothingToSend(Exception):
    """A target already reached: the signal is ``noop``, and this says why in words."""

    def __init__(self, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


@dataclass(frozen=True)
class Held:
    """The position a target is reached against, and how it was counted (for the reason a
    ``noop`` gives)."""

    scope: PositionScope
    position: int  # what the target is compared with: filled plus working orders
    working: int  # the part of ``position`` still in working orders
    account: int | None = None  # with a strategy's scope: the account's position
    counted: str = ""  # with a strategy's scope: which orders were counted, in words


@dataclass(frozen=True)
class Prepared:
    signal: Signal
    instrument: Instrument  # a multi-leg signal's: its first leg's
    priority: int  # 0: exit (a flatten), 1: entry
    legs: tuple[Instrument, ...] = ()  # each leg's contract, in the signal's leg order


def instrument_key(instrument: Instrument) -> str:
    return f"{instrument.exchange.value}:{instrument.trading_symbol}"


class OrderService:
    def __init__(self, journal: Journal, brokers: Mapping[str, KotakClient],
                 instruments: InstrumentStore, settings: Settings, clock: Clock,
                 engine: Engine, calendar: TradingCalendar,
                 price_hint: PriceHint | None = None, *,
                 on_answer: AnswerObserver | None = None,
                 notifier: Notifier | None = None,
                 accounts: AccountBook | None = None,
                 pick_option: OptionPick | None = None) -> None:
        self.journal = journal
        self.brokers = brokers
        self.instruments = instruments
        self.settings = settings
        self.clock = clock
        self.calendar = calendar
        self._engine = engine
        self._price_hint = price_hint
        self._on_answer = on_answer
        self.notifier = notifier
        self.report = SignalReport(journal, clock)
        self.accounts = accounts or single(settings)
        self.pick_option = pick_option
        self.legs = LegFailures(journal, brokers, clock, settings.risk.leg_failure, notifier)

    # --- at intake: no broker calls --------------------------------------------------------

    def prepare(self, signal: Signal) -> Prepared:
        """Resolve the instrument and check what needs it.

        :raises InvalidSignal: naming the field (symbol, quantity, product ...).
        :raises SignalFailed: the scrip master is not loaded.
        """
        try:
            index = self.instruments.current()
        except InstrumentsUnavailable as exc:
            raise SignalFailed(SignalStatus.FAILED, ErrorInfo(
                "instruments_unavailable", str(exc), {})) from exc
        if signal.legs:
            return self._prepare_legs(signal, index)
        if signal.option is not None:
            instrument, resolution = self._pick(index, signal.option, signal.amo)
            signal = dataclasses.replace(signal, symbol=instrument.trading_symbol,
                                         exchange=instrument.exchange, resolution=resolution)
        else:
            instrument = self._resolve(index, signal.symbol, signal.exchange, "symbol")
        _check_contract(signal, instrument, "")
        sizing.check_lots(signal, instrument)
        _check_split(signal.splitsize, instrument, "splitsize")
        _check_prices(signal, instrument)
        price, trigger, notes = _on_tick(signal, instrument)
        if notes:
            signal = dataclasses.replace(signal, price=price, trigger_price=trigger,
                                         notes=signal.notes + notes)
        return Prepared(signal, instrument, 0 if signal.is_flatten else 1)

    def _resolve(self, index: InstrumentIndex, symbol: str, exchange: Exchange | None,
                 field: str) -> Instrument:
        try:
            instrument = index.resolve(symbol, exchange,
                                       on=self.clock.now().astimezone(IST).date())
        except (UnknownInstrument, AmbiguousInstrument) as exc:
            said = str(exc)
            if isinstance(exc, UnknownInstrument) and self.settings.mode is Mode.PAPER:
                said += f". Note: {unknown_symbol_hint(self.settings.data_dir)}"
            raise InvalidSignal(said, {field: [said]}) from exc
        if not instrument.tradable:
            raise InvalidSignal(f"{symbol} is an index, not tradable",
                                {field: [f"{instrument.symbol} is an index; trade a contract "
                                         f"such as {instrument.symbol}1!, or an option of it "
                                         "by underlying and offset"]})
        return instrument

    def _pick(self, index: InstrumentIndex, request: OptionRequest, amo: bool,
              seen: dict[Instrument, Quote] | None = None) -> tuple[Instrument, Resolution]:
        if self.pick_option is None:
            raise InvalidSignal("options by strike offset are not available here",
                                {"underlying": ["options by offset are not set up"]})
        return self.pick_option(index, request, amo, time.monotonic() + QUOTE_WAIT_S,
                                {} if seen is None else seen)

    def _prepare_legs(self, signal: Signal, index: InstrumentIndex) -> Prepared:
        """Resolve and check every leg before anything is sent: one bad leg refuses the
        signal. BUY legs are put before SELL legs (a short option needs the margin the
        long one frees), each side in the order given."""
        resolved: list[tuple[Leg, Instrument]] = []
        rounded: tuple[str, ...] = ()
        picked: dict[OptionRequest, tuple[Instrument, Resolution]] = {}
        seen: dict[Instrument, Quote] = {}  # one quote per underlying for all the legs
        for number, leg in enumerate(signal.legs):
            where = f"legs.{number}."
            try:
                if leg.option is not None:
                    # Two legs asking the same strike get one quote and the same contract.
                    if leg.option not in picked:
                        picked[leg.option] = self._pick(index, leg.option, signal.amo, seen)
                    instrument, resolution = picked[leg.option]
                    leg = dataclasses.replace(leg, symbol=instrument.trading_symbol,
                                              exchange=instrument.exchange,
                                              resolution=resolution)
                else:
                    instrument = self._resolve(index, leg.symbol, leg.exchange, "symbol")
                    leg = dataclasses.replace(leg, symbol=instrument.trading_symbol,
                                              exchange=instrument.exchange)
                one = leg_signal(signal, leg)
                _check_contract(one, instrument, where)
                sizing.check_lots(one, instrument)
                _check_split(signal.splitsize, instrument, "splitsize")
                _check_prices(one, instrument)
                price, trigger, notes = _on_tick(one, instrument)
                if notes:
                    leg = dataclasses.replace(leg, price=price, trigger_price=trigger)
                    rounded += tuple(f"leg {number + 1}: {note}" for note in notes)
            except InvalidSignal as exc:
                details = {f"{where}{name}" if not name.startswith(("legs.", "splitsize"))
                           else name: problems for name, problems in exc.details.items()}
                raise InvalidSignal(f"leg {number + 1}: {exc.message}", details,
                                    code=exc.code) from exc
            resolved.append((leg, instrument))
        ordered = ([item for item in resolved if item[0].side is Side.BUY]
                   + [item for item in resolved if item[0].side is Side.SELL])
        first, instrument = ordered[0]
        signal = dataclasses.replace(
            signal, legs=tuple(leg for leg, _ in ordered), symbol=first.symbol,
            exchange=first.exchange, side=first.side, quantity=first.quantity,
            notes=signal.notes + rounded)
        return Prepared(signal, instrument, 1, legs=tuple(item for _, item in ordered))

    def prime_sessions(self, accounts: list[str]) -> None:
        """Read the Kotak sessions of the accounts about to be sent to, in one go."""
        SessionManager.prime([self.brokers[account].sessions for account in accounts
                              if account in self.brokers])

    def precheck(self, prepared: Prepared) -> None:
        """Rules that need no broker call: is the exchange (of every leg) open at all?

        :raises RuleRefusal:
        """
        exchanges = dict.fromkeys(i.exchange for i in (prepared.instrument, *prepared.legs))
        for exchange in exchanges:
            rules.check_session(exchange, self.clock.now(), prepared.signal.amo,
                                self.settings.risk, self.calendar)

    # --- at dispatch ----------------------------------------------------------------------

    def execute(self, claim: Claim, follow_until: float,
                sent: Arrival | None = None) -> list[OrderRow]:
        """Send a claimed signal's orders and follow them until ``follow_until`` (monotonic).

        The claim carries the rate-limit token for the first order and, when the signal was
        claimed at admission, the entry counts and possibly the orders already recorded.
        Everything that happens is written to the journal; nothing is raised. Returns the
        orders recorded for the signal (none when nothing was sent), so that whoever comes
        next can follow those the deadline left open.
        """
        row = claim.row
        signal = row.signal
        if signal is None:
            raise ValueError(f"signal {row.id} has no parsed form")
        if signal.notes:
            self.journal.signals.set_signal_status(row.id, SignalStatus.DISPATCHING,
                                                   only_from=[SignalStatus.DISPATCHING],
                                                   detail="; ".join(signal.notes))
        purse = _Tokens(self, row, claim.token)
        try:
            if claim.orders:
                orders = list(claim.orders)
                self._send_orders(orders, signal, self.brokers[row.account], purse,
                                  claim.first_sending, row.received_at)
            else:
                orders = self._send_signal(row, signal, purse, claim.counts)
        except SignalFailed as failed:
            self.journal.signals.set_signal_status(row.id, failed.status, error=failed.error)
            self.report.settled(row.id)
            return []
        except RuleRefusal as refused:
            self.journal.signals.set_signal_status(row.id, SignalStatus.REJECTED, error=ErrorInfo(
                refused.code, refused.message, refused.details))
            self.report.settled(row.id)
            return []
        except InvalidSignal as invalid:
            self.journal.signals.set_signal_status(row.id, SignalStatus.REJECTED, error=ErrorInfo(
                invalid.code, invalid.message, invalid.details))
            self.report.settled(row.id)
            return []
        except NothingToSend as nothing:
            # Kept as the signal's error row with code "noop": the answer, the dashboard and
            # `bridge signal` then show why nothing was sent (the answer as "reason").
            self.journal.signals.set_signal_status(row.id, SignalStatus.NOOP, error=ErrorInfo(
                "noop", nothing.message, nothing.details))
            self.report.settled(row.id)
            return []
        finally:
            purse.release()
        if not orders:
            self.journal.signals.set_signal_status(
                row.id, SignalStatus.NOOP,
                detail="the position is already where the signal wants it: nothing to send")
            self.report.settled(row.id)
            return []
        if signal.legs:
            self.legs.check(row.id, self)
        if sent is not None:
            sent.arrive_and_wait(follow_until)
        # Each order's state, and the signal's with it, is recorded as Kotak answers.
        self.follow(orders, follow_until)
        return orders

    def _send_signal(self, row: SignalRow, signal: Signal, purse: _Tokens,
                     counts: EntryCounts | None) -> list[OrderRow]:
        instrument = self._instrument(row)
        broker = self.brokers[row.account]
        if signal.legs:
            return self._place_legs(row, signal, broker, purse)
        self.precheck(Prepared(signal, instrument, row.priority))
        if signal.position_size is None:
            plan = sizing.size(signal, instrument, None)
            refusal = self._entry_refusal(signal, instrument, plan, counts, row.account)
            if refusal is None:
                return self._place(row, signal, instrument, broker, plan, None, purse)
        # A target needs the live position; a refused plain signal may still be an exit.
        with self.position_lock(row.account, instrument, signal.product):
            held = self._held(broker, row.account, instrument, signal)
            plan = sizing.size(signal, instrument, held.position, held.account)
            if signal.position_size is not None and plan.total == 0:
                raise _reached(signal, instrument, held)
            refusal = self._entry_refusal(signal, instrument, plan, account=row.account)
            return self._place(row, signal, instrument, broker, plan, refusal, purse)

    def _held(self, broker: KotakClient, account: str, instrument: Instrument,
              signal: Signal) -> Held:
        """The position ``signal`` is sized against: the account's net position plus our
        working orders, or, for a target scoped to its strategy, the strategy's own from the
        journal (the account's is read too: only what reduces both is an exit)."""
        filled, working = self._position(broker, account, instrument, signal.product)
        if signal.position_size is None or signal.position_scope is PositionScope.ACCOUNT:
            return Held(PositionScope.ACCOUNT, filled + working, working)
        day_start = self._day_start()
        since = day_start if signal.product is Product.MIS else None
        mine = strategy_position(
            self._engine, account=account, strategy=signal.strategy,
            exchange=instrument.exchange.value, trading_symbol=instrument.trading_symbol,
            product=signal.product.value, since=since)
        if mine.since is None:
            counted = "its orders in the journal"
        elif mine.since == day_start:
            counted = "its orders today"
        else:
            counted = (f"its orders since the square-off at "
                       f"{mine.since.astimezone(IST):%H:%M} IST")
        return Held(PositionScope.STRATEGY, mine.total, mine.working,
                    account=filled + working, counted=counted)

    def _place(self, row: SignalRow, signal: Signal, instrument: Instrument,
               broker: KotakClient, plan: sizing.Sizing, refusal: RuleRefusal | None,
               purse: _Tokens) -> list[OrderRow]:
        quantity = plan.exit_quantity if refusal is not None else plan.total
        if refusal is not None and quantity == 0:
            raise refusal
        if quantity == 0:
            return []
        if refusal is not None:
            self.journal.signals.set_signal_status(
                row.id, SignalStatus.DISPATCHING, only_from=[SignalStatus.DISPATCHING],
                detail=f"entry part refused ({refusal.message}); sending only the exit of "
                       f"{plan.exit_quantity}")
        parts = self._slices(signal, instrument, quantity)
        is_exit = refusal is not None or plan.entry_quantity == 0
        plans = [self._plan(signal, instrument, plan.side, part, is_exit) for part in parts]
        return self._record_and_send(row, signal, broker, plans, purse)

    def _place_legs(self, row: SignalRow, signal: Signal, broker: KotakClient,
                    purse: _Tokens) -> list[OrderRow]:
        """Record every leg's orders (BUY legs first), then send them one by one.

        Each leg is an entry: the day's entry rules are checked for every leg before
        anything is sent, and one refusal refuses the whole signal (a strategy's legs are
        meant together; a lone short leg is a different, riskier position).
        """
        instruments = [self._leg_instrument(leg) for leg in signal.legs]
        self.precheck(Prepared(signal, instruments[0], row.priority, tuple(instruments)))
        plans: list[OrderPlan] = []
        for leg, instrument in zip(signal.legs, instruments, strict=True):
            one = leg_signal(signal, leg)
            sized = sizing.size(one, instrument, None)
            refusal = self._entry_refusal(one, instrument, sized, account=row.account)
            if refusal is not None:
                raise refusal
            plans += [self._plan(one, instrument, leg.side, part, False)
                      for part in self._slices(one, instrument, leg.quantity)]
        return self._record_and_send(row, signal, broker, plans, purse)

    def _record_and_send(self, row: SignalRow, signal: Signal, broker: KotakClient,
                         plans: list[OrderPlan], purse: _Tokens) -> list[OrderRow]:
        """Journal every order of the signal in one transaction, then send them: after a
        crash each is found recorded, so none is sent twice or forgotten."""
        first = purse.take()
        orders, first_sending = self.journal.orders.add_orders(row.id, row.account, signal.strategy,
                                                               plans, send_first_with=first)
        purse.give_back(first)
        self._send_orders(orders, signal, broker, purse, first_sending, row.received_at)
        return orders

    def _slices(self, signal: Signal, instrument: Instrument, quantity: int) -> list[int]:
        """The order sizes ``quantity`` goes out as: at most ``splitsize`` each when the
        signal asks, and never above the exchange's freeze limit."""
        parts = sizing.slices(quantity, instrument, self.settings.risk.freeze_split)
        if not signal.splitsize:
            return parts
        return [piece for part in parts for piece in sizing.by_size(part, signal.splitsize)]

    def _send_orders(self, orders: list[OrderRow], signal: Signal, broker: KotakClient,
                     purse: _Tokens, first_sending: bool,
                     arrived: datetime | None = None) -> None:
        """Send recorded orders one by one, each with its own rate-limit token; stop at the
        first refusal (the rest are recorded as not sent)."""
        for index, order in enumerate(orders):
            token = purse.take()
            if token is None:
                self._abandon(orders[index:], "not sent: the signal's validity ran out waiting "
                                              "for the broker rate limit")
                break
            try:
                instrument = self._order_instrument(order)
            except InvalidSignal as exc:
                purse.give_back(token)
                self._abandon(orders[index:], f"not sent: {exc.message}")
                break
            state = self._send(order, signal, instrument, broker, token,
                               marked=index == 0 and first_sending, arrived=arrived)
            if state in (OrderState.REJECTED, OrderState.FAILED) and index + 1 < len(orders):
                self._abandon(orders[index + 1:], "not sent: an earlier part of this signal "
                                                  "was refused")
                break

    def _send(self, order: OrderRow, signal: Signal, instrument: Instrument,
              broker: KotakClient, token: int, marked: bool = False,
              arrived: datetime | None = None) -> OrderState:
        """Send one order once; ``marked``: already recorded as ``sending`` in its turn.

        The order's own product and price type are sent (a leg may differ from the signal)."""
        request = OrderRequest(
            instrument=instrument, side=Side(order.side), quantity=order.quantity,
            product=Product(order.product), order_type=OrderType(order.order_type),
            price=Decimal(order.price) if order.price else None,
            trigger_price=Decimal(order.trigger_price) if order.trigger_price else None,
            validity=signal.validity,
            disclosed_quantity=min(signal.disclosed_quantity, order.quantity),
            amo=signal.amo, tag=order.tag)
        if (self._price_hint is not None and signal.price is not None and not signal.legs
                and signal.order_type is OrderType.MARKET):
            self._price_hint(instrument, signal.price)
        return self.send(order, request, broker, token, marked, arrived)

    def send(self, order: OrderRow, request: OrderRequest, broker: KotakClient, token: int,
             marked: bool = False, arrived: datetime | None = None) -> OrderState:
        """Send one recorded order once, with the rate-limit token ``token``, and record
        Kotak's answer (or its absence: ``unknown``, settled from the book by tag).

        ``arrived``: when the signal's request came in, for the answer-latency observer."""
        if not marked:
            self.journal.queue.start_sending(order, token)
        try:
            broker_id = broker.place_order(request)
        except BaseException as exc:
            if isinstance(exc, KotakError) and _answered(exc):
                self._observe_answer(arrived)
            self.journal.queue.finish_sending(token)
            if isinstance(exc, KotakError):
                return self._placement_failed(order, exc, broker)
            raise
        self._observe_answer(arrived)
        self.journal.orders.set_order(order.id, OrderState.PENDING, broker_order_id=broker_id,
                                      detail=f"accepted by Kotak as order {broker_id}",
                                      answered=token)
        return OrderState.PENDING

    def _placement_failed(self, order: OrderRow, exc: KotakError,
                          broker: KotakClient) -> OrderState:
        """Record why a placement did not come back accepted."""
        if isinstance(exc, BrokerRejected):
            return self._fail(order, OrderState.REJECTED, "broker_rejected", exc.message)
        if isinstance(exc, SessionInvalid):
            return self._fail(order, OrderState.FAILED, "broker_session",
                              f"no valid Kotak session: {exc.message}")
        if isinstance(exc, RateLimited):
            return self._fail(order, OrderState.FAILED, "broker_rate_limited", exc.message)
        if isinstance(exc, BrokerUnavailable):
            return self._fail(order, OrderState.FAILED, "broker_unavailable", exc.message)
        if isinstance(exc, ProtocolError):
            return self._fail(order, OrderState.FAILED, "broker_protocol", exc.message)
        if isinstance(exc, RequestInvalid):
            return self._fail(order, OrderState.FAILED, "not_sent", exc.message)
        # OutcomeUnknown, or anything unforeseen after sending: it may have arrived.
        self.journal.orders.set_order(order.id, OrderState.UNKNOWN, error_code="outcome_unknown",
                                      reason=exc.message,
                                      detail=f"{exc.message}; checking Kotak's order book by tag")
        state = self.resolve_unknown(order, broker)
        if state is OrderState.UNKNOWN:
            self.tell_unknown(order, exc.message)
        return state

    def _observe_answer(self, arrived: datetime | None) -> None:
        if self._on_answer is None or arrived is None:
            return
        try:
            self._on_answer(max((self.clock.now() - arrived).total_seconds(), 0.0))
        except Exception:
            log.debug("the answer observer failed", exc_info=True)

    def _fail(self, order: OrderRow, state: OrderState, code: str, reason: str) -> OrderState:
        changed = self.journal.orders.set_order(order.id, state, error_code=code, reason=reason,
                                                detail=reason)
        if changed and state is OrderState.REJECTED:
            self._tell("order_rejected", "error", order, f"rejected by Kotak: {reason}")
        self.report.settled(order.signal_id)
        return state

    def _abandon(self, orders: list[OrderRow], reason: str) -> None:
        for order in orders:
            self.journal.orders.set_order(order.id, OrderState.FAILED, error_code="not_sent",
                                          reason=reason, detail=reason)
        if orders:
            self.report.settled(orders[0].signal_id)

    # --- following orders -----------------------------------------------------------------

    def follow(self, orders: list[OrderRow], until: float) -> None:
        """Poll each accepted order's history until it is final or ``until`` (monotonic).

        The journal is read once; after that each order's state is Kotak's latest answer
        (the tracker leaves orders this young alone, so nobody else moves them meanwhile).
        """
        pause = 0.05
        if time.monotonic() + pause >= until:
            return  # not followed here (sent from the queue): the tracker follows them
        live = [o for o in self._current(orders) if not o.status.final and o.broker_order_id]
        while live and time.monotonic() + pause < until:
            still: list[OrderRow] = []
            for order in live:
                try:
                    history = self.brokers[order.account].order_history(
                        order.broker_order_id or "", deadline=until)
                except KotakError as exc:
                    log.info("following order %s: %s", order.broker_order_id, exc.message)
                    return
                if not history:
                    still.append(order)
                    continue
                self.apply(order, history[0])
                if not _BROKER_STATE[history[0].status].final:
                    still.append(order)
            live = still
            if live:
                time.sleep(pause)
                pause = min(pause * 2, 0.25)

    def _current(self, orders: list[OrderRow]) -> list[OrderRow]:
        """These orders as the journal has them now (one query when they share a signal)."""
        signal_ids = {order.signal_id for order in orders}
        if len(signal_ids) == 1 and None not in signal_ids:
            wanted = {order.id for order in orders}
            return [o for o in self.journal.orders.orders_of(orders[0].signal_id or 0)
                    if o.id in wanted]
        return [o for o in (self.journal.orders.order(order.id) for order in orders)
                if o is not None]

    def apply(self, order: OrderRow, broker: BrokerOrder) -> bool:
        """Record what Kotak says about one of our orders; return whether anything changed."""
        change = _change(order, broker)
        changed = self.journal.orders.set_order(order.id, change.state, detail=change.detail,
                                                **change.fields)
        self._applied(order, broker, change.state, changed)
        return changed

    def apply_many(self, found: list[tuple[OrderRow, BrokerOrder]]) -> list[bool]:
        """:meth:`apply` for many orders at once, in one transaction (the tracker following
        many accounts' orders)."""
        changes = [_change(order, broker) for order, broker in found]
        results = self.journal.orders.set_orders(changes)
        for (order, broker), change, changed in zip(found, changes, results, strict=True):
            self._applied(order, broker, change.state, changed)
        return results

    def _applied(self, order: OrderRow, broker: BrokerOrder, state: OrderState,
                 changed: bool) -> None:
        """Tell of what a recorded change means: a settled signal, a rejection, a leg."""
        if not changed:
            return
        if state.final:
            self.report.settled(order.signal_id)
        # ``order`` is the caller's (older) view: only a move into "rejected" is news.
        if state is OrderState.REJECTED and order.status is not state:
            reason = broker.rejection_reason
            self._tell("order_rejected", "error", order,
                       f"rejected by Kotak: {reason or broker.broker_status or 'no reason'}")
        # A leg refused, or a leg of unknown outcome found (after a crash): a multi-leg
        # signal may have just turned partial.
        if state is OrderState.REJECTED or order.status is OrderState.UNKNOWN:
            self.legs.check(order.signal_id, self)

    # --- a multi-leg signal's failed leg (bridge.orders.legs) -----------------------------

    def refresh(self, order: OrderRow) -> OrderRow | None:
        """Ask Kotak for one of our orders now and record the answer."""
        if not order.broker_order_id:
            return self.journal.orders.order(order.id)
        try:
            placed = self.brokers[order.account].order(
                order.broker_order_id, deadline=time.monotonic() + BOOK_WAIT_S)
        except KotakError as exc:
            log.info("reading order %s: %s", order.broker_order_id, exc.message)
            placed = None
        if placed is not None:
            self.apply(order, placed)
        return self.journal.orders.order(order.id)

    def exit_plan(self, order: OrderRow, quantity: int) -> OrderPlan:
        """A market order closing ``quantity`` of what ``order`` opened."""
        return OrderPlan(exchange=order.exchange, trading_symbol=order.trading_symbol,
                         side=Side(order.side).opposite.value, quantity=quantity,
                         product=order.product, order_type=OrderType.MARKET.value, price=None,
                         trigger_price=None, is_exit=True, tag=new_tag())

    def send_exits(self, row: SignalRow, plans: list[OrderPlan]) -> list[OrderRow]:
        """Record closing orders under the signal and send each (one failing does not stop
        the others: each closes its own leg); returns them as they stand after sending."""
        orders, _ = self.journal.orders.add_orders(row.id, row.account, row.strategy, plans,
                                                   send_first_with=None)
        broker = self.brokers[row.account]
        # The signal's own validity may be spent; closing what stands must not wait on it.
        purse = _Tokens(self, dataclasses.replace(
            row, expires_at=self.clock.now() + timedelta(seconds=30)), None)
        try:
            for order in orders:
                token = purse.take()
                if token is None:
                    self._abandon([order], "not sent: the broker rate limit stayed full")
                    continue
                request = OrderRequest(
                    instrument=self._order_instrument(order), side=Side(order.side),
                    quantity=order.quantity, product=Product(order.product),
                    order_type=OrderType.MARKET, tag=order.tag)
                self.send(order, request, broker, token)
        finally:
            purse.release()
        return [o for o in (self.journal.orders.order(order.id) for order in orders)
                if o is not None]

    def resolve_unknown(self, order: OrderRow, broker: KotakClient) -> OrderState:
        """Look for an order of unknown outcome in Kotak's book by its tag (once)."""
        try:
            book = broker.order_book()
        except KotakError as exc:
            log.warning("order %s (tag %s) outcome unknown; order book unreadable: %s",
                        order.id, order.tag, exc.message)
            return OrderState.UNKNOWN
        for row in book:
            if row.tag == order.tag:
                current = self.journal.orders.order(order.id)
                if current is not None:
                    self.apply(current, row)
                return _BROKER_STATE[row.status]
        return OrderState.UNKNOWN

    def settle(self, signal_id: int) -> SignalStatus | None:
        """Derive the signal's status from its orders and record it when it changes."""
        return self.journal.signals.settle(signal_id)

    # --- telling the operator (a notice row; Telegram and the webhook send it later) -------

    def tell_unknown(self, order: OrderRow, why: str) -> None:
        """An order was sent and no answer came: say so, and that nothing is re-sent."""
        self._tell("order_unknown", "warning", order,
                   f"outcome unknown after sending ({why}). It is being settled from Kotak's "
                   f"order book by its tag {order.tag} and will never be re-sent blindly.")

    def tell_settled(self, order: OrderRow, outcome: str) -> None:
        """An order of unknown outcome was settled from the order book."""
        self._tell("order_unknown", "info", order,
                   f"settled from Kotak's order book: {outcome}")

    def _tell(self, kind: str, level: str, order: OrderRow, text: str) -> None:
        """Raise a notice about ``order``; never fails the order path."""
        if self.notifier is None:
            return
        try:
            row = (self.journal.signals.signal(order.signal_id)
                   if order.signal_id is not None else None)
            self.notifier.send(kind, level, (
                f"{order.side} {order.quantity} {order.exchange}:{order.trading_symbol} "
                f"{order.product} (strategy {order.strategy or '-'}, alert "
                f"{row.alert_id if row is not None else '-'}): {text}"))
        except Exception:
            log.exception("could not raise the %s notice of order %s", kind, order.id)

    # --- helpers --------------------------------------------------------------------------

    def _instrument(self, row: SignalRow) -> Instrument:
        exchange, _, trading_symbol = row.instrument.partition(":")
        return self._listed(Exchange(exchange), trading_symbol)

    def _leg_instrument(self, leg: Leg) -> Instrument:
        if leg.exchange is None:
            raise InvalidSignal(f"leg {leg.symbol} was journaled without its exchange",
                                {"legs": ["a leg's contract is unknown"]})
        return self._listed(leg.exchange, leg.symbol)

    def _order_instrument(self, order: OrderRow) -> Instrument:
        return self._listed(Exchange(order.exchange), order.trading_symbol)

    def _listed(self, exchange: Exchange, trading_symbol: str) -> Instrument:
        try:
            index = self.instruments.current()
        except InstrumentError as exc:
            raise SignalFailed(SignalStatus.FAILED,
                               ErrorInfo("instruments_unavailable", str(exc), {})) from exc
        instrument = index.get(exchange, trading_symbol)
        if instrument is None:
            name = f"{exchange.value}:{trading_symbol}"
            raise InvalidSignal(f"{name} is no longer in today's scrip master",
                                {"symbol": [f"{name} is no longer listed"]})
        return instrument

    def _plan(self, signal: Signal, instrument: Instrument, side: Side, quantity: int,
              is_exit: bool) -> OrderPlan:
        tick = instrument.tick_size
        price = trigger = None
        # On the tick already since intake (_on_tick); kept here for orders planned from an
        # older journaled signal. The plan's side, not the signal's, decides the direction.
        if signal.order_type.needs_price and signal.price is not None:
            price = str(price_on_tick(signal.price, tick, side))
        if signal.order_type.needs_trigger and signal.trigger_price is not None:
            trigger = str(price_on_tick(signal.trigger_price, tick, side))
        return OrderPlan(
            exchange=instrument.exchange.value, trading_symbol=instrument.trading_symbol,
            side=side.value, quantity=quantity, product=signal.product.value,
            order_type=signal.order_type.value, price=price, trigger_price=trigger,
            is_exit=is_exit, tag=new_tag())

    def planner(self, prepared: Prepared) -> Planner | None:
        """For a plain signal, how to make its orders from the entry counts at admission
        (``None`` from the planner: a rule objects, so decide at dispatch, where an exit part
        may still go). A target position needs the live position: no planner."""
        signal, instrument = prepared.signal, prepared.instrument
        if signal.position_size is not None or signal.legs:
            return None  # a multi-leg signal checks every leg's rules at dispatch

        def plan(counts: EntryCounts) -> list[OrderPlan] | None:
            sized = sizing.size(signal, instrument, None)
            if self._entry_refusal(signal, instrument, sized, counts,
                                   signal.account) is not None:
                return None
            try:
                parts = self._slices(signal, instrument, sized.total)
            except RuleRefusal:
                return None
            return [self._plan(signal, instrument, sized.side, part, False) for part in parts]

        return _never_raising(plan, f"a {signal.strategy or 'plain'} signal")

    def claim_plan(self, row: SignalRow) -> tuple[EntryQuery | None, Planner | None]:
        """For a queued signal the dispatcher is claiming: what its entry rules count and
        how its orders are made, so they are recorded with the claim (as at admission).
        ``(None, None)`` leaves everything to :meth:`execute`: a signal a rule refuses now,
        whose contract is gone, that needs the live position, or whose planning fails.

        This runs inside the claim's transaction, which holds the queue of every account
        claimed with it: nothing here may load the scrip master (a new day's would hold
        them all meanwhile) or raise (one signal's bug would stop every account's queue;
        :meth:`execute` meets it again and fails that signal alone)."""
        signal = row.signal
        index = self.instruments.loaded()
        if signal is None or index is None or index.trading_day != today_ist(self.clock):
            return None, None
        try:
            prepared = Prepared(signal, self._instrument(row), row.priority)
            self.precheck(prepared)
            planner = self.planner(prepared)
            query = self.entry_query(signal, prepared.instrument, row.account)
        except (RuleRefusal, InvalidSignal, SignalFailed):
            return None, None
        except Exception:
            log.exception("signal %d: planning its orders at the claim failed; its sender "
                          "plans them", row.id)
            return None, None
        if planner is None:
            return None, None
        return query, _never_raising(planner, f"signal {row.id}")

    def entry_query(self, signal: Signal, instrument: Instrument,
                    account: str = "") -> EntryQuery:
        """What the entry rules will count for this signal today, up to the account's caps."""
        risk = self.accounts.risk(account or signal.account)
        return EntryQuery(since=self._day_start(), strategy=signal.strategy,
                          exchange=instrument.exchange.value,
                          trading_symbol=instrument.trading_symbol,
                          account_cap=risk.max_orders_per_day,
                          strategy_cap=risk.max_orders_per_strategy,
                          sum_quantity=risk.max_quantity_per_day > 0)

    def _entry_refusal(self, signal: Signal, instrument: Instrument, plan: sizing.Sizing,
                       counted: EntryCounts | None = None,
                       account: str = "") -> RuleRefusal | None:
        if plan.entry_quantity == 0:
            return None
        found = counted or self.journal.orders.entry_counts(
            account, self.entry_query(signal, instrument, account))
        counts = rules.Counts(account_entries=found.account_entries,
                              strategy_entries=found.strategy_entries,
                              strategy_quantity=found.strategy_quantity)
        return rules.entry_refusal(
            exchange=instrument.exchange, strategy=signal.strategy,
            quantity=plan.entry_quantity, now=self.clock.now(),
            kill_switch=found.kill_switch,
            squareoff=self.settings.squareoff_times[instrument.exchange],
            risk=self.accounts.risk(account or signal.account), counts=counts,
            product=signal.product,
            squared_off=found.squared_off)

    def _day_start(self) -> datetime:
        local = self.clock.now().astimezone(IST)
        return local.replace(hour=0, minute=0, second=0, microsecond=0)

    def _position(self, broker: KotakClient, account: str, instrument: Instrument,
                  product: Product) -> tuple[int, int]:
        """Net position, and what our orders still working may add, for this instrument and
        product.

        Our orders are read before the positions: an order filling between the two reads is
        then counted twice, which can only make the bridge trade too little.
        """
        try:
            working = self._working(broker, account, instrument, product)
            positions = broker.positions()
        except SessionInvalid as exc:
            raise SignalFailed(SignalStatus.FAILED, ErrorInfo(
                "broker_session", f"no valid Kotak session: {exc.message}", {})) from exc
        except (BrokerUnavailable, ProtocolError) as exc:
            raise SignalFailed(SignalStatus.FAILED, ErrorInfo(
                "broker_unavailable", f"could not read the position: {exc.message}", {})) from exc
        net = sum(p.net_quantity for p in positions
                  if p.exchange is instrument.exchange
                  and p.trading_symbol == instrument.trading_symbol
                  and p.product == product.value)
        return net, working

    def _working(self, broker: KotakClient, account: str, instrument: Instrument,
                 product: Product) -> int:
        """The signed quantity our open orders in this instrument may still add.

        Each order is asked for by its number, not through the whole order book, which grows
        all day and hangs for up to a minute after a burst of orders (Kotak-neo-api-v2 #68).
        Only a request that got no answer has no number: then the book is read once, within
        ``BOOK_WAIT_S``, to find it by its tag.
        """
        ours = [o for o in self.journal.orders.working_orders(account)
                if o.exchange == instrument.exchange.value
                and o.trading_symbol == instrument.trading_symbol and o.product == product.value]
        if not ours:
            return 0
        found: dict[str, BrokerOrder] = {}
        if any(not o.broker_order_id and o.status in (OrderState.SENDING, OrderState.UNKNOWN)
               for o in ours):
            book = broker.order_book(deadline=time.monotonic() + BOOK_WAIT_S)
            found = {placed.tag: placed for placed in book if placed.tag}
        else:
            for mine in ours:
                placed = broker.order(mine.broker_order_id) if mine.broker_order_id else None
                if placed is not None:
                    found[mine.tag] = placed
        working = 0
        for mine in ours:
            placed = found.get(mine.tag)
            if placed is None:
                if mine.status in (OrderState.CREATED, OrderState.SENDING, OrderState.UNKNOWN):
                    working += mine.signed_remaining
                continue
            if placed.status.is_working:
                remaining = placed.quantity - placed.filled_quantity - placed.cancelled_quantity
                working += remaining if placed.side is Side.BUY else -remaining
        return working

    def position_lock(self, account: str, instrument: Instrument,
              product: Product) -> AbstractContextManager[None]:
        """Serialise position-dependent work per account, instrument and product, across
        every process sharing the journal."""
        return named_lock(self._engine, f"position:{account}:{instrument_key(instrument)}:"
                                        f"{product.value}", timeout=30.0)

    def wait_token(self, row: SignalRow) -> int | None:
        """A rate-limit token for another order of this signal, waiting while it is valid."""
        deadline = row.expires_at or (self.clock.now() + timedelta(seconds=30))
        while self.clock.now() < deadline:
            token, wait = self.journal.queue.take_token(row.account,
                                                        self.accounts.rate(row.account))
            if token is not None:
                return token
            time.sleep(min(wait, 0.25))
        return None


class _Tokens:
    """The rate-limit tokens of one signal: the claim's for its first order, then new ones;
    whatever was not spent is given back."""

    def __init__(self, service: OrderService, row: SignalRow, first: int | None) -> None:
        self._service = service
        self._row = row
        self._spare = first

    def take(self) -> int | None:
        if self._spare is not None:
            token, self._spare = self._spare, None
            return token
        return self._service.wait_token(self._row)

    def give_back(self, token: int | None) -> None:
        """Keep a token taken but not yet spent, for the next :meth:`take`."""
        if token is not None:
            self._spare = token

    def release(self) -> None:
        if self._spare is not None:
            self._service.journal.queue.release_token(self._spare)
            self._spare = None


def _answered(error: KotakError) -> bool:
    """Whether Kotak answered (refused, or rate-limited) rather than never got or answered
    the request."""
    if isinstance(error, OutcomeUnknown):
        return False
    return isinstance(error, RateLimited) or not isinstance(error, BrokerUnavailable)


def leg_signal(signal: Signal, leg: Leg) -> Signal:
    """One leg seen as a signal of its own (its contract, side, size, product and prices),
    so the checks and the order plan of a plain signal apply to it unchanged."""
    return dataclasses.replace(
        signal, symbol=leg.symbol, exchange=leg.exchange, side=leg.side,
        quantity=leg.quantity, order_type=leg.order_type,
        product=leg.product or signal.product, price=leg.price,
        trigger_price=leg.trigger_price, disclosed_quantity=0, position_size=None,
        option=leg.option, resolution=leg.resolution, legs=())


def _check_contract(signal: Signal, instrument: Instrument, where: str) -> None:
    """The product must suit the contract's exchange and kind.

    :raises InvalidSignal: naming the field (``legs.<n>.product`` for a leg).
    """
    problem = product_problem(signal.product, instrument.exchange)
    if problem:
        raise InvalidSignal(problem, {f"{where}product": [problem]})
    if instrument.expiry is not None and signal.product is Product.CNC:
        raise InvalidSignal("CNC is for cash", {f"{where}product": ["CNC is for cash equity"]})


def _check_split(splitsize: int, instrument: Instrument, field: str) -> None:
    """A split size must be whole lots of the contract.

    :raises InvalidSignal: naming the field and the lot size.
    """
    if splitsize and splitsize % instrument.lot_size:
        raise InvalidSignal(
            f"splitsize {splitsize} is not whole lots of {instrument.trading_symbol} (lot size "
            f"{instrument.lot_size})",
            {field: [f"must be a multiple of the lot size {instrument.lot_size} of "
                     f"{instrument.exchange.value}:{instrument.trading_symbol}"]})


def _on_tick(signal: Signal, instrument: Instrument) -> tuple[
        Decimal | None, Decimal | None, tuple[str, ...]]:
    """The signal's limit and trigger prices on the instrument's tick grid, a buy's rounded
    down and a sell's up (:func:`bridge.domain.price_on_tick`), and a note for each one that
    moved, so the trader sees the price that was sent and why."""
    tick = instrument.tick_size
    way = "a buy is rounded down" if signal.side is Side.BUY else "a sell is rounded up"
    notes: list[str] = []
    placed: list[Decimal | None] = []
    for field, value, needed in (("price", signal.price, signal.order_type.needs_price),
                                 ("trigger_price", signal.trigger_price,
                                  signal.order_type.needs_trigger)):
        if not needed or value is None:
            placed.append(value)
            continue
        on_grid = price_on_tick(value, tick, signal.side)
        if on_grid != value:
            notes.append(f"{field} {value} rounded to {on_grid} (tick {tick}; {way}, never "
                         f"{'paying more' if signal.side is Side.BUY else 'selling for less'} "
                         "than asked)" if field == "price" else
                         f"{field} {value} rounded to {on_grid} (tick {tick}; {way}, so the "
                         "stop fires no later than asked)")
        placed.append(on_grid)
    return placed[0], placed[1], tuple(notes)


def _reached(signal: Signal, instrument: Instrument, held: Held) -> NothingToSend:
    """Why a target position needs no order, in the words a trader checks it by."""
    name = f"{instrument.exchange.value}:{instrument.trading_symbol} {signal.product.value}"
    target = signal.position_size
    pending = (f" ({held.position - held.working} filled, {held.working} in working orders)"
               if held.working else "")
    if held.scope is PositionScope.STRATEGY:
        where = (f"strategy {signal.strategy!r} holds {held.position} of {name}{pending}, by "
                 f"{held.counted} (the account's net position is {held.account})")
    else:
        where = f"the account's net position in {name} is {held.position}{pending}"
    details: dict[str, Any] = {"position_scope": held.scope.value, "position": held.position,
                               "working": held.working, "target": target}
    if held.account is not None:
        details["account_position"] = held.account
    return NothingToSend(f"already at the target: {where}, target {target}; nothing sent",
                         details)


def _check_prices(signal: Signal, instrument: Instrument) -> None:
    """Refuse at intake a price or trigger that the instrument's tick rounds to nothing:
    sent, Kotak could only refuse it, and an order refused at dispatch reads like a lost one.

    :raises InvalidSignal: naming the field.
    """
    tick = instrument.tick_size
    for field, value, needed in (("price", signal.price, signal.order_type.needs_price),
                                 ("trigger_price", signal.trigger_price,
                                  signal.order_type.needs_trigger)):
        if needed and value is not None and price_on_tick(value, tick, signal.side) <= 0:
            raise InvalidSignal(
                f"{field} {value} rounds to 0 at {instrument.trading_symbol}'s tick of "
                f"{tick}: give a price of at least {tick}",
                {field: [f"rounds to 0 at the tick size {tick}"]})


def _change(order: OrderRow, broker: BrokerOrder) -> OrderChange:
    """The change to ``order`` that Kotak's report ``broker`` makes."""
    state = _BROKER_STATE[broker.status]
    reason = broker.rejection_reason if state is OrderState.REJECTED else None
    fields: dict[str, Any] = {
        "broker_order_id": broker.order_id, "broker_status": broker.broker_status,
        "filled_quantity": broker.filled_quantity,
        "average_price": str(broker.average_price) if broker.filled_quantity else None,
    }
    if reason:
        fields.update(reason=f"Kotak rejected it: {reason}", error_code="broker_rejected")
    if order.status is OrderState.UNKNOWN and state.accepted:
        fields.update(error_code=None, reason=None)  # found in the book: it arrived
    return OrderChange(order.id, state, _describe(broker, state), fields=fields)


def new_tag() -> str:
    """Our correlation id on the order (Kotak's ``ig``, echoed as ``GuiOrdId``)."""
    return "b" + secrets.token_hex(8)


def _describe(broker: BrokerOrder, state: OrderState) -> str:
    text = f"Kotak: {broker.broker_status or state.value}"
    if broker.filled_quantity:
        text += f", filled {broker.filled_quantity} at {broker.average_price}"
    if broker.rejection_reason:
        text += f" ({broker.rejection_reason})"
    return text


def _never_raising(plan: Planner, whose: str) -> Planner:
    """``plan``, answering ``None`` where it would raise. A planner runs inside the
    transaction that admits or claims signals: an error there would undo the signal's
    journaling, or stop every queue claimed with it pass after pass. Its sender plans it
    again, and fails that signal alone if it must."""

    def guarded(counts: EntryCounts) -> list[OrderPlan] | None:
        try:
            return plan(counts)
        except Exception:
            log.exception("planning the orders of %s failed; its sender plans them", whose)
            return None

    return guarded
