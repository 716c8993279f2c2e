"""Operator commands: ``.venv/bin/bridge <command>`` (``make help`` lists the everyday ones;
``python -m bridge`` is the same).

Each command prints its answer on stdout and nothing else: log lines go to stderr, and only
from WARNING up unless ``-v`` (INFO) or ``-vv`` (DEBUG) is given.

``check`` validates the settings; ``doctor`` checks a running setup end to end (read-only);
``banner`` prints the webhook addresses and secret;
``login`` is a person's Kotak login (the way out after an unattended login failed);
``instruments refresh`` loads today's scrip master; ``instruments lookup`` shows what a
signal's symbol resolves to; ``killswitch on|off`` switches close-only mode; ``signals``
lists what became of the latest signals and ``signal <alert_id>`` shows one's timeline;
``squareoff`` closes intraday positions now (``--dry-run`` prints the orders instead;
``--block-entries`` also stops new intraday entries for the day); ``entries`` shows whether
they are stopped and ``entries allow`` accepts them again;
``jobs`` shows the scheduler's next runs and last outcomes; ``notices`` what the operator was
told; ``scheduler`` runs the scheduler as its own process (``SCHEDULER=separate``).
"""

from __future__ import annotations

import os
import signal as posix_signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import requests

from bridge.accounts import load_accounts
from bridge.clock import ist_text
from bridge.config import ConfigError, Mode, Settings, environment, load_settings
from bridge.domain import DEFAULT_ACCOUNT, Exchange
from bridge.journal.jobs import RunStatus
from bridge.kotak.auth import AuthFlow
from bridge.kotak.errors import KotakError
from bridge.kotak.instruments import InstrumentError
from bridge.log import Redactor, configure_logging
from bridge.startup import banner as banner_text
from bridge.wiring import Services, build_services


def _settings() -> Settings:
    try:
        return load_settings(environment())
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


#: ``-v`` counts: the level of the log lines a command writes to stderr
_VERBOSITY = ("WARNING", "INFO", "DEBUG")


def _log_level() -> str:
    context = click.get_current_context(silent=True)
    verbose = context.find_root().params.get("verbose", 0) if context is not None else 0
    return _VERBOSITY[min(int(verbose or 0), len(_VERBOSITY) - 1)]


@contextmanager
def _services() -> Iterator[Services]:
    settings = _settings()
    redactor = Redactor(settings.secrets())
    configure_logging(_log_level(), settings.log_format.value, redactor)
    services = build_services(settings, redactor=redactor)
    try:
        yield services
    finally:
        services.close()


def _paper_sessions(services: Services) -> None:
    """Log the paper accounts in to the built-in sandbox, as the server does at start: paper
    mode needs no person's login, so a command run before (or without) ``make run`` works."""
    for name, client in services.brokers.items():
        account = services.accounts.accounts.get(name)
        if account is not None and account.mode is Mode.PAPER \
                and not client.sessions.status().valid:
            client.sessions.login()


@click.group()
@click.option("-v", "--verbose", count=True,
              help="also show the log lines (-v: INFO, -vv: DEBUG) on stderr")
def cli(verbose: int) -> None:
    """Kotak signal bridge."""


def main(prog_name: str = "bridge") -> None:
    """The ``bridge`` command (``.venv/bin/bridge``, installed by ``make run``)."""
    cli(prog_name=prog_name)


@cli.command()
def check() -> None:
    """Validate the settings and report every problem."""
    settings = _settings()
    for warning in settings.warnings:
        click.echo(f"warning: {warning}")
    try:
        accounts = load_accounts(settings)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    from bridge.doctor import database_problem

    trouble = database_problem(settings, timeout_s=5.0)
    if trouble is not None:
        click.echo(f"the bridge cannot start: {trouble}", err=True)
        sys.exit(2)
    click.echo(f"settings are valid (mode {settings.mode.value}, database "
               f"{settings.database_url.split(':', 1)[0]}, accounts "
               f"{', '.join(accounts.accounts)})")


@cli.command()
@click.option("--ip-echo-url", default="https://api.ipify.org", show_default=True,
              help="a service that answers with the caller's public IP")
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(0.1, 60),
              help="seconds to wait for each outside answer")
def doctor(ip_echo_url: str, timeout: float) -> None:
    """Check this setup (database, Kotak session, IP, clock, TLS) and say what to fix."""
    from bridge.doctor import Level, Probe, diagnose, render

    findings = diagnose(environment(), Probe(ip_echo_url=ip_echo_url, timeout_s=timeout))
    for line in render(findings):
        click.echo(line)
    if any(finding.level is Level.PROBLEM for finding in findings):
        sys.exit(1)


@cli.command()
@click.option("--after-start", is_flag=True,
              help="wait until the server started beside this command answers, then print "
                   "(what `make run` does, so the banner is the last thing on the screen)")
def banner(after_start: bool) -> None:
    """Print the webhook addresses, the secret alerts must carry and the dashboard password."""
    settings = _settings()
    readiness: dict[str, Any] | None = None
    if after_start:
        # Ctrl-C stops the server; this helper then sees its parent go and ends quietly.
        posix_signal.signal(posix_signal.SIGINT, posix_signal.SIG_IGN)
        readiness = _wait_for_server(settings, os.getppid())
        if readiness is None:
            return
    click.echo(banner_text(settings, show_secret=True))
    if readiness is not None and readiness.get("status") != "ready":
        reasons = readiness.get("reasons") or ["the server did not say why"]
        click.echo("Not ready yet:")
        for reason in reasons:
            click.echo(f"  - {reason}")
        click.echo("  (make doctor explains each; /readyz says when it is ready)")


#: how long a started server may take to become ready before the banner says why it is not
READY_WAIT_S = 20.0


def _wait_for_server(settings: Settings, parent: int) -> dict[str, Any] | None:
    """Poll the server's /readyz until it is ready (or has answered for READY_WAIT_S); its
    last answer, or ``None`` when the server process (this one's parent) went away first."""
    host = settings.bind_host
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    url = f"http://{f'[{host}]' if ':' in host else host}:{settings.bind_port}/readyz"
    http = requests.Session()
    http.trust_env = False  # the server is on this machine: no proxy in between
    answered_since: float | None = None
    try:
        while os.getppid() == parent:
            try:
                body: Any = http.get(url, timeout=2).json()
            except (requests.RequestException, ValueError):
                time.sleep(0.25)
                continue
            answered_since = answered_since or time.monotonic()
            ready = isinstance(body, dict) and body.get("status") == "ready"
            if ready or time.monotonic() - answered_since > READY_WAIT_S:
                return body if isinstance(body, dict) else {}
            time.sleep(0.25)
    finally:
        http.close()
    return None


@cli.command()
@click.option("--totp", default="", help="the 6-digit code from your authenticator app")
@click.option("--mpin", default="", help="your Neo MPIN (asked for when not set)")
@click.option("--otp", default="", help="legacy flow: the OTP Kotak sent (asked for)")
@click.option("--account", default=DEFAULT_ACCOUNT, show_default=True,
              help="which account (ACCOUNTS_FILE)")
def login(totp: str, mpin: str, otp: str, account: str) -> None:
    """Log in to Kotak as a person (also clears a failed unattended login)."""
    with _services() as services:
        if account not in services.brokers:
            click.echo(f"no enabled account {account!r}; accounts: "
                       f"{', '.join(services.brokers)}", err=True)
            sys.exit(1)
        manager = services.broker(account).sessions
        creds = manager.credentials
        try:
            if creds.flow is AuthFlow.TOTP:
                if not totp and not creds.totp_secret:
                    totp = click.prompt("TOTP from your authenticator app")
                if not mpin and not creds.mpin:
                    mpin = click.prompt("MPIN", hide_input=True)
                session = manager.login(attended=True, totp=totp, mpin=mpin)
            elif mpin or creds.mpin:
                session = manager.login(attended=True, mpin=mpin)
            else:
                manager.begin_otp()
                session = manager.complete_otp(otp or click.prompt("OTP Kotak sent you"))
        except KotakError as exc:
            click.echo(f"login failed: {exc.message}", err=True)
            sys.exit(1)
        click.echo(f"logged in; the Kotak session is valid until "
                   f"{ist_text(session.expires_at)}")


@cli.group()
def instruments() -> None:
    """The scrip master."""


@instruments.command("refresh")
def instruments_refresh() -> None:
    """Download and load today's scrip master (the old one stays if this fails)."""
    with _services() as services:
        try:
            _paper_sessions(services)
            report = services.instruments.refresh(services.broker())
        except (KotakError, InstrumentError) as exc:
            click.echo(f"refresh failed, previous scrip master kept: {exc}", err=True)
            sys.exit(1)
        counts = ", ".join(f"{seg} {n}" for seg, n in sorted(report.counts.items()))
        click.echo(f"{report.total} instruments for {report.trading_day} ({counts})")


@instruments.command("lookup")
@click.argument("symbol")
@click.option("--exchange", type=click.Choice([e.value for e in Exchange]), default=None)
def instruments_lookup(symbol: str, exchange: str | None) -> None:
    """Show the instrument a signal's SYMBOL resolves to."""
    with _services() as services:
        try:
            found = services.instruments.current().resolve(
                symbol, Exchange(exchange) if exchange else None)
        except InstrumentError as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)
        click.echo(f"{found.exchange}:{found.trading_symbol} ({found.kind}) lot {found.lot_size} "
                   f"tick {found.tick_size} expiry {found.expiry or '-'} "
                   f"freeze {found.freeze_quantity or '-'} token {found.token}")


@cli.command()
@click.argument("state", type=click.Choice(["on", "off", "status"]), default="status")
def killswitch(state: str) -> None:
    """Close-only mode: with the switch on, new entries are refused and exits still go."""
    with _services() as services:
        if state != "status":
            services.desk.set_kill_switch(state == "on", by="cli")
        on = services.journal.switches.kill_switch()
        click.echo("kill switch ON: entries refused, exits allowed" if on else
                   "kill switch off: signals trade normally")


@cli.command()
@click.option("--last", default=20, show_default=True, help="how many signals")
def signals(last: int) -> None:
    """What became of the latest signals."""
    with _services() as services:
        for row in services.journal.signals.recent_signals(limit=last):
            orders = services.journal.orders.orders_of(row.id)
            sent = ", ".join(f"{o.side} {o.quantity} {o.trading_symbol} "
                             f"{o.broker_order_id or '-'} {o.status.value}" for o in orders)
            why = f" ({row.error.code}: {row.error.message})" if row.error else ""
            click.echo(f"{ist_text(row.received_at)}  {row.source:11s} {row.alert_id:24s} "
                       f"{row.status.value:10s} {sent or row.symbol}{why}")


@cli.command()
@click.argument("alert_id")
def signal(alert_id: str) -> None:
    """One signal's journal entry and timeline."""
    with _services() as services:
        rows = services.journal.signals.signals_by_alert_id(alert_id)
        if not rows:
            click.echo(f"no signal {alert_id!r} in the journal", err=True)
            sys.exit(1)
        for row in rows:
            click.echo(f"signal {row.id} ({row.alert_id}) from {row.source} at "
                       f"{ist_text(row.received_at)}: {row.status.value}")
            if row.error:
                click.echo(f"  {row.error.code}: {row.error.message}")
            click.echo(f"  body: {row.raw_body}")
            for event in services.journal.history.events_of(row.id):
                who = f"order {event.order_id}" if event.order_id else "signal"
                click.echo(f"  {ist_text(event.at)}  {who:10s} {event.status:14s} "
                           f"{event.detail}")


@cli.command()
@click.option("--exchange", "exchanges", multiple=True,
              type=click.Choice([e.value for e in Exchange]),
              help="only this exchange (repeatable); default: every exchange")
@click.option("--dry-run", is_flag=True, help="print the cancels and closes, send nothing")
@click.option("--block-entries/--keep-entries", default=False, show_default=True,
              help="also stop new intraday (MIS) entries on these exchanges until the next "
                   "trading day (lift with `entries allow`); default: keep accepting them")
def squareoff(exchanges: tuple[str, ...], dry_run: bool, block_entries: bool) -> None:
    """Close every intraday (MIS) position now and verify the book flat."""
    from bridge.orders.entries import WHY_CLI
    from bridge.schedule.jobs import JobActions

    with _services() as services:
        try:
            _paper_sessions(services)
            services.instruments.ensure(services.broker())
        except (KotakError, InstrumentError) as exc:
            click.echo(f"no scrip master and none could be loaded: {exc}", err=True)
            sys.exit(1)
        chosen = [Exchange(e) for e in exchanges] or list(Exchange)
        outcome = JobActions(services).square_off(chosen, dry_run=dry_run,
                                                  block_entries=block_entries, why=WHY_CLI,
                                                  by="cli")
        for report in outcome.report.get("reports", []):
            click.echo("\n".join(report["lines"]))
        if outcome.status is RunStatus.FAILED:
            sys.exit(1)


@cli.command()
@click.argument("action", type=click.Choice(["status", "allow"]), default="status")
@click.option("--exchange", "exchanges", multiple=True,
              type=click.Choice([e.value for e in Exchange]),
              help="with allow: only this exchange (repeatable); default: every exchange")
def entries(action: str, exchanges: tuple[str, ...]) -> None:
    """Whether a square-off stopped new intraday entries today; ``allow`` accepts them
    again."""
    from bridge.orders.entries import EntryStops

    with _services() as services:
        stops = EntryStops(services.journal, services.notifier, services.clock,
                           services.calendar)
        if action == "allow":
            lifted = stops.allow("cli", exchanges=exchanges or None)
            where = ", ".join(sorted({block.exchange for block in lifted}))
            click.echo(f"new intraday (MIS) entries allowed again on {where}" if lifted else
                       "new intraday (MIS) entries were not stopped: nothing to allow")
        left = stops.today()
        if not left:
            click.echo("new intraday (MIS) entries are accepted on every exchange")
            return
        click.echo("new intraday (MIS) entries are stopped today (exits still go):")
        for line in stops.lines(left):
            click.echo(f"  {line}")
        click.echo("allow them again with `bridge entries allow` (or `make entries-allow`)")


@cli.command()
def jobs() -> None:
    """The scheduler's jobs: when each runs next and how it last ended."""
    from bridge.schedule.runner import ROLE, Scheduler

    with _services() as services:
        scheduler = Scheduler(services)
        last = services.jobs.last_runs()
        leader = services.jobs.leader(ROLE)
        if leader is None:
            click.echo(f"scheduler: no leader ({services.settings.schedule.place.value})")
        else:
            age = (services.clock.now() - leader.heartbeat_at).total_seconds()
            click.echo(f"scheduler: led by {leader.holder} since {ist_text(leader.since)}, "
                       f"heartbeat {age:.0f} s ago")
        for spec, upcoming in scheduler.next_runs():
            click.echo(f"{spec.name:28s} {spec.describe()}")
            click.echo(f"  next: {ist_text(upcoming) if upcoming else 'none within a month'}")
            run = last.get(spec.name)
            if run is not None:
                click.echo(f"  last: due {ist_text(run.trigger_at)} {run.status.value}: "
                           f"{run.summary}")


@cli.command()
@click.option("--last", default=20, show_default=True, help="how many notices")
def notices(last: int) -> None:
    """What the bridge told the operator (login, square-off, failures)."""
    with _services() as services:
        for notice in services.jobs.notices(limit=last):
            click.echo(f"{ist_text(notice.at)}  {notice.level:7s} {notice.kind:16s} "
                       f"{notice.text}")


@cli.command()
def scheduler() -> None:
    """Run the scheduler in this process until stopped (SCHEDULER=separate)."""
    from bridge.schedule.runner import start_scheduler

    with _services() as services:
        running = start_scheduler(services)
        stop = threading.Event()
        for signum in (posix_signal.SIGTERM, posix_signal.SIGINT):
            posix_signal.signal(signum, lambda *_: stop.set())
        click.echo(f"scheduler {running.runner} started; it leads when no other process does")
        stop.wait()
