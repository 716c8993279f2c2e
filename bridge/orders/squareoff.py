"""Square-off: close every intraday (MIS) position of an account on some exchanges, and prove
the book flat from Kotak's position book.

1. New intraday entries on those exchanges are refused for the rest of the day, when the
   caller says so: the scheduled square-off always (the market is closing), one by hand only
   when the trader chose it (see :mod:`bridge.orders.entries`).
2. Signals still being worked on (queued or sending) are waited for, up to ``settle_wait``,
   so their fills are closed instead of raced; an instrument still busy after that is left
   alone and reported.
3. Each round cancels our and the trader's working intraday orders there (open, trigger
   pending), reads the position book, and closes every non-zero intraday position with an
   order of the position's own product, the opposite side and its whole quantity (split at
   the freeze quantity). The first round goes at market (Kotak turns it into a protected
   limit); later rounds re-price as marketable limits one protection band beyond the last
   traded price, because a protected market order can sit unfilled on the wrong side of a
   moving market. Each round waits ``fill_wait`` seconds for the fills.
4. The position book is read once more: flat, or exactly what is left and why.

Closes are recorded in the journal before they are sent (orders without a signal, strategy
``squareoff``) and go through the shared broker rate limit. A close is sent under the same
per-instrument lock a signal takes, and skipped for that round if a signal placed an order in
the instrument since the book was read: a close is never computed from a stale position.
CNC, NRML and MTF positions are never touched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from bridge.clock import IST, Clock
from bridge.config import Settings
from bridge.domain import (
    BrokerOrder,
    Exchange,
    Instrument,
    OrderRequest,
    OrderType,
    Position,
    Product,
    Side,
)
from bridge.errors import RuleRefusal
from bridge.journal.journal import Journal
from bridge.journal.rows import OrderPlan, OrderRow, OrderState
from bridge.kotak.client import KotakClient
from bridge.kotak.errors import BrokerRejected, BrokerUnavailable, KotakError
from bridge.kotak.instruments import InstrumentError, InstrumentStore
from bridge.kotak.protection import protected_limit
from bridge.orders import sizing
from bridge.orders.entries import HOW_TO_ALLOW
from bridge.orders.service import BOOK_WAIT_S, OrderService, instrument_key, new_tag

log = logging.getLogger(__name__)

STRATEGY = "squareoff"
POLL_S = 0.1


@dataclass
class Close:
    """One closing order: planned, or sent and what became of it."""

    exchange: str
    trading_symbol: str
    side: str
    quantity: int
    order_type: str
    price: str | None
    round: int
    order_id: int | None = None
    broker_order_id: str | None = None
    outcome: str = "planned"
    reason: str = ""

    def line(self) -> str:
        price = f" at {self.price}" if self.price else ""
        done = f": {self.outcome}" + (f" ({self.reason})" if self.reason else "")
        return (f"{self.side} {self.quantity} {self.exchange}:{self.trading_symbol} "
                f"{self.order_type}{price} MIS{done}")


@dataclass(frozen=True)
class Left:
    """A position still open after the square-off."""

    exchange: str
    trading_symbol: str
    product: str
    net: int
    reason: str

    def line(self) -> str:
        return f"{self.exchange}:{self.trading_symbol} {self.product} net {self.net:+d}: " \
               f"{self.reason}"


@dataclass
class SquareOffReport:
    account: str
    exchanges: list[str]
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None = None
    rounds: int = 0
    cancelled: list[str] = field(default_factory=list)
    closes: list[Close] = field(default_factory=list)
    left: list[Left] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: what the trader should know that did not stop the square-off
    notes: list[str] = field(default_factory=list)
    #: Kotak's order book did not answer in time (it hangs after bursts of orders): orders
    #: were then asked for one by one
    book_unanswered: bool = False

    @property
    def flat(self) -> bool:
        return not self.left and not self.problems

    def summary(self) -> str:
        where = ",".join(self.exchanges)
        if self.dry_run:
            return (f"square-off dry run for account {self.account} on {where}: would cancel "
                    f"{len(self.cancelled)} orders and send {len(self.closes)} closes")
        sent = len([c for c in self.closes if c.order_id is not None])
        if self.flat:
            return (f"square-off of account {self.account} on {where}: FLAT (verified from the "
                    f"position book; {len(self.cancelled)} orders cancelled, {sent} closes in "
                    f"{self.rounds} round(s))")
        what = "; ".join([left.line() for left in self.left] + self.problems)
        return (f"square-off of account {self.account} on {where}: NOT FLAT after "
                f"{self.rounds} round(s): {what}")

    def lines(self) -> list[str]:
        out = [self.summary()]
        out += [f"  cancel {text}" for text in self.cancelled]
        out += [f"  {'would send' if self.dry_run else 'close'} {c.line()}"
                for c in self.closes]
        out += [f"  left {left.line()}" for left in self.left]
        out += [f"  problem: {text}" for text in self.problems]
        out += [f"  note: {text}" for text in self.notes]
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["flat"] = self.flat
        data["summary"] = self.summary()
        data["lines"] = self.lines()
        return data


class SquareOff:
    def __init__(self, service: OrderService, journal: Journal, instruments: InstrumentStore,
                 settings: Settings, clock: Clock, *, settle_wait: float = 10.0) -> None:
        self.service = service
        self.journal = journal
        self.instruments = instruments
        self.settings = settings
        self.clock = clock
        self.settle_wait = settle_wait
        self.rounds = settings.schedule.squareoff_rounds
        self.fill_wait = settings.schedule.squareoff_fill_wait_s

    def run(self, account: str, exchanges: Iterable[Exchange], *, dry_run: bool = False,
            block_entries: bool = True, why: str = "the scheduled square-off",
            by: str = "schedule") -> SquareOffReport:
        """Square off; with ``block_entries`` new intraday entries on these exchanges are
        refused for the rest of the day, the stop saying ``why`` and ``by`` whom."""
        wanted = sorted({Exchange(e) for e in exchanges})
        report = SquareOffReport(account, [e.value for e in wanted], dry_run, self.clock.now())
        broker = self.service.brokers[account]
        report.notes.append(_entries_note(report.exchanges, block_entries, dry_run))
        if not dry_run:
            if block_entries:
                self.journal.entries.close_entries(account, report.exchanges,
                                                   self.clock.now().astimezone(IST).date(),
                                                   why=why, by=by)
            self._wait_for_signals(account, wanted)
        try:
            if dry_run:
                self._dry_run(broker, account, wanted, report)
            else:
                self._close(broker, account, wanted, report)
                report.left = self._left(broker, account, wanted, report)
        except KotakError as exc:
            report.problems.append(f"Kotak: {exc.message}")
        except InstrumentError as exc:
            report.problems.append(f"scrip master: {exc}")
        report.finished_at = self.clock.now()
        log.log(logging.INFO if report.flat else logging.ERROR, "%s", report.summary())
        return report

    # --- the rounds -----------------------------------------------------------------------

    def _close(self, broker: KotakClient, account: str, wanted: list[Exchange],
               report: SquareOffReport) -> None:
        for number in range(1, self.rounds + 1):
            busy = self._busy(account, wanted)
            self._cancel_working(broker, account, wanted, busy, report)
            mark = self.journal.orders.last_order_id()
            todo = [p for p in self._open(broker, wanted) if _key(p) not in busy]
            if not todo:
                return
            report.rounds = number
            prices = self._last_prices(broker, todo) if number > 1 else {}
            sent: list[OrderRow] = []
            for position in todo:
                sent += self._send_close(broker, account, position, number, prices, mark,
                                         report)
            self._follow(broker, sent, report)

    def _send_close(self, broker: KotakClient, account: str, position: Position, number: int,
                    prices: dict[tuple[Exchange, str], Decimal], mark: int,
                    report: SquareOffReport) -> list[OrderRow]:
        instrument = self._instrument(position, report)
        if instrument is None:
            return []
        product = Product(position.product)
        with self.service.position_lock(account, instrument, product):
            if f"{instrument_key(instrument)}:{product.value}" in \
                    self.journal.orders.signal_orders_after(account, mark):
                # A signal traded it after the book was read: the next round reads again.
                return []
            plans = self._plans(position, instrument, number, prices)
            rows, _ = self.journal.orders.add_orders(None, account, STRATEGY, plans,
                                                     send_first_with=None)
            for row in rows:
                close = _close_of(row, number)
                report.closes.append(close)
                token = self._token(account)
                if token is None:
                    self.journal.orders.set_order(row.id, OrderState.FAILED, error_code="not_sent",
                                                  reason="no broker rate-limit slot in 30 s",
                                                  detail="not sent")
                    close.outcome, close.reason = "failed", "no rate-limit slot"
                    continue
                request = OrderRequest(instrument=instrument, side=Side(row.side),
                                       quantity=row.quantity, product=product,
                                       order_type=OrderType(row.order_type),
                                       price=Decimal(row.price) if row.price else None,
                                       tag=row.tag)
                state = self.service.send(row, request, broker, token)
                close.outcome = state.value
        return rows

    def _plans(self, position: Position, instrument: Instrument, number: int,
               prices: dict[tuple[Exchange, str], Decimal]) -> list[OrderPlan]:
        net = position.net_quantity
        side = Side.SELL if net > 0 else Side.BUY
        last = prices.get((instrument.exchange, instrument.trading_symbol))
        order_type, price = OrderType.MARKET, None
        if number > 1 and last is not None and last > 0:
            order_type = OrderType.LIMIT
            price = str(protected_limit(instrument, side, last))
        try:
            parts = sizing.slices(abs(net), instrument, True, max_slices=100)
        except RuleRefusal:
            parts = [abs(net)]
        return [OrderPlan(exchange=instrument.exchange.value,
                          trading_symbol=instrument.trading_symbol, side=side.value,
                          quantity=part, product=position.product,
                          order_type=order_type.value, price=price, trigger_price=None,
                          is_exit=True, tag=new_tag()) for part in parts]

    def _follow(self, broker: KotakClient, rows: list[OrderRow],
                report: SquareOffReport) -> None:
        """Record what Kotak says of this round's closes until all are final or the round's
        time is up (what is still working is cancelled by the next round)."""
        live = {row.id: row for row in rows}
        closes = {c.order_id: c for c in report.closes if c.order_id in live}
        deadline = time.monotonic() + self.fill_wait
        while live:
            try:
                latest = self._latest(broker, list(live.values()), report)
            except KotakError as exc:
                log.warning("square-off: orders unreadable while following: %s", exc.message)
                latest = {}
            for order_id, found in latest.items():
                current = self.journal.orders.order(order_id) or live[order_id]
                self.service.apply(current, found)
                close = closes[order_id]
                close.broker_order_id = found.order_id
                close.outcome = found.status.value
                close.reason = found.rejection_reason
                if found.status.is_final:
                    del live[order_id]
            if not live or time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)
        for order_id in live:
            closes[order_id].reason = closes[order_id].reason or \
                f"not filled within {self.fill_wait:g} s"

    def _cancel_working(self, broker: KotakClient, account: str, wanted: list[Exchange],
                        busy: set[str], report: SquareOffReport) -> None:
        working = [o for o in self._working(broker, account, wanted, report)
                   if f"{o.exchange.value}:{o.trading_symbol}" not in busy]
        for order in working:
            token = self._token(account)
            if token is None:
                report.problems.append(f"order {order.order_id} not cancelled: no rate-limit "
                                       "slot")
                continue
            try:
                broker.cancel_order(order.order_id, trading_symbol=order.trading_symbol)
                report.cancelled.append(_order_text(order))
            except BrokerRejected as exc:
                log.info("square-off: cancel of %s refused (%s); it may have just filled",
                         order.order_id, exc.message)
            finally:
                self.journal.queue.finish_sending(token)
        if working:
            self._await_final(broker, {o.order_id for o in working}, report)

    def _await_final(self, broker: KotakClient, order_ids: set[str],
                     report: SquareOffReport) -> None:
        deadline = time.monotonic() + self.fill_wait
        while time.monotonic() < deadline:
            orders = self._numbered(broker, order_ids, report)
            if all(o.status.is_final for o in orders):
                return
            time.sleep(POLL_S)

    # --- Kotak's order book, and doing without it -----------------------------------------

    def _working(self, broker: KotakClient, account: str, wanted: list[Exchange],
                 report: SquareOffReport) -> list[BrokerOrder]:
        """Working intraday orders on these exchanges, the trader's included: from the order
        book, or, while it does not answer, the bridge's own, asked for by number."""
        book = self._book(broker, report)
        if book is not None:
            return [o for o in book if _cancellable(o, wanted)]
        names = {e.value for e in wanted}
        ours = {o.broker_order_id for o in self.journal.orders.working_orders(account)
                if o.broker_order_id and o.exchange in names
                and o.product == Product.MIS.value}
        return [o for o in self._numbered(broker, ours, report) if _cancellable(o, wanted)]

    def _latest(self, broker: KotakClient, rows: list[OrderRow],
                report: SquareOffReport) -> dict[int, BrokerOrder]:
        """Kotak's current state of these journal orders, keyed by journal id: found in the
        book by tag, or, while the book does not answer, asked for by order number."""
        book = self._book(broker, report)
        if book is not None:
            by_tag = {o.tag: o for o in book if o.tag}
            return {row.id: by_tag[row.tag] for row in rows if row.tag in by_tag}
        latest: dict[int, BrokerOrder] = {}
        for row in rows:
            number = (self.journal.orders.order(row.id) or row).broker_order_id
            found = broker.order(number) if number else None
            if found is not None:
                latest[row.id] = found
        return latest

    def _numbered(self, broker: KotakClient, order_ids: set[str],
                  report: SquareOffReport) -> list[BrokerOrder]:
        book = self._book(broker, report)
        if book is not None:
            return [o for o in book if o.order_id in order_ids]
        return [found for number in sorted(order_ids)
                if (found := broker.order(number)) is not None]

    @staticmethod
    def _book(broker: KotakClient, report: SquareOffReport) -> list[BrokerOrder] | None:
        """The order book, or ``None`` once it has failed to answer within ``BOOK_WAIT_S``
        in this square-off: it hangs for up to a minute after a burst of orders
        (Kotak-neo-api-v2 #68), which a square-off never waits out."""
        if report.book_unanswered:
            return None
        try:
            return broker.order_book(deadline=time.monotonic() + BOOK_WAIT_S)
        except BrokerUnavailable as exc:
            report.book_unanswered = True
            report.notes.append(
                f"Kotak's order book did not answer within {BOOK_WAIT_S:g} s ({exc.message}); "
                "the square-off went on without it, asking for its own orders one by one. "
                "Orders placed by hand could not be listed or cancelled while it was silent: "
                "check the order book in the Neo app")
            log.warning("square-off of account %s: order book unanswered; going on without "
                        "it", report.account)
            return None

    # --- reading --------------------------------------------------------------------------

    def _dry_run(self, broker: KotakClient, account: str, wanted: list[Exchange],
                 report: SquareOffReport) -> None:
        busy = self._busy(account, wanted)
        report.cancelled = [_order_text(o) for o in self._working(broker, account, wanted,
                                                                   report)]
        for position in self._open(broker, wanted):
            if _key(position) in busy:
                report.left.append(_left(position, "a signal is working on it now; it would "
                                                   "be closed after that signal settles"))
                continue
            instrument = self._instrument(position, report)
            if instrument is not None:
                report.closes += [_planned(plan) for plan in
                                  self._plans(position, instrument, 1, {})]

    def _left(self, broker: KotakClient, account: str, wanted: list[Exchange],
              report: SquareOffReport) -> list[Left]:
        busy = self._busy(account, wanted)
        left = []
        for position in self._open(broker, wanted):
            last = [c for c in report.closes if c.exchange == position.exchange.value
                    and c.trading_symbol == position.trading_symbol]
            if _key(position) in busy:
                reason = "a signal was still working on it; close it once it settles"
            elif last:
                tried = last[-1]
                reason = (f"{len(last)} close order(s) sent, the last {tried.outcome}"
                          + (f": {tried.reason}" if tried.reason else ""))
            else:
                reason = "no close was sent (see the problems above)"
            left.append(_left(position, reason))
        return left

    def _open(self, broker: KotakClient, wanted: list[Exchange]) -> list[Position]:
        return [p for p in broker.positions() if p.exchange in wanted
                and p.product == Product.MIS.value and p.net_quantity != 0]

    def _busy(self, account: str, wanted: list[Exchange]) -> set[str]:
        names = {e.value for e in wanted}
        return {key for key in self.journal.signals.busy_instruments(account)
                if key.partition(":")[0] in names}

    def _wait_for_signals(self, account: str, wanted: list[Exchange]) -> None:
        deadline = time.monotonic() + self.settle_wait
        while self._busy(account, wanted) and time.monotonic() < deadline:
            time.sleep(POLL_S)

    def _instrument(self, position: Position, report: SquareOffReport) -> Instrument | None:
        found = self.instruments.current().get(position.exchange, position.trading_symbol)
        if found is None:
            report.problems.append(f"{position.exchange.value}:{position.trading_symbol} is "
                                   "not in today's scrip master: close it by hand")
        return found

    def _last_prices(self, broker: KotakClient,
                     positions: list[Position]) -> dict[tuple[Exchange, str], Decimal]:
        index = self.instruments.current()
        found = [i for p in positions if (i := index.get(p.exchange, p.trading_symbol))]
        try:
            return broker.last_prices(found)
        except KotakError as exc:
            log.warning("square-off: no last prices (%s); re-sending at market", exc.message)
            return {}

    def _token(self, account: str) -> int | None:
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            token, wait = self.journal.queue.take_token(account,
                                                        self.service.accounts.rate(account))
            if token is not None:
                return token
            time.sleep(min(max(wait, 0.005), 0.25))
        return None


def _entries_note(exchanges: list[str], block: bool, dry_run: bool) -> str:
    where = ", ".join(exchanges)
    if not block:
        return (f"new intraday (MIS) entries on {where} stay allowed: an alert can open a new "
                "position")
    if dry_run:
        return f"a square-off now would also stop new intraday (MIS) entries on {where} today"
    return (f"new intraday (MIS) entries on {where} are stopped until the next trading day; "
            f"to allow them again, {HOW_TO_ALLOW}")


def _cancellable(order: BrokerOrder, wanted: list[Exchange]) -> bool:
    return (order.exchange in wanted and order.product == Product.MIS.value
            and order.status.is_working)


def _key(position: Position) -> str:
    return f"{position.exchange.value}:{position.trading_symbol}"


def _left(position: Position, reason: str) -> Left:
    return Left(position.exchange.value, position.trading_symbol, position.product,
                position.net_quantity, reason)


def _order_text(order: BrokerOrder) -> str:
    return (f"{order.exchange.value}:{order.trading_symbol} order {order.order_id} "
            f"({order.side.value} {order.quantity} {order.order_type}, {order.broker_status})")


def _close_of(row: OrderRow, number: int) -> Close:
    return Close(row.exchange, row.trading_symbol, row.side, row.quantity, row.order_type,
                 row.price, number, order_id=row.id)


def _planned(plan: OrderPlan) -> Close:
    return Close(plan.exchange, plan.trading_symbol, plan.side, plan.quantity, plan.order_type,
                 plan.price, 1)

