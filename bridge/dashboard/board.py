"""What the dashboard shows, gathered from the services: the status strip, the signals with
what became of them, the day's orders, positions with P&L, and the last square-off report.

Everything here reads; nothing changes state. The broker is asked for positions and last
prices at most once per :data:`BROKER_TTL` per process, so a phone left open on the page
(it polls every few seconds) cannot eat into Kotak's request limits; the journal is read on
every refresh since it is local and cheap.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from bridge.clock import IST
from bridge.config import Mode, SchedulerPlace
from bridge.dashboard import alerts
from bridge.domain import (
    DEFAULT_ACCOUNT,
    Exchange,
    Instrument,
    Leg,
    OptionRequest,
    Position,
    Resolution,
    Signal,
)
from bridge.journal.doors import RefusalCount
from bridge.journal.reads import JournalReader
from bridge.journal.rows import OrderRow, OrderState, SignalRow, SignalStatus
from bridge.kotak.client import KotakClient
from bridge.kotak.errors import KotakError
from bridge.kotak.instruments import InstrumentError
from bridge.schedule.jobs import JobActions
from bridge.schedule.plan import JobSpec, Kind, build_plan
from bridge.schedule.runner import ROLE, STALE_AFTER, has_legacy_accounts, next_action
from bridge.wiring import Services

log = logging.getLogger(__name__)

BROKER_TTL = 5.0  # seconds a position book or price answer is reused
SIGNAL_PAGE = 50
T = TypeVar("T")


@dataclass(frozen=True)
class AccountStatus:
    name: str
    session_valid: bool
    session_detail: str
    expires_at: datetime | None
    login_blocked: bool
    rate: int  # order requests per second allowed
    sent_last_second: int

    @property
    def headroom(self) -> int:
        return max(self.rate - self.sent_last_second, 0)

    @property
    def words(self) -> str:
        """The account as a trader names it: the single account is just "your Kotak
        account", not its internal name ``default``."""
        if self.name == DEFAULT_ACCOUNT:
            return "your Kotak account"
        return f"Kotak account {self.name}"


#: what each scheduled job does, for the status boxes
JOB_WORDS = {Kind.SESSION: "daily Kotak login", Kind.TOKEN: "renew the Kotak login token",
             Kind.INSTRUMENTS: "load the day's instrument list",
             Kind.SQUAREOFF: "square-off of intraday positions",
             Kind.RECONCILE: "check orders against Kotak's book",
             Kind.HOUSEKEEPING: "clear old records"}


@dataclass(frozen=True)
class NextJob:
    name: str  # as ``bridge jobs`` lists it
    kind: Kind
    words: str
    at: datetime


def _next_job(spec: JobSpec, when: datetime) -> NextJob:
    words = JOB_WORDS[spec.kind]
    if spec.kind is Kind.SQUAREOFF and spec.exchanges:
        words += " (" + ", ".join(e.value for e in spec.exchanges) + ")"
    return NextJob(name=spec.name, kind=spec.kind, words=words, at=when)


@dataclass(frozen=True)
class Glance:
    """The overview's status line: the four things a trader checks first, in words.

    ``*_tone`` is the colour class (:func:`tone` names): ok, wait, bad, off or warn.
    """

    session: str
    session_tone: str
    login_account: str | None  # the account to log in, when one needs it
    last_alert: str
    last_tone: str
    last_signal_id: int | None
    squareoff: str
    squareoff_tone: str
    kill_switch: bool


@dataclass(frozen=True)
class Strip:
    mode: str
    accounts: list[AccountStatus]
    scheduler_place: str
    leader: str | None
    heartbeat_age_s: float | None
    leader_alive: bool
    next_jobs: list[NextJob]
    kill_switch: bool
    queued: int
    #: requests refused at the door in the last hour, by source and reason
    refused: list[RefusalCount] = field(default_factory=list)
    now: datetime | None = None
    last_signal: SignalLine | None = None
    last_squareoff: SquareOffView | None = None
    next_squareoff: NextJob | None = None

    @property
    def scheduler_running(self) -> bool:
        return self.scheduler_place != SchedulerPlace.OFF.value and self.leader_alive

    @property
    def glance(self) -> Glance:
        session, session_tone, login = self._session_words()
        last, last_tone, last_id = self._last_alert_words()
        squareoff, squareoff_tone = self._squareoff_words()
        return Glance(session=session, session_tone=session_tone, login_account=login,
                      last_alert=last, last_tone=last_tone, last_signal_id=last_id,
                      squareoff=squareoff, squareoff_tone=squareoff_tone,
                      kill_switch=self.kill_switch)

    def _session_words(self) -> tuple[str, str, str | None]:
        broker = "Paper broker" if self.mode == Mode.PAPER.value else "Kotak"
        down = [account for account in self.accounts if not account.session_valid]
        if not self.accounts:
            return f"{broker}: no account set up", "bad", None
        if not down:
            ends = [a.expires_at for a in self.accounts if a.expires_at is not None]
            until = f" until {self._at(min(ends), day=True)}" if ends else ""
            return f"{broker}: logged in{until}", "ok", None
        if len(self.accounts) == 1:
            return f"{broker}: needs login", "bad", down[0].name
        names = ", ".join(account.name for account in down[:3])
        more = f" and {len(down) - 3} more" if len(down) > 3 else ""
        return (f"{broker}: {len(down)} of {len(self.accounts)} accounts need login "
                f"({names}{more})", "bad", down[0].name)

    def _last_alert_words(self) -> tuple[str, str, int | None]:
        line = self.last_signal
        if line is None:
            return "No alert yet", "off", None
        head = f"Last alert {self._at(line.row.received_at)} {line.source}: {line.fields}"
        outcome = line.row.status.value
        counts: dict[str, int] = {}
        for order in line.orders:
            word = ORDER_WORDS.get(order.status.value, order.status.value)
            counts[word] = counts.get(word, 0) + 1
        if counts:
            many = len(line.orders) > 1
            outcome += ", " + ", ".join(f"{n} {word}" if many else word
                                        for word, n in counts.items())
        why = line.row.error.message if line.row.error is not None else line.reason
        if why and line.tone != "ok":
            outcome += f": {why}"
        return f"{head} \u2192 {outcome}", line.tone, line.row.id

    def _squareoff_words(self) -> tuple[str, str]:
        parts: list[str] = []
        tone_ = "ok"
        done = self.last_squareoff
        if done is not None and self.now is not None \
                and done.at.astimezone(IST).date() == self.now.astimezone(IST).date():
            word = {"succeeded": "done", "running": "running since"}.get(done.status,
                                                                          done.status)
            parts.append(f"{word} {self._at(done.at)}")
            tone_ = {"succeeded": "ok", "running": "wait"}.get(done.status, "bad")
        if self.scheduler_place == SchedulerPlace.OFF.value:
            parts.append("no automatic square-off (scheduler off)")
            tone_ = "warn" if tone_ == "ok" else tone_
        elif self.next_squareoff is None:
            parts.append("no automatic square-off scheduled")
        elif not self.leader_alive:
            parts.append(f"next {self._at(self.next_squareoff.at, day=True)}, but it WILL NOT "
                         "RUN: no scheduler is running")
            tone_ = "bad"
        else:
            parts.append(f"next {self._at(self.next_squareoff.at, day=True)}")
        return "Square-off: " + "; ".join(parts), tone_

    def _at(self, moment: datetime, *, day: bool = False) -> str:
        """10:42 for today; with ``day``, "15:15 today"/"15:15 tomorrow"; else the date."""
        local = moment.astimezone(IST)
        today: date | None = self.now.astimezone(IST).date() if self.now else None
        if today is not None and local.date() == today:
            return f"{local:%H:%M} today" if day else f"{local:%H:%M}"
        if day and today is not None and local.date() == today + timedelta(days=1):
            return f"{local:%H:%M} tomorrow"
        return f"{local:%a %d %b %H:%M}"

    def refused_by_source(self) -> list[tuple[str, int, list[RefusalCount]]]:
        """("TradingView", 12, [its reasons]) for each source that had refusals."""
        out: dict[str, list[RefusalCount]] = {}
        for item in self.refused:
            out.setdefault(source_name(item.source), []).append(item)
        return [(name, sum(i.count for i in items), items) for name, items in out.items()]


#: how each front door is named to a trader
SOURCE_NAMES = {"tradingview": "TradingView", "amibroker": "AmiBroker", "chartink": "ChartInk",
                "api": "API"}
#: what each signal status means, in one line (shown under the signal list)
STATUS_MEANINGS = {
    "received": "just arrived; being checked",
    "queued": "accepted and waiting for its turn under Kotak's order rate; it will be sent",
    "dispatching": "being sent to Kotak now",
    "placed": "Kotak accepted every order; the order status says whether it filled",
    "partial": "some legs or parts stand at Kotak and at least one failed: check the "
               "position, it is not the one the signal asked for",
    "noop": "nothing to do (already at the target position); nothing was sent",
    "duplicate": "a repeat of an earlier signal, answered with that one's outcome; nothing sent",
    "rejected": "refused by a check, a rule or Kotak; nothing stands",
    "failed": "could not be sent (no Kotak session, Kotak unavailable); nothing stands",
    "unknown": "sent without an answer; being settled from Kotak's order book, never re-sent",
    "expired": "waited too long to be sent and was dropped; nothing was sent",
}


#: the colour of each signal and order status: "wait" (still moving: it may yet fill or be
#: sent), "ok" (done), "bad" (refused or never sent), "off" (ended, nothing stands or nothing
#: to do), "warn" (not known yet: check it) and "partial" (some stands, some failed)
TONES = {
    "received": "wait", "queued": "wait", "dispatching": "wait", "created": "wait",
    "sending": "wait", "pending": "wait", "open": "wait", "trigger_pending": "wait",
    "placed": "ok", "complete": "ok",
    "rejected": "bad", "failed": "bad", "expired": "bad", "not_placed": "bad",
    "cancelled": "off", "noop": "off", "duplicate": "off",
    "unknown": "warn",
    "partial": "partial",
}
#: an order's state in the status line's words ("placed, filled")
ORDER_WORDS = {"complete": "filled", "open": "open at the exchange",
               "trigger_pending": "waiting for its trigger price",
               "pending": "waiting at Kotak", "created": "not sent yet",
               "sending": "being sent", "unknown": "no answer yet (being checked)",
               "not_placed": "never reached Kotak", "failed": "not sent"}
#: worst first: the colour of a line with several orders is the most urgent one's
_TONE_ORDER = ("bad", "warn", "partial", "wait", "ok", "off")


def tone(status: str) -> str:
    """The colour class of a signal or order status (see :data:`TONES`)."""
    return TONES.get(status, "warn")


def worst_tone(statuses: list[str]) -> str:
    tones = {tone(status) for status in statuses}
    return next((name for name in _TONE_ORDER if name in tones), "off")


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def source_name(source: str) -> str:
    return SOURCE_NAMES.get(source, source)


def number(value: Decimal) -> str:
    """26012.35 as "26,012.35", 26000 as "26,000"."""
    return f"{value.normalize():,f}"


def expiry_words(expiry: str) -> str:
    named = {"": "nearest expiry", "current_week": "this week's expiry",
             "next_week": "next week's expiry", "current_month": "this month's expiry",
             "next_month": "next month's expiry"}
    return named.get(expiry, f"expiry {expiry}")


def asked_words(option: OptionRequest) -> str:
    """What a signal asked for, before (or without) a pick: "ATM CE of NIFTY, nearest
    expiry"."""
    return f"{option.offset} {option.option_type.value} of {option.underlying}, " \
           f"{expiry_words(option.expiry)}"


def resolution_words(picked: Resolution) -> str:
    """The contract the bridge picked and why: "ATM CE of NIFTY, expiry 29 Dec 2026:
    NIFTY26DEC26000CE (NIFTY was 26,012.35; strike step 50)"."""
    day = picked.expiry
    head = (f"{picked.offset} {picked.option_type.value} of {picked.underlying}, expiry "
            f"{day.day} {_MONTHS[day.month - 1]} {day.year}: {picked.trading_symbol}")
    if picked.offset == "ATM":
        why = f"{picked.underlying} was {number(picked.underlying_price)}"
    else:
        head += f", strike {number(picked.strike)}"
        why = (f"{picked.underlying} was {number(picked.underlying_price)}, ATM "
               f"{number(picked.atm_strike)}")
    return f"{head} ({why}; strike step {number(picked.strike_step)})"


def _contract(symbol: str, option: OptionRequest | None,
              picked: Resolution | None) -> str:
    """A contract in an order line: the trading symbol, with the offset it was picked by."""
    if picked is not None:
        return f"{picked.trading_symbol} ({picked.offset} {picked.option_type.value})"
    if option is not None:
        return asked_words(option)
    return symbol


@dataclass(frozen=True)
class LegLine:
    """One leg of a multi-leg signal with the orders sent for it."""

    number: int
    leg: Leg
    orders: list[OrderRow]

    @property
    def words(self) -> str:
        leg = self.leg
        if leg.resolution is not None:
            what = resolution_words(leg.resolution)
        elif leg.option is not None:
            what = asked_words(leg.option)
        else:
            place = f"{leg.exchange.value}:" if leg.exchange else ""
            what = f"{place}{leg.symbol}"
        return f"{leg.side.value} {leg.quantity} {what}"

    @property
    def outcome(self) -> str:
        if not self.orders:
            return "not sent"
        return ", ".join(order.status.value for order in self.orders)

    @property
    def failed(self) -> bool:
        return any(order.status in (OrderState.REJECTED, OrderState.FAILED,
                                    OrderState.NOT_PLACED) for order in self.orders)


@dataclass(frozen=True)
class SignalLine:
    row: SignalRow
    orders: list[OrderRow]

    @property
    def source(self) -> str:
        return source_name(self.row.source)

    @property
    def fields(self) -> str:
        """The fields that decided the order, in a trader's words."""
        signal = self.row.signal
        if signal is None:
            return self.row.symbol or "(not readable)"
        if signal.legs:
            legs = ", ".join(
                f"{leg.side.value} {leg.quantity} "
                f"{_contract(leg.symbol, leg.option, leg.resolution)}" for leg in signal.legs)
            parts = [f"{len(signal.legs)} legs: {legs}", signal.product.value]
        else:
            parts = [signal.side.value, str(signal.quantity) if signal.quantity else "",
                     _contract(signal.symbol, signal.option, signal.resolution)]
            if signal.position_size is not None:
                parts.append(f"target {signal.position_size}")
            parts.append(signal.order_type.value)
            if signal.price is not None:
                parts.append(f"@ {signal.price}")
            parts.append(signal.product.value)
        if signal.splitsize:
            parts.append(f"in orders of at most {signal.splitsize}")
        return " ".join(part for part in parts if part)

    @property
    def contract(self) -> str:
        """The option the bridge picked, or what was asked when it was not picked."""
        signal = self.row.signal
        if signal is None or signal.legs:
            return ""
        if signal.resolution is not None:
            return resolution_words(signal.resolution)
        if signal.option is not None:
            return f"asked for the {asked_words(signal.option)}; no contract was picked"
        return ""

    @property
    def quoted(self) -> str:
        """Where the underlying's price came from ("NSE:Nifty 50"), for the signal's page."""
        signal = self.row.signal
        picks = [] if signal is None else [signal.resolution] + [
            leg.resolution for leg in signal.legs]
        return ", ".join(dict.fromkeys(p.quoted for p in picks if p is not None))

    @property
    def legs(self) -> list[LegLine]:
        """Each leg with its orders (a leg split into slices has several)."""
        signal = self.row.signal
        if signal is None or not signal.legs:
            return []
        mine, _ = _orders_by_leg(signal, self.orders)
        return [LegLine(number, leg, found)
                for number, (leg, found) in enumerate(zip(signal.legs, mine, strict=True),
                                                      start=1)]

    @property
    def other_orders(self) -> list[OrderRow]:
        """Orders of a multi-leg signal that belong to no leg: closing orders sent when a
        leg failed and ``LEG_FAILURE=unwind``."""
        signal = self.row.signal
        if signal is None or not signal.legs:
            return []
        return _orders_by_leg(signal, self.orders)[1]

    @property
    def outcome(self) -> str:
        """The final word: the orders' states, or why nothing was sent."""
        if self.orders:
            states = ", ".join(o.status.value for o in self.orders)
            if self.row.status is SignalStatus.PARTIAL:
                return f"partial: {states}"
            return states
        return self.row.status.value

    @property
    def states(self) -> list[tuple[str, str]]:
        """Each order's state with its colour: an ``open`` order is still waiting, not done
        like a ``complete`` one."""
        return [(order.status.value, tone(order.status.value)) for order in self.orders]

    @property
    def tone(self) -> str:
        """The line's colour: a partial signal stays partial; otherwise the most urgent of
        its orders' states, or the signal's own status when nothing was sent."""
        status = self.row.status.value
        if self.row.status is SignalStatus.PARTIAL or not self.orders:
            return tone(status)
        return worst_tone([order.status.value for order in self.orders])

    @property
    def reason(self) -> str:
        if self.row.error is not None:
            return f"{self.row.error.code}: {self.row.error.message}"
        reasons = [o.reason for o in self.orders if o.reason]
        return "; ".join(reasons)


def _orders_by_leg(signal: Signal, orders: list[OrderRow]) -> tuple[list[list[OrderRow]],
                                                                     list[OrderRow]]:
    """Orders matched to legs by contract and side, each leg taking orders until its
    quantity is covered (an order proved never to have arrived does not count: it was sent
    again); the rest (closing orders) are returned apart."""
    pool = sorted(orders, key=lambda order: order.id)
    matched: list[list[OrderRow]] = []
    for leg in signal.legs:
        mine: list[OrderRow] = []
        needed = leg.quantity
        for order in list(pool):
            if needed <= 0:
                break
            if (order.is_exit or order.side != leg.side.value
                    or order.trading_symbol.upper() != leg.symbol.upper()
                    or (leg.exchange is not None and order.exchange != leg.exchange.value)):
                continue
            mine.append(order)
            pool.remove(order)
            if order.status is not OrderState.NOT_PLACED:
                needed -= order.quantity
        matched.append(mine)
    return matched, pool


@dataclass(frozen=True)
class PositionLine:
    account: str
    strategy: str  # "" for the account's net position
    exchange: str
    trading_symbol: str
    product: str
    net_quantity: int
    average_price: Decimal
    last_price: Decimal | None
    pnl: Decimal | None


@dataclass
class Positions:
    account_net: list[PositionLine] = field(default_factory=list)
    by_strategy: list[PositionLine] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    as_of: datetime | None = None


@dataclass(frozen=True)
class SquareOffView:
    job: str
    at: datetime
    status: str
    summary: str
    lines: list[str]


class _Cache:
    """Per-process memo of broker answers, so polling browsers share one call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, Any]] = {}

    def get(self, key: str, make: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            held = self._values.get(key)
        if held is not None and held[0] > now:
            value: T = held[1]
            return value
        fresh = make()
        with self._lock:
            self._values[key] = (now + BROKER_TTL, fresh)
        return fresh

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


class Board:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.reader = JournalReader(services.engine)
        self.plan = build_plan(services.settings, legacy=has_legacy_accounts(services))
        self._actions = JobActions(services)
        self.cache = _Cache()

    # --- the status strip -------------------------------------------------------------------

    def strip(self) -> Strip:
        services = self.services
        now = services.clock.now()
        accounts = []
        depth, _ = services.journal.queue.queue_depth()
        # Per-account headroom is shown for a few accounts; a fleet gets a summary instead.
        detailed = len(services.brokers) <= 4
        for name, client in services.brokers.items():
            status = client.sessions.status()
            accounts.append(AccountStatus(
                name=name, session_valid=status.valid, session_detail=status.detail,
                expires_at=status.expires_at, login_blocked=status.login_blocked,
                rate=services.accounts.rate(name),
                sent_last_second=self.reader.sent_since(name, now - timedelta(seconds=1))
                if detailed else 0))
        place = services.settings.schedule.place
        leader = services.jobs.leader(ROLE) if place is not SchedulerPlace.OFF else None
        age = (now - leader.heartbeat_at).total_seconds() if leader is not None else None
        upcoming = [_next_job(spec, when) for spec in self.plan
                    if (when := next_action(spec, now, services, self._actions)) is not None]
        upcoming.sort(key=lambda job: job.at)
        squareoffs = [job for job in upcoming if job.kind is Kind.SQUAREOFF]
        shown = upcoming[:4]
        # The next Kotak login is always shown: after the morning's login it is tomorrow's,
        # behind the day's square-offs, and a trader still wants to know when it is.
        login = next((job for job in upcoming if job.kind is Kind.SESSION), None)
        if login is not None and login not in shown:
            shown.append(login)
        latest = self.signals(limit=1)
        return Strip(
            mode=services.settings.mode.value, accounts=accounts, scheduler_place=place.value,
            leader=leader.holder if leader else None,
            heartbeat_age_s=round(age, 1) if age is not None else None,
            leader_alive=age is not None and age <= STALE_AFTER.total_seconds(),
            next_jobs=shown, kill_switch=services.journal.switches.kill_switch(),
            queued=depth,
            refused=services.doors.refusals_since(now - timedelta(hours=1)), now=now,
            last_signal=latest[0] if latest else None, last_squareoff=self.last_squareoff(),
            next_squareoff=squareoffs[0] if squareoffs else None)

    # --- signals ----------------------------------------------------------------------------

    def signals(self, *, status: str = "", strategy: str = "",
                limit: int = SIGNAL_PAGE) -> list[SignalLine]:
        rows = self.reader.signals(limit=limit, status=status, strategy=strategy)
        found = self.reader.orders_of_signals([row.id for row in rows])
        return [SignalLine(row, found.get(row.id, [])) for row in rows]

    def strategies(self) -> list[str]:
        return self.reader.strategies()

    def signal(self, signal_id: int) -> tuple[SignalLine, list[Any]] | None:
        row, orders = self.services.journal.signals.signal_with_orders(signal_id)
        if row is None:
            return None
        return SignalLine(row, orders), self.services.journal.history.events_of(signal_id)

    # --- orders and positions ---------------------------------------------------------------

    def day_start(self) -> datetime:
        local = self.services.clock.now().astimezone(IST)
        return local.replace(hour=0, minute=0, second=0, microsecond=0)

    def orders_today(self, limit: int = 100) -> list[OrderRow]:
        return self.reader.orders_since(self.day_start(), limit)

    def positions(self) -> Positions:
        return self.cache.get("positions", self._positions)

    def _positions(self) -> Positions:
        result = Positions(as_of=self.services.clock.now())
        books: dict[str, list[Position]] = {}
        clients = list(self.services.brokers.items())
        # Accounts are asked side by side: with many of them, one after another would make
        # the page as slow as the sum of Kotak's answers.
        with ThreadPoolExecutor(max_workers=min(len(clients), 16) or 1) as pool:
            answers = pool.map(_positions_of, [client for _, client in clients])
            for (account, _), answer in zip(clients, answers, strict=True):
                if isinstance(answer, KotakError):
                    result.problems.append(f"account {account}: positions unavailable "
                                           f"({answer.message})")
                else:
                    books[account] = answer
        by_strategy = _strategy_positions(self.orders_today(limit=2000))
        prices = self._prices(books, by_strategy)
        multipliers: dict[tuple[str, str], Decimal] = {}
        for account, book in books.items():
            for pos in book:
                key = (pos.exchange.value, pos.trading_symbol)
                multipliers[key] = pos.multiplier
                price = prices.get(key)
                result.account_net.append(PositionLine(
                    account=account, strategy="", exchange=pos.exchange.value,
                    trading_symbol=pos.trading_symbol, product=pos.product,
                    net_quantity=pos.net_quantity, average_price=pos.average_price,
                    last_price=price, pnl=pos.pnl(price) if price is not None else None))
        for line in by_strategy:
            key = (line.exchange, line.trading_symbol)
            price = prices.get(key)
            result.by_strategy.append(_priced(line, price, multipliers.get(key, Decimal(1))))
        return result

    def _prices(self, books: dict[str, list[Position]],
                by_strategy: list[_Fills]) -> dict[tuple[str, str], Decimal]:
        wanted = {(pos.exchange.value, pos.trading_symbol) for book in books.values()
                  for pos in book}
        wanted |= {(line.exchange, line.trading_symbol) for line in by_strategy}
        try:
            index = self.services.instruments.current()
        except InstrumentError:
            return {}
        instruments: list[Instrument] = []
        for exchange, symbol in sorted(wanted):
            found = index.get(Exchange(exchange), symbol)
            if found is not None:
                instruments.append(found)
        if not instruments or not self.services.brokers:
            return {}
        try:
            quotes = self.services.broker(next(iter(self.services.brokers))).last_prices(
                instruments)
        except KotakError as exc:
            log.info("dashboard: last prices unavailable: %s", exc.message)
            return {}
        return {(exchange.value, symbol): price for (exchange, symbol), price in quotes.items()}

    # --- square-off -------------------------------------------------------------------------

    def last_squareoff(self) -> SquareOffView | None:
        runs = [run for name, run in self.services.jobs.last_runs().items()
                if name.startswith("squareoff")]
        if not runs:
            return None
        run = max(runs, key=lambda r: r.started_at)
        report = run.report or {}
        lines = [line for part in report.get("reports", []) for line in part.get("lines", [])]
        return SquareOffView(job=run.job, at=run.finished_at or run.started_at,
                             status=run.status.value, summary=run.summary, lines=lines)

    # --- the TradingView template helper ----------------------------------------------------

    def template(self, symbol: str, *, kind: str, lots: int, product: str,
                 strategy: str, size_from: str = "lots") -> tuple[Instrument, str]:
        """The alert message TradingView should send for ``symbol``, as JSON text
        (:func:`bridge.dashboard.alerts.symbol_alert`); the instrument is resolved here so a
        typo shows now, not at the first alert.

        :raises InstrumentError: the symbol is not in today's scrip master.
        """
        instrument = self.services.instruments.current().resolve(symbol)
        message = alerts.symbol_alert(
            secret=self.services.settings.webhook_secret.reveal(), symbol=symbol,
            instrument=instrument, kind=kind, lots=lots, product=product, strategy=strategy,
            size_from=size_from)
        return instrument, json.dumps(message, indent=2)


def _positions_of(client: KotakClient) -> list[Position] | KotakError:
    try:
        return client.positions()
    except KotakError as exc:
        return exc


@dataclass
class _Fills:
    account: str
    strategy: str
    exchange: str
    trading_symbol: str
    product: str
    buy_quantity: int = 0
    sell_quantity: int = 0
    buy_value: Decimal = Decimal(0)
    sell_value: Decimal = Decimal(0)


def _strategy_positions(orders: list[OrderRow]) -> list[_Fills]:
    """Net filled quantity per (account, strategy, instrument, product) from the day's
    orders: what each strategy holds of the account's position."""
    fills: dict[tuple[str, str, str, str, str], _Fills] = {}
    for order in orders:
        if order.filled_quantity <= 0 or order.average_price is None:
            continue
        key = (order.account, order.strategy, order.exchange, order.trading_symbol,
               order.product)
        line = fills.setdefault(key, _Fills(*key))
        value = Decimal(order.average_price) * order.filled_quantity
        if order.side == "BUY":
            line.buy_quantity += order.filled_quantity
            line.buy_value += value
        else:
            line.sell_quantity += order.filled_quantity
            line.sell_value += value
    return sorted(fills.values(), key=lambda f: (f.account, f.strategy, f.trading_symbol))


def _priced(line: _Fills, price: Decimal | None, multiplier: Decimal) -> PositionLine:
    net = line.buy_quantity - line.sell_quantity
    if net > 0:
        average = line.buy_value / line.buy_quantity
    elif net < 0:
        average = line.sell_value / line.sell_quantity
    else:
        average = Decimal(0)
    pnl = None
    if price is not None:
        pnl = (line.sell_value - line.buy_value + net * price) * multiplier
    return PositionLine(account=line.account, strategy=line.strategy or "(none)",
                        exchange=line.exchange, trading_symbol=line.trading_symbol,
                        product=line.product, net_quantity=net, average_price=average,
                        last_price=price, pnl=pnl)
