"""``make doctor`` (``bridge doctor``): check a running setup and say what to fix, plainly.

Each check ends as ok, warning or problem with one plain sentence saying what it means and
what to do. The doctor is read-only on purpose: it never logs in to Kotak and never sends an
order, so it is safe to run beside a working bridge during market hours. It does talk to the
outside (an IP echo service, Kotak's login host, the public address), each call with a
timeout. Nothing it prints carries a secret: settings are named, never shown.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pwd
import re
import socket
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from bridge.clock import ist_text
from bridge.config import ConfigError, Mode, SchedulerPlace, Settings, load_settings
from bridge.journal.db import database_url
from bridge.journal.schema import check_writable
from bridge.journal.tables import orders
from bridge.kotak.auth import AuthFlow
from bridge.kotak.client import KotakClient
from bridge.kotak.errors import KotakError
from bridge.kotak.instruments import InstrumentError
from bridge.log import Redactor, configure_logging
from bridge.wiring import Services, build_services

DEFAULT_IP_ECHO = "https://api.ipify.org"
#: TOTP codes live 30 s: beyond that an unattended login fails outright
CLOCK_WARN_S = 2.0
CLOCK_FAIL_S = 30.0
#: how far back the journal is searched for Kotak's IP refusals
REFUSALS_SINCE = timedelta(days=7)
NEO_IP_PLACE = "the Neo app (More > Trade API > API Dashboard)"


class Level(StrEnum):
    OK = "ok"
    WARNING = "warning"
    PROBLEM = "problem"


@dataclass(frozen=True)
class Finding:
    level: Level
    topic: str
    text: str


@dataclass(frozen=True)
class Probe:
    """Where the doctor looks outside, and how long it waits for each answer."""

    ip_echo_url: str = DEFAULT_IP_ECHO
    timeout_s: float = 5.0


@dataclass
class _DateSample:
    """A ``Date`` header and the local time around the request that brought it."""

    source: str
    header: str
    sent: float
    received: float


@dataclass
class _Checkup:
    settings: Settings
    probe: Probe
    http: requests.Session
    findings: list[Finding] = field(default_factory=list)
    public_ip: str = ""
    #: the address Kotak itself saw each account's session at (its get-client-ip)
    kotak_ips: dict[str, str] = field(default_factory=dict)
    date_sample: _DateSample | None = None

    def add(self, level: Level, topic: str, message: str) -> None:
        self.findings.append(Finding(level, topic, message))

    @property
    def live(self) -> bool:
        return self.settings.mode is Mode.LIVE

    @property
    def proxies(self) -> dict[str, str] | None:
        # Kotak sees the proxy's address when KOTAK_PROXY is set, so ask through it too.
        proxy = self.settings.kotak.proxy
        return {"http": proxy, "https": proxy} if proxy else None


def diagnose(environ: dict[str, str], probe: Probe) -> list[Finding]:
    """Run every check against the settings in ``environ``; return what was found."""
    try:
        settings = load_settings(environ)
    except ConfigError as exc:
        found = [Finding(Level.PROBLEM, "settings", p) for p in exc.problems]
        found.append(Finding(Level.PROBLEM, "settings", "the bridge refuses to start with "
                             "these; fix them in .env, then run the doctor again"))
        return found
    redactor = Redactor(settings.secrets())
    configure_logging("WARNING", settings.log_format.value, redactor)
    http = requests.Session()
    http.trust_env = False  # what matters is this machine's own route, not the shell's
    checkup = _Checkup(settings, probe, http)
    try:
        _check_settings(checkup)
        refusals = _check_journal(checkup, redactor)
        _check_public_ip(checkup, refusals)
        _check_clock(checkup)
        _check_public_url(checkup)
    finally:
        http.close()
    return [Finding(f.level, f.topic, redactor.redact(f.text)) for f in checkup.findings]


def render(findings: list[Finding]) -> list[str]:
    lines = [f"{f.level.value:8s}{f.topic}: {f.text}" for f in findings]
    problems = sum(f.level is Level.PROBLEM for f in findings)
    warnings = sum(f.level is Level.WARNING for f in findings)
    if problems:
        lines.append(f"{problems} problem(s), {warnings} warning(s): fix the problems first; "
                     "until then alerts or orders will fail.")
    elif warnings:
        lines.append(f"no problems, {warnings} warning(s) worth reading.")
    else:
        lines.append("all checks passed.")
    return lines


# --- settings -----------------------------------------------------------------------------


def _check_settings(c: _Checkup) -> None:
    s = c.settings
    mode = ("paper (orders go to the built-in sandbox, no money moves)" if not c.live
            else "live (orders go to Kotak with real money)")
    c.add(Level.OK, "settings", f"valid; mode {mode}")
    for warning in s.warnings:
        c.add(Level.WARNING, "settings", warning)
    if not s.admin_password:
        c.add(Level.WARNING, "dashboard", "ADMIN_PASSWORD is empty, so the dashboard and the "
              "Kotak login page stay locked; set a long random password in .env")
    if s.public_url and s.trusted_proxies == 0:
        c.add(Level.WARNING, "settings", "PUBLIC_URL is set but TRUSTED_PROXIES=0: behind "
              "nginx or Caddy set TRUSTED_PROXIES=1, or every caller looks like 127.0.0.1 "
              "(TRADINGVIEW_IPS_ONLY and blocking after wrong secrets would not work)")


# --- the journal database and what lives in it ----------------------------------------------


def _check_journal(c: _Checkup, redactor: Redactor) -> dict[str, tuple[int, datetime]]:
    """Database, Kotak sessions, scheduler and scrip master; returns Kotak's IP refusals."""
    trouble = database_problem(c.settings, c.probe.timeout_s)
    if trouble is not None:
        c.add(Level.PROBLEM, "database", trouble)
        c.add(Level.WARNING, "database", "the Kotak session, scheduler and scrip master "
              "checks need the database and were skipped")
        return {}
    try:
        services = build_services(c.settings, redactor=redactor)
    except ConfigError as exc:
        for problem in exc.problems:
            c.add(Level.PROBLEM, "settings", problem)
        return {}
    except (SQLAlchemyError, OSError) as exc:
        c.add(Level.PROBLEM, "database", _database_words(exc, c.settings))
        return {}
    except Exception as exc:  # the bridge would not start either: say so instead of a traceback
        c.add(Level.PROBLEM, "start", f"the bridge cannot set itself up ({type(exc).__name__}: "
              f"{exc}); it would not start either. The service log shows more "
              "(journalctl -u bridge-web)")
        return {}
    try:
        try:
            check_writable(services.engine)
        except SQLAlchemyError as exc:
            c.add(Level.PROBLEM, "database", _database_words(exc, c.settings))
            return {}
        c.add(Level.OK, "database", f"the journal ({_database_name(c.settings)}) is reachable "
              "and accepts writes")
        _check_sessions(c, services)
        _check_scheduler(c, services)
        _check_instruments(c, services)
        return _ip_refusals(services)
    finally:
        services.close()


def _sqlite_file(url: str) -> Path | None:
    parsed = database_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def _database_name(settings: Settings) -> str:
    path = _sqlite_file(settings.database_url)
    if path is not None:
        return f"SQLite {path}"
    parsed = database_url(settings.database_url)
    return f"PostgreSQL {parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database}"


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def database_problem(settings: Settings, timeout_s: float) -> str | None:
    """What stops the journal database from working, in one line naming DATABASE_URL (never
    its password), or ``None``. Found quickly (within ``timeout_s``, not the engine's long
    waits): ``check``, the server's start and the doctor all ask this first."""
    path = _sqlite_file(settings.database_url)
    if path is None:
        return _postgres_trouble(settings, timeout_s)
    me = _user(os.geteuid())
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        return (f"the folder {folder.resolve()} is not writable by user {me} (it belongs to "
                f"{_user(folder.stat().st_uid)}). SQLite writes beside the database file "
                f"(its -wal and -shm files), so the folder itself must be writable: "
                f"sudo chown -R {me}: {folder.resolve()}")
    for item in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if item.exists() and not os.access(item, os.R_OK | os.W_OK):
            return (f"{item.resolve()} belongs to {_user(item.stat().st_uid)} and user {me} "
                    "cannot write it; this usually follows a bridge command run with sudo. "
                    f"Give the files back: sudo chown -R {me}: {path.parent.resolve()}")
    if not path.exists():
        return None
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return _sqlite_words(str(exc), path, timeout_s)
    finally:
        conn.close()
    return None


def _sqlite_words(message: str, path: Path, waited: float) -> str:
    lowered = message.lower()
    if "locked" in lowered or "busy" in lowered:
        return (f"the journal {path} is locked: another program has held its write lock for "
                f"more than {waited:g} s. Usually a second copy of the bridge on the same file "
                "(`make run` left running beside the service), a sqlite3 shell left inside a "
                "transaction, or the file sits on a network or synced drive (NFS, SMB, "
                "Dropbox) where SQLite's locks do not work. Stop the other program; to run "
                "several processes or hosts, use PostgreSQL (DATABASE_URL)")
    if "malformed" in lowered or "not a database" in lowered:
        return (f"the journal {path} is damaged ({message}); stop the bridge and restore the "
                "last backup (deploy/README.md, Backups)")
    if "readonly" in lowered or "read-only" in lowered:
        return (f"the journal {path} is read-only for this user: check the owner of the file "
                "and its folder")
    return f"the journal {path} cannot be used: {message}"


def _postgres_trouble(settings: Settings, timeout_s: float) -> str | None:
    # The bridge's own engine waits much longer to connect; the doctor wants a quick answer.
    try:
        engine = create_engine(database_url(settings.database_url), poolclass=NullPool,
                               connect_args={"connect_timeout": max(1, round(timeout_s))})
    except (SQLAlchemyError, ValueError) as exc:
        return f"DATABASE_URL is not a usable PostgreSQL address ({type(exc).__name__})"
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return _database_words(exc, settings)
    finally:
        engine.dispose()
    return None


def _database_words(exc: BaseException, settings: Settings) -> str:
    cause = getattr(exc, "orig", None) or exc
    message = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    password = database_url(settings.database_url).password
    if password:
        message = message.replace(str(password), "***")
    path = _sqlite_file(settings.database_url)
    if path is not None:
        return _sqlite_words(message, path, 30)
    where = _database_name(settings)
    lowered = message.lower()
    if "password authentication failed" in lowered or (
            "role" in lowered and "not exist" in lowered):
        hint = "PostgreSQL refused its user or password"
    elif "database" in lowered and "does not exist" in lowered:
        hint = "that database does not exist: create it (createdb)"
    elif "resolve" in lowered or "name or service not known" in lowered:
        hint = "its host name does not resolve: check the spelling"
    elif "refused" in lowered or "timeout" in lowered or "timed out" in lowered:
        hint = ("PostgreSQL does not answer: is it running and listening on that address, "
                "and does pg_hba.conf let this host in?")
    else:
        hint = "the journal database cannot be used"
    return f"DATABASE_URL ({where}): {hint} ({message})"


def _check_sessions(c: _Checkup, services: Services) -> None:
    login_page = c.settings.redirect_url
    renew = f"{c.settings.session_renew_at:%H:%M}"
    for account, client in services.brokers.items():
        status = client.sessions.status()
        missing = client.sessions.credentials.missing_for_unattended()
        who = f"account {account}"
        if status.login_blocked:
            # A valid session does not make this fine: tomorrow's login will not run.
            then = ("The bridge stops logging in to its paper sandbox by itself after a failed "
                    "login, as it does with Kotak" if not c.live else "The bridge will not try "
                    "again by itself (Kotak locks an account after 3 wrong logins)")
            c.add(Level.PROBLEM, "kotak session", f"{who}: {status.detail}. {then}: log in "
                  f"with `make login` or at {login_page}")
            if c.live and status.valid:
                _check_kotak_ip(c, account, client)
            continue
        if not c.live:
            c.add(Level.OK, "kotak session", f"{who}: " + (
                f"paper session valid until {ist_text(status.expires_at)}" if status.valid
                and status.expires_at else "paper mode logs in to its built-in sandbox by "
                "itself when the bridge starts"))
            continue
        if status.valid and status.expires_at is not None:
            c.add(Level.OK, "kotak session", f"{who}: logged in to Kotak, valid until "
                  f"{ist_text(status.expires_at)} (Kotak ends every session at midnight)")
            _check_kotak_ip(c, account, client)
        elif not missing:
            c.add(Level.WARNING, "kotak session", f"{who}: no valid Kotak session right now "
                  f"({status.detail}); the bridge logs in by itself when it starts and every "
                  f"trading day at {renew} IST. Orders are refused until then; to log in now "
                  "run `make login`")
        else:
            why = "" if status.detail == "no session" else f" ({status.detail})"
            c.add(Level.PROBLEM, "kotak session", f"{who}: no valid Kotak session{why}, so "
                  "every order is refused: log in with "
                  f"`make login` or at {login_page}")
        if not missing:
            off = c.settings.schedule.place is SchedulerPlace.OFF
            c.add(Level.WARNING if off else Level.OK, "kotak login", f"{who}: unattended "
                  f"login is set up (MPIN and TOTP seed stored); " + (
                      "but SCHEDULER=off, so nothing runs it: set SCHEDULER=embedded" if off
                      else f"the bridge logs in by itself every trading day at {renew} IST"))
        else:
            c.add(Level.WARNING, "kotak login", f"{who}: no unattended login (missing "
                  f"{', '.join(missing)}), so a person must log in every trading day before "
                  f"the open (`make login` or {login_page}). To let the bridge do "
                  "it, set KOTAK_MPIN and KOTAK_TOTP_SECRET (the base32 seed shown when you "
                  "registered TOTP in the Trade API dashboard)")


def _check_kotak_ip(c: _Checkup, account: str, client: KotakClient) -> None:
    """Ask Kotak which address it sees (its get-client-ip): the one to whitelist (100008)."""
    if client.sessions.credentials.flow is not AuthFlow.TOTP:
        return
    try:
        seen = client.client_ip()
    except KotakError as exc:
        c.add(Level.WARNING, "kotak IP", f"account {account}: Kotak did not say which address "
              f"it sees this machine at ({exc.message})")
        return
    c.kotak_ips[account] = seen
    c.add(Level.OK, "kotak IP", f"account {account}: Kotak sees this machine at {seen}; that "
          f"is the address to register as the static IP in {NEO_IP_PLACE}, or Kotak refuses "
          "every order with error 100008")


def _check_scheduler(c: _Checkup, services: Services) -> None:
    from bridge.schedule.runner import ROLE, STALE_AFTER

    place = c.settings.schedule.place
    if place is SchedulerPlace.OFF:
        c.add(Level.WARNING, "scheduler", "SCHEDULER=off: no daily login and no square-off "
              "run; intraday positions are left to Kotak's own square-off")
        return
    leader = services.jobs.leader(ROLE)
    age = (services.clock.now() - leader.heartbeat_at).total_seconds() if leader else None
    if leader is not None and age is not None and age <= STALE_AFTER.total_seconds():
        c.add(Level.OK, "scheduler", f"running (led by {leader.holder}, heartbeat {age:.0f} s "
              "ago): the daily login and the square-off will happen")
        return
    where = ("the web service (bridge-web, or `make run`)" if place is SchedulerPlace.EMBEDDED
             else "`bridge scheduler` (bridge-scheduler.service)")
    last = f" (last heartbeat {age:.0f} s ago)" if age is not None else ""
    c.add(Level.PROBLEM if c.live else Level.WARNING, "scheduler", f"no scheduler is "
          f"running{last}: the daily login and the intraday square-off will not happen. "
          f"Start {where}")


def _check_instruments(c: _Checkup, services: Services) -> None:
    try:
        index = services.instruments.current()
    except InstrumentError as exc:
        c.add(Level.PROBLEM if c.live else Level.WARNING, "scrip master", f"{exc}; without it "
              "no signal's symbol can be turned into an order (the bridge loads it when it "
              "starts and every trading day)")
        return
    c.add(Level.OK, "scrip master", f"{len(index)} instruments loaded for {index.trading_day}")


def _ip_refusals(services: Services) -> dict[str, tuple[int, datetime]]:
    """Orders Kotak refused for the IP rule lately: code -> (count, last time)."""
    since = services.clock.now() - REFUSALS_SINCE
    found: dict[str, tuple[int, datetime]] = {}
    with services.engine.connect() as conn:
        for code in ("100008", "1037"):
            count, last = conn.execute(
                select(func.count(), func.max(orders.c.updated_at))
                .where(orders.c.created_at >= since, orders.c.reason.like(f"%({code})%"))).one()
            if count:
                found[code] = (int(count), last)
    return found


# --- the outside world --------------------------------------------------------------------


def _check_public_ip(c: _Checkup, refusals: dict[str, tuple[int, datetime]]) -> None:
    url = c.probe.ip_echo_url
    sent = time.time()
    try:
        reply = c.http.get(url, timeout=c.probe.timeout_s, proxies=c.proxies)
        if date := reply.headers.get("Date"):  # any answer dates the clock check
            c.date_sample = _DateSample(urlsplit(url).netloc, date, sent, time.time())
        reply.raise_for_status()
        address = ipaddress.ip_address(_echoed_ip(reply.text))
    except (requests.RequestException, ValueError) as exc:
        known = sorted(set(c.kotak_ips.values()))
        if known:
            c.add(Level.OK, "public IP", f"{url} did not answer ({_reason(exc)}), but Kotak "
                  f"sees this machine at {known[0]}: that is the static IP to register")
            _report_refusals(c, refusals, known[0])
            return
        c.add(Level.WARNING, "public IP", f"could not learn this machine's public IP from "
              f"{url} ({_reason(exc)}); check it with `curl -4 {DEFAULT_IP_ECHO}`. It must be "
              f"the static IP registered in {NEO_IP_PLACE}")
        _report_refusals(c, refusals, "this machine's public IP")
        return
    c.public_ip = str(address)
    via = " (through KOTAK_PROXY)" if c.proxies else ""
    seen = sorted(set(c.kotak_ips.values()) - {str(address)})
    if seen:
        c.add(Level.WARNING, "public IP", f"{url} sees this machine at {address}{via}, but "
              f"Kotak sees {', '.join(seen)}: Kotak's view is the one that counts, so register "
              f"{seen[0]} as the static IP in {NEO_IP_PLACE}")
    if address.version == 6:
        c.add(Level.WARNING, "public IP", f"this machine reaches the internet as {address}"
              f"{via}, an IPv6 address; Kotak whitelists IPv4 only, so make sure the IPv4 "
              f"address Kotak sees is the static IP registered in {NEO_IP_PLACE}")
    elif c.live:
        c.add(Level.OK, "public IP", f"this machine's public IP is {address}{via}. It must be "
              f"the static IP registered in {NEO_IP_PLACE}, or Kotak refuses every order "
              "with error 100008 (it may be changed once every 7 days; log in again after)")
    else:
        c.add(Level.OK, "public IP", f"this machine's public IP is {address}{via}. Paper mode "
              f"does not need it; before going live register it as the static IP in "
              f"{NEO_IP_PLACE}, or Kotak refuses orders with error 100008")
    _report_refusals(c, refusals, str(address))


def _echoed_ip(body: str) -> str:
    body = body.strip()
    if body.startswith("{"):  # services such as ipify's ?format=json
        data: Any = json.loads(body)
        return str(data.get("ip", "")) if isinstance(data, dict) else ""
    return body


def _report_refusals(c: _Checkup, refusals: dict[str, tuple[int, datetime]],
                     address: str) -> None:
    if "100008" in refusals:
        count, last = refusals["100008"]
        c.add(Level.PROBLEM, "public IP", f"Kotak refused {count} order(s) in the last 7 days "
              f"with error 100008 (IP not whitelisted), the last at {ist_text(last)}: register "
              f"{address} as the static IP in {NEO_IP_PLACE} of the same application whose "
              "access token is BROKER_API_KEY, then log in again (`make login`)")
    if "1037" in refusals:
        count, last = refusals["1037"]
        c.add(Level.PROBLEM, "public IP", f"Kotak refused {count} order(s) in the last 7 days "
              f"with error 1037, the last at {ist_text(last)}: the Kotak session was made from "
              "another IP than the one sending orders; log in again from this machine")


def _check_clock(c: _Checkup) -> None:
    if c.live:
        url = c.settings.kotak.login_url
        sent = time.time()
        try:
            reply = c.http.head(url, timeout=c.probe.timeout_s, proxies=c.proxies,
                                allow_redirects=False)
            if date := reply.headers.get("Date"):
                c.date_sample = _DateSample(urlsplit(url).netloc, date, sent, time.time())
        except requests.RequestException as exc:
            c.add(Level.WARNING, "clock", f"Kotak's login host {urlsplit(url).netloc} did not "
                  f"answer ({_reason(exc)}); logins will fail if it cannot be reached")
    sample = c.date_sample
    try:
        remote = parsedate_to_datetime(sample.header).timestamp() if sample else None
    except (TypeError, ValueError):
        remote = None
    if sample is None or remote is None:
        c.add(Level.WARNING, "clock", "could not compare this machine's clock with another; "
              "check that `timedatectl status` says 'System clock synchronized: yes'")
        return
    # A Date header is cut to the whole second: its true time is half a second later on average.
    skew = (sample.sent + sample.received) / 2 - (remote + 0.5)
    side = "ahead of" if skew > 0 else "behind"
    fix = "turn on time sync: `sudo timedatectl set-ntp true`"
    if abs(skew) > CLOCK_FAIL_S:
        c.add(Level.PROBLEM, "clock", f"this machine's clock is {abs(skew):.0f} s {side} "
              f"{sample.source}: TOTP codes last 30 s, so the unattended Kotak login fails, and "
              f"square-off and journal times are off; {fix}")
    elif abs(skew) > CLOCK_WARN_S:
        c.add(Level.WARNING, "clock", f"this machine's clock is {abs(skew):.0f} s {side} "
              f"{sample.source}; TOTP codes last 30 s, so this is close to breaking the "
              f"unattended login; {fix}")
    else:
        c.add(Level.OK, "clock", f"right to within {CLOCK_WARN_S:g} s ({sample.source})")


def _check_public_url(c: _Checkup) -> None:
    public = c.settings.public_url
    if not public:
        c.add(Level.WARNING, "public address", f"PUBLIC_URL is not set: TradingView cannot "
              f"reach http://{c.settings.bind} on this machine (it calls only public addresses "
              "on ports 80 and 443). Put nginx or Caddy with a certificate in front "
              "(deploy/README.md) and set PUBLIC_URL=https://your-domain in .env")
        return
    parts = urlsplit(public)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if parts.scheme != "https":
        c.add(Level.PROBLEM, "public address", f"PUBLIC_URL {public} is not https: alerts "
              "would carry the webhook secret unencrypted across the internet. Use "
              "https://your-domain with a certificate (nginx + certbot or Caddy, "
              "deploy/README.md)")
    if port not in (80, 443):
        c.add(Level.PROBLEM, "public address", f"PUBLIC_URL uses port {port}, but TradingView "
              "only calls ports 80 and 443: serve the bridge on https port 443 (nginx or "
              "Caddy in front) and drop the port from PUBLIC_URL")
    if host in ("localhost", "127.0.0.1", "::1") or host.endswith(".local"):
        c.add(Level.PROBLEM, "public address", f"PUBLIC_URL points at {host}, which only this "
              "machine can reach; use the domain name whose DNS A record is this machine's "
              "public IP")
    url = f"{public}/healthz"
    try:
        reply = c.http.get(url, timeout=c.probe.timeout_s)
    except requests.RequestException as exc:
        c.add(Level.PROBLEM, "public address", _unreachable_words(exc, url, host, port, c))
        return
    if reply.status_code == 200 and _is_bridge(reply):
        c.add(Level.OK, "public address", f"{url} answers 200: the bridge can be reached there"
              + (" over TLS with a trusted certificate" if reply.url.startswith("https") else ""))
        _check_dns(c, host)
    elif reply.status_code == 200:
        c.add(Level.PROBLEM, "public address", f"{url} answers, but not with the bridge's "
              "reply: the web server there does not pass requests on to the bridge (check "
              "proxy_pass / reverse_proxy)")
    elif reply.status_code in (502, 503, 504):
        c.add(Level.PROBLEM, "public address", f"the web server at {host} answers, but cannot "
              f"reach the bridge behind it (HTTP {reply.status_code}): is the bridge running "
              f"(sudo systemctl status bridge-web), and does the proxy point at "
              f"{c.settings.bind}?")
    else:
        c.add(Level.PROBLEM, "public address", f"{url} answered HTTP {reply.status_code} instead "
              "of 200: the web server there does not pass /healthz on to the bridge")


def _is_bridge(reply: requests.Response) -> bool:
    try:
        body: Any = reply.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") == "ok"


def _unreachable_words(exc: requests.RequestException, url: str, host: str, port: int,
                       c: _Checkup) -> str:
    message = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        if "WRONG_VERSION_NUMBER" in message or "record layer failure" in message:
            return (f"{host}:{port} answers, but not with TLS (plain http on the https port?): "
                    "the server block needs `listen 443 ssl` and a certificate")
        match = re.search(r"certificate verify failed: ([^(\"')]+)", message)
        why = match.group(1).strip() if match else "the TLS handshake failed"
        return (f"the certificate of {host} is not accepted ({why}); TradingView refuses it "
                "too. Get one from Let's Encrypt (certbot or Caddy, deploy/README.md), for this "
                "exact name, not expired, with nginx sending fullchain.pem")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return (f"nothing answered on {host} port {port} within {c.probe.timeout_s:g} s: the "
                f"port is probably closed by a firewall (sudo ufw allow {port}/tcp, and your "
                "cloud provider's firewall) or the name points at another machine")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return (f"{host} took the connection but sent no answer within {c.probe.timeout_s:g} s: "
                "is the bridge behind it running (sudo systemctl status bridge-web)?")
    lowered = message.lower()
    if any(words in lowered for words in ("name or service not known", "nameresolution",
                                          "temporary failure in name resolution",
                                          "nodename nor servname", "getaddrinfo failed")):
        ip = c.public_ip or "this machine's public IP"
        return f"the name {host} does not resolve: create a DNS A record pointing to {ip}"
    if "refused" in lowered:
        return (f"{host} refuses connections on port {port}: nothing listens there; start "
                "nginx or Caddy (sudo systemctl status nginx)")
    return f"{url} cannot be reached: {_reason(exc)}"


def _check_dns(c: _Checkup, host: str) -> None:
    if not c.public_ip or not host:
        return
    try:
        ipaddress.ip_address(host)
        return  # an address, not a name: nothing to resolve
    except ValueError:
        pass
    try:
        found = {str(info[4][0]) for info in socket.getaddrinfo(host, None, socket.AF_INET)}
    except OSError:
        return
    if c.public_ip not in found:
        c.add(Level.WARNING, "public address", f"{host} points to {', '.join(sorted(found))}, "
              f"but this machine's public IP is {c.public_ip}: fix the DNS A record (unless a "
              "CDN such as Cloudflare sits in front on purpose)")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, requests.exceptions.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "could not connect"
    if isinstance(exc, requests.RequestException):
        return type(exc).__name__
    return "the answer was not an IP address"
