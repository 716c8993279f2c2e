"""Build the bridge's long-lived objects from settings: the one place they are wired.

The web app, the CLI and the scheduler all start from :func:`build_services`, so a
broker client, session store or instrument cache is made the same way everywhere. Building
connects to the database (to create missing tables) but starts no thread and calls no broker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from bridge.clock import Clock, SystemClock
from bridge.config import ConfigError, Mode, Settings
from bridge.domain import DEFAULT_ACCOUNT, Instrument
from bridge.journal.db import create_db_engine
from bridge.journal.jobs import JobBook
from bridge.journal.schema import create_schema
from bridge.journal.sessions import DbSessionStore
from bridge.journal.signals import Journal
from bridge.kotak.auth import KotakCredentials
from bridge.kotak.client import KotakClient
from bridge.kotak.http import KotakHttp, Timeouts, new_session
from bridge.kotak.instruments import InstrumentStore
from bridge.kotak.sandbox import paper
from bridge.kotak.sandbox.broker import Sandbox
from bridge.kotak.session import SessionManager
from bridge.log import Redactor
from bridge.metrics import Metrics
from bridge.notify import Notifier
from bridge.orders.desk import SignalDesk
from bridge.orders.dispatch import Dispatcher
from bridge.orders.service import OrderService, PriceHint
from bridge.orders.tracking import Tracker
from bridge.outbox import Courier, courier_for
from bridge.schedule.calendar import CalendarError, TradingCalendar
from bridge.secretbox import SecretBox

if TYPE_CHECKING:
    from bridge.schedule.runner import Scheduler

log = logging.getLogger(__name__)


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
    calendar: TradingCalendar
    jobs: JobBook
    notifier: Notifier
    brokers: dict[str, KotakClient] = field(default_factory=dict)
    paper: Sandbox | None = None
    scheduler: Scheduler | None = None  # set when this process takes part in scheduling
    courier: Courier | None = None  # delivers notices; None when no channel is configured
    metrics: Metrics = field(default_factory=Metrics)

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


def build_services(settings: Settings, *, clock: Clock | None = None,
                   redactor: Redactor | None = None) -> Services:
    clock = clock or SystemClock()
    redactor = redactor or Redactor(settings.secrets())
    engine = create_db_engine(settings.database_url)
    create_schema(engine)
    box = SecretBox.for_settings(settings.secret_key.reveal(), settings.data_dir)
    store = DbSessionStore(engine, box, clock)
    session = new_session()
    sandbox: Sandbox | None = None
    if settings.mode is Mode.PAPER:
        sandbox = paper.paper_broker(settings.data_dir / "paper-broker.db", clock,
                                     settings.kotak.order_rate)
        paper.mount(session, sandbox)
        credentials = paper_credentials(settings)
    else:
        credentials = live_credentials(settings)
    metrics = Metrics()
    http = KotakHttp(session=session,
                     timeouts=Timeouts(connect=settings.kotak.connect_timeout_s,
                                       read=settings.kotak.read_timeout_s),
                     proxy=settings.kotak.proxy, observer=metrics.broker_error)
    manager = SessionManager(DEFAULT_ACCOUNT, credentials, http, store, clock,
                             on_secret=redactor.add)
    brokers = {DEFAULT_ACCOUNT: KotakClient(http, manager)}
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
    orders = OrderService(journal, brokers, instruments, settings, clock, engine, calendar, hint,
                          notifier=notifier, on_answer=metrics.broker_answered)
    tracker = Tracker(journal, orders, brokers, clock, engine)
    dispatcher = Dispatcher(journal, orders, tracker, settings, clock)
    return Services(
        settings=settings, clock=clock, redactor=redactor, engine=engine,
        instruments=instruments, journal=journal, orders=orders, dispatcher=dispatcher,
        desk=SignalDesk(journal, orders, dispatcher, settings, clock, notifier=notifier),
        calendar=calendar, jobs=jobs, notifier=notifier, brokers=brokers, paper=sandbox,
        courier=courier_for(settings, jobs, clock, redactor), metrics=metrics,
    )


def _paper_price_hint(sandbox: Sandbox) -> PriceHint:
    """In paper mode a market order fills at the price the signal carried (``{{close}}``)."""

    def hint(instrument: Instrument, price: Decimal) -> None:
        try:
            sandbox.set_price(instrument.exchange.value, instrument.trading_symbol, price)
        except ValueError as exc:
            log.warning("paper broker ignored the reference price %s of %s: %s", price,
                        instrument.trading_symbol, exc)

    return hint


def live_credentials(settings: Settings) -> KotakCredentials:
    kotak = settings.kotak
    return KotakCredentials(
        flow=kotak.auth, access_token=kotak.api_key.reveal(),
        consumer_secret=kotak.api_secret.reveal(), ucc=kotak.ucc, mobile=kotak.mobile,
        pan=kotak.pan, mpin=kotak.mpin.reveal(), totp_secret=kotak.totp_secret.reveal(),
        password=kotak.password.reveal(), login_url=kotak.login_url,
        oauth_url=kotak.oauth_url, gateway_url=kotak.gateway_url,
    )


def paper_credentials(settings: Settings) -> KotakCredentials:
    account = paper.PAPER_ACCOUNT
    return KotakCredentials(
        flow=settings.kotak.auth, access_token=account.consumer_key,
        consumer_secret=account.consumer_secret, ucc=account.ucc, mobile=account.mobile,
        pan=account.pan, mpin=account.mpin, totp_secret=account.totp_secret,
        password=account.password, login_url=paper.PAPER_HOST, oauth_url=paper.PAPER_HOST,
        gateway_url=paper.PAPER_HOST,
    )

