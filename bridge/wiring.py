"""Build the bridge's long-lived objects from settings: the one place they are wired.

The web app, the CLI and the scheduler all start from :func:`build_services`, so a
broker client, session store or instrument cache is made the same way everywhere. Building
connects to the database (to create missing tables) but starts no thread and calls no broker.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine

from bridge.accounts import AccountBook, load_accounts
from bridge.clock import Clock, SystemClock
from bridge.config import ConfigError, KotakSettings, Mode, Settings
from bridge.counters import Metrics
from bridge.domain import DEFAULT_ACCOUNT, Instrument
from bridge.journal.db import create_db_engine, sqlite_path
from bridge.journal.doors import DoorBook
from bridge.journal.jobs import JobBook
from bridge.journal.journal import Journal
from bridge.journal.schema import create_schema
from bridge.journal.sessions import DbSessionStore
from bridge.kotak.auth import AuthFlow, KotakCredentials
from bridge.kotak.client import KotakClient
from bridge.kotak.http import KotakHttp, Timeouts, new_session
from bridge.kotak.instruments import InstrumentStore
from bridge.kotak.sandbox import paper
from bridge.kotak.sandbox.broker import Sandbox
from bridge.kotak.sandbox.hosts import Role
from bridge.kotak.sandbox.scripmaster import ListingError
from bridge.kotak.session import SessionManager
from bridge.log import Redactor
from bridge.notify import Notifier
from bridge.orders.changes import OrderChanges
from bridge.orders.desk import SignalDesk
from bridge.orders.dispatch import Dispatcher
from bridge.orders.options import OptionPicker, kotak_quotes
from bridge.orders.service import OrderService, PriceHint
from bridge.orders.tracking import Tracker
from bridge.outbox import Courier, courier_for
from bridge.schedule.calendar import CalendarError, TradingCalendar
from bridge.secretbox import SecretBox

log = logging.getLogger(__name__)


class Stoppable(Protocol):
    """The scheduler as the services see it: something to stop on close. The scheduler
    (:class:`bridge.schedule.runner.Scheduler`) is built on these services, so naming its
    class here would make the two modules import each other."""

    def stop(self) -> None: ...


@dataclass
class Services:
    settings: Settings
    clock: Clock
    redactor: Redactor
    engine: Engine
    instruments: InstrumentStore
    journal: Journal
    orders: OrderService
    dispatcher: Dispatcher
    desk: SignalDesk
    changes: OrderChanges  # cancels and modifies of orders already at Kotak
    calendar: TradingCalendar
    jobs: JobBook
    notifier: Notifier
    accounts: AccountBook
    doors: DoorBook  # refused requests and used signatures, shared by every process
    brokers: dict[str, KotakClient] = field(default_factory=dict)
    paper: Sandbox | None = None
    scheduler: Stoppable | None = None  # set when this process takes part in scheduling
    courier: Courier | None = None  # delivers notices; None when no channel is configured
    metrics: Metrics = field(default_factory=Metrics)
    #: PostgreSQL connections kept for a fan-out's answer (see :func:`_answer_reader`)
    answer_engine: Engine | None = None

    def broker(self, account: str = DEFAULT_ACCOUNT) -> KotakClient:
        return self.brokers[account]

    def start_background(self) -> None:
        """Start sending queued signals and following orders (one loop per process), and
        delivering notices when a channel is configured."""
        self.dispatcher.start()
        if self.courier is not None:
            self.courier.start()

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        self.dispatcher.stop()
        if self.courier is not None:
            self.courier.stop()
        for client in self.brokers.values():
            client.http.session.close()
        self.engine.dispose()
        if self.answer_engine is not None:
            self.answer_engine.dispose()


def keep_private(data_dir: Path, database: Path | None) -> None:
    """Files this process makes are its user's alone (0600, folders 0700): the data folder
    and the journal hold Kotak sessions, the encryption key and every trade. Files an older
    version left readable to all (the SQLite journal ``database`` among them) are closed up
    too. Called before the journal's first connection creates its file."""
    os.umask(0o077)
    data_dir.mkdir(parents=True, exist_ok=True)
    _restrict(data_dir, 0o700)
    if database is not None:
        for item in (database, database.with_name(database.name + "-wal"),
                     database.with_name(database.name + "-shm")):
            _restrict(item, 0o600)


def _restrict(path: Path, mode: int) -> None:
    try:
        if path.exists() and path.stat().st_uid == os.geteuid() and \
                path.stat().st_mode & 0o077:
            path.chmod(mode)
    except OSError as exc:
        log.warning("could not make %s private (%s)", path, exc)


def build_services(settings: Settings, *, clock: Clock | None = None,
                   redactor: Redactor | None = None) -> Services:
    clock = clock or SystemClock()
    redactor = redactor or Redactor(settings.secrets())
    pool_size, max_overflow = settings.database_pool
    engine = create_db_engine(settings.database_url, pool_size=pool_size,
                              max_overflow=max_overflow)
    keep_private(settings.data_dir, sqlite_path(engine))
    create_schema(engine)
    box = SecretBox.for_settings(settings.secret_key.reveal(), settings.data_dir)
    store = DbSessionStore(engine, box, clock)
    accounts = load_accounts(settings)
    metrics = Metrics()
    sandbox: Sandbox | None = None
    paper_names = [a.name for a in accounts.accounts.values() if a.mode is Mode.PAPER]
    if paper_names:
        try:
            sandbox = paper.paper_broker(settings.data_dir / "paper-broker.db", clock,
                                         settings.kotak.order_rate, paper_names)
        except ListingError as exc:
            raise ConfigError(exc.problems) from exc
    brokers: dict[str, KotakClient] = {}
    for account in accounts.accounts.values():
        # One HTTP session per account: each has its own egress (a static-IP proxy) and
        # connection pool, so a stalled account cannot hold another's connections.
        session = new_session()
        if account.mode is Mode.PAPER:
            assert sandbox is not None
            paper.mount(session, sandbox)
            credentials = paper_credentials(account.kotak.auth, account.name)
        else:
            credentials = live_credentials(account.kotak)
        http = KotakHttp(session=session,
                         timeouts=Timeouts(connect=settings.kotak.connect_timeout_s,
                                           read=settings.kotak.read_timeout_s),
                         proxy=account.kotak.proxy, observer=metrics.broker_error)
        manager = SessionManager(account.name, credentials, http, store, clock,
                                 on_secret=redactor.add)
        brokers[account.name] = KotakClient(http, manager)
    instruments = InstrumentStore(settings.data_dir / "scrip", clock)
    journal = Journal(engine, clock)
    hint = _paper_price_hint(sandbox) if sandbox is not None else None
    try:
        calendar = TradingCalendar.load(settings.risk.trading_hours,
                                        settings.schedule.holidays_file)
    except CalendarError as exc:
        raise ConfigError([f"HOLIDAYS_FILE: {exc}"]) from exc
    jobs = JobBook(engine, clock)
    notifier = Notifier(jobs, redactor)
    # Options by offset are picked once per signal, from the default account's quotes, so
    # every account a signal fans out to trades the same contract.
    picker = OptionPicker(kotak_quotes(brokers[DEFAULT_ACCOUNT]), clock, calendar)
    orders = OrderService(journal, brokers, instruments, settings, clock, engine, calendar, hint,
                          notifier=notifier, on_answer=metrics.broker_answered,
                          accounts=accounts, pick_option=picker.pick)
    tracker = Tracker(journal, orders, brokers, clock, engine)
    # A worker per account at least, so one account's slow broker never holds the others.
    dispatcher = Dispatcher(journal, orders, tracker, settings, clock,
                            workers=max(8, min(len(brokers) + 4, 256)))
    answer_engine = _answer_engine(settings, engine, accounts)
    return Services(
        settings=settings, clock=clock, redactor=redactor, engine=engine,
        instruments=instruments, journal=journal, orders=orders, dispatcher=dispatcher,
        desk=SignalDesk(journal, orders, dispatcher, settings, clock, notifier=notifier,
                        answers=Journal(answer_engine, clock) if answer_engine else None),
        answer_engine=answer_engine,
        changes=OrderChanges(orders, count=metrics.signal),
        calendar=calendar, jobs=jobs, notifier=notifier, accounts=accounts,
        doors=DoorBook(engine, clock), brokers=brokers,
        paper=sandbox,
        courier=courier_for(settings, jobs, clock, redactor), metrics=metrics,
    )


def _answer_engine(settings: Settings, engine: Engine, accounts: AccountBook) -> Engine | None:
    """Two PostgreSQL connections of its own for reading a fan-out's answer.

    A signal to 200 accounts has 200 copies recording Kotak's answers at once, and the
    pool's connections go to them in turn: the caller's answer, read last, waited ~0.5 s
    behind them. With connections of its own it is read at once. SQLite needs none (its
    readers never wait for a connection), nor does a bridge with one account."""
    if engine.dialect.name == "sqlite" or not accounts.fans_out:
        return None
    return create_db_engine(settings.database_url, pool_size=1, max_overflow=1)


def _paper_price_hint(sandbox: Sandbox) -> PriceHint:
    """In paper mode with frozen prices a market order fills at the price the signal carried
    (``{{close}}``). While the paper market moves, its own price stands: pinning it to each
    signal's price would stop the instrument (and its options) moving for the day."""

    def hint(instrument: Instrument, price: Decimal) -> None:
        if sandbox.prices_walking:
            return
        try:
            sandbox.set_price(instrument.exchange.value, instrument.trading_symbol, price)
        except ValueError as exc:
            log.warning("paper broker ignored the reference price %s of %s: %s", price,
                        instrument.trading_symbol, exc)

    return hint


def live_credentials(kotak: KotakSettings) -> KotakCredentials:
    return KotakCredentials(
        flow=kotak.auth, access_token=kotak.api_key.reveal(),
        consumer_secret=kotak.api_secret.reveal(), ucc=kotak.ucc, mobile=kotak.mobile,
        pan=kotak.pan, mpin=kotak.mpin.reveal(), totp_secret=kotak.totp_secret.reveal(),
        password=kotak.password.reveal(), login_url=kotak.login_url,
        oauth_url=kotak.oauth_url, gateway_url=kotak.gateway_url,
    )


def paper_credentials(flow: AuthFlow, name: str = DEFAULT_ACCOUNT) -> KotakCredentials:
    account = paper.paper_account(name)
    return KotakCredentials(
        flow=flow, access_token=account.consumer_key,
        consumer_secret=account.consumer_secret, ucc=account.ucc, mobile=account.mobile,
        pan=account.pan, mpin=account.mpin, totp_secret=account.totp_secret,
        password=account.password, login_url=paper.PAPER_HOSTS.url(Role.LOGIN),
        oauth_url=paper.PAPER_HOSTS.url(Role.OAUTH),
        gateway_url=paper.PAPER_HOSTS.url(Role.GATEWAY),
    )

