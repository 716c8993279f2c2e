"""Settings, read once at start from the environment (and ``.env``), strictly.

Every value is parsed explicitly; all problems are collected and reported together, and the
process refuses to start with any. Secret values are wrapped in :class:`Secret`, so they
print as ``***`` and never reach a message, a log line or a response. Names follow
``DESIGN.md`` section 4 (Kotak's own names where they exist); ``.env.sample`` documents each.

Nothing here runs at import: :func:`environment` reads ``os.environ`` and the ``.env`` file
when called, and :func:`load_settings` parses a mapping, so tests pass their own.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from dotenv import dotenv_values

from bridge.domain import Exchange
from bridge.kotak.auth import AuthFlow

T = TypeVar("T")


class Mode(StrEnum):
    PAPER = "paper"
    LIVE = "live"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class SchedulerPlace(StrEnum):
    """Where the scheduler runs: in the web workers (one of them leads), in its own process
    (``python -m bridge scheduler``, the systemd unit), or nowhere (no login, no square-off)."""

    EMBEDDED = "embedded"
    SEPARATE = "separate"
    OFF = "off"


class Secret:
    """A secret value that never shows itself by accident."""

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class ConfigError(Exception):
    """The settings are unusable; ``problems`` lists every one of them."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("the bridge cannot start:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


DEFAULT_SQUAREOFF = "NSE=15:15,BSE=15:15,NFO=15:15,BFO=15:15,CDS=16:45,MCX=23:25"
DEFAULT_TRADING_HOURS = ("NSE=09:15-15:30,BSE=09:15-15:30,NFO=09:15-15:30,BFO=09:15-15:30,"
                         "CDS=09:00-17:00,MCX=09:00-23:55")
KNOWN_KEYS = frozenset({
    "BROKER_API_KEY", "BROKER_API_SECRET", "REDIRECT_URL", "BRIDGE_MODE", "BRIDGE_BIND",
    "WEBHOOK_SECRET", "DATABASE_URL", "KOTAK_AUTH", "KOTAK_UCC", "KOTAK_MOBILE", "KOTAK_PAN",
    "KOTAK_MPIN", "KOTAK_TOTP_SECRET", "KOTAK_PASSWORD", "KOTAK_LOGIN_URL", "KOTAK_OAUTH_URL",
    "KOTAK_GATEWAY_URL", "KOTAK_ORDER_RATE", "KOTAK_CONNECT_TIMEOUT_S", "KOTAK_READ_TIMEOUT_S",
    "KOTAK_PROXY", "SQUAREOFF_TIMES", "SESSION_RENEW_AT", "DEDUP_WINDOW_S",
    "TRADINGVIEW_IPS_ONLY", "TRUSTED_PROXIES", "ADMIN_PASSWORD", "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_CHAT_ID", "DATA_DIR", "LOG_LEVEL", "LOG_FORMAT", "BRIDGE_SECRET_KEY",
    "MARKET_HOURS", "TRADING_HOURS", "MAX_ORDERS_PER_DAY", "MAX_ORDERS_PER_STRATEGY",
    "MAX_QUANTITY_PER_DAY", "FREEZE_SPLIT", "SIGNAL_TTL_S", "RESPONSE_BUDGET_MS",
    "INBOUND_LIMIT_PER_MINUTE", "AUTH_FAILURE_LIMIT", "CHARTINK_CONFIG", "SCHEDULER",
    "INSTRUMENTS_REFRESH_AT", "HOLIDAYS_FILE", "JOURNAL_RETENTION_DAYS", "RECONCILE_EVERY_S",
    "SQUAREOFF_ROUNDS", "SQUAREOFF_FILL_WAIT_S", "NOTIFY_WEBHOOK_URL", "TELEGRAM_API_URL",
    "PUBLIC_URL", "ACCOUNTS_FILE", "SESSION_STAGGER_S", "DATABASE_POOL_SIZE",
    "DATABASE_MAX_OVERFLOW", "API_KEY", "LEG_FAILURE",
})
#: names starting so are the bridge's: one it does not know is a misspelt setting, ignored
#: unless the start says so (SESSION_ is left out: desktops set SESSION_MANAGER)
_WATCHED_PREFIXES = ("KOTAK_", "BRIDGE_", "BROKER_", "TELEGRAM_", "WEBHOOK_", "SQUAREOFF_",
                     "NOTIFY_", "CHARTINK_", "TRADINGVIEW_", "DATABASE_")
#: read from the environment by the launcher, not by the settings
_LAUNCHER_KEYS = frozenset({"ENV_FILE", "WEB_CONCURRENCY", "GUNICORN_THREADS",
                            "BRIDGE_TEST_POSTGRES_URL"})
#: environment variables holding the secrets of the accounts in ACCOUNTS_FILE
ACCOUNT_ENV_PREFIX = "ACCOUNT_"


@dataclass(frozen=True)
class KotakSettings:
    auth: AuthFlow
    api_key: Secret
    api_secret: Secret
    ucc: str
    mobile: str
    pan: str
    mpin: Secret
    totp_secret: Secret
    password: Secret
    login_url: str
    oauth_url: str
    gateway_url: str
    order_rate: int
    connect_timeout_s: float
    read_timeout_s: float
    proxy: str


LEG_FAILURE_CHOICES = ("REPORT", "UNWIND")


@dataclass(frozen=True)
class RiskSettings:
    """Rules an order must pass before it reaches the broker (``bridge.orders.rules``)."""

    market_hours: bool  # refuse outside trading hours and entries after square-off time
    trading_hours: dict[Exchange, tuple[time, time]]
    max_orders_per_day: int  # per account, entries only; 0 = no cap
    max_orders_per_strategy: int  # per strategy per day, entries only; 0 = no cap
    max_quantity_per_day: int  # units per strategy and instrument per day, entries; 0 = off
    freeze_split: bool  # split orders above the freeze quantity (else refuse)
    #: a multi-leg signal whose later leg fails: ``report`` (tell the operator, leave the
    #: placed legs) or ``unwind`` (also cancel the legs still working and close the filled)
    leg_failure: str = "report"


@dataclass(frozen=True)
class IntakeSettings:
    """How signals are taken in and answered."""

    signal_ttl_s: int  # a queued signal not sent by then expires
    response_budget_ms: int  # what the caller waits for, at most
    max_body_bytes: int
    inbound_limit_per_minute: int  # per address, per worker process
    auth_failure_limit: int  # failed secrets per address in 10 minutes before a block
    chartink_config: Path


@dataclass(frozen=True)
class ScheduleSettings:
    """The scheduler's jobs (``bridge.schedule``); the login and square-off times are on
    :class:`Settings` under their DESIGN.md names."""

    place: SchedulerPlace
    instruments_refresh_at: time  # daily scrip master refresh, after the login
    holidays_file: Path  # the user's additions to the packaged holiday calendar
    retention_days: int  # journal housekeeping keeps this many days
    reconcile_every_s: int  # reconciliation sweep interval
    squareoff_rounds: int  # closing attempts per position (the first at market)
    squareoff_fill_wait_s: float  # how long each round waits for its closes to fill
    session_stagger_s: float  # pause between two accounts' daily logins


@dataclass(frozen=True)
class Settings:
    mode: Mode
    bind_host: str
    bind_port: int
    webhook_secret: Secret
    #: key of the REST API at /api/v1 (``apikey`` in each call); empty: the API is off
    api_key: Secret
    database_url: str
    database_pool: tuple[int | None, int | None]  # pool size, overflow; None: by database
    data_dir: Path
    redirect_url: str
    kotak: KotakSettings
    squareoff_times: dict[Exchange, time]
    session_renew_at: time
    dedup_window_s: int
    tradingview_ips_only: bool
    trusted_proxies: int
    admin_password: Secret
    telegram_bot_token: Secret
    telegram_chat_id: str
    telegram_api_url: str  # Telegram's Bot API host; a test points it at a fake server
    notify_webhook_url: Secret  # generic outbound notifications (JSON POST); may hold a token
    public_url: str  # the https address TradingView calls (nginx/Caddy in front); "" = unknown
    accounts_file: Path  # more Kotak accounts and the strategies they follow (bridge.accounts)
    account_env: dict[str, Secret]  # ACCOUNT_<NAME>_<SECRET> values for those accounts
    log_level: str
    log_format: LogFormat
    secret_key: Secret
    risk: RiskSettings
    intake: IntakeSettings
    schedule: ScheduleSettings
    warnings: tuple[str, ...] = field(default=())

    @property
    def bind(self) -> str:
        return f"{self.bind_host}:{self.bind_port}"

    def secrets(self) -> list[str]:
        """Every configured secret value, for the log redactor."""
        values = (self.webhook_secret, self.api_key, self.admin_password,
                  self.telegram_bot_token, self.notify_webhook_url,
                  self.secret_key, self.kotak.api_key, self.kotak.api_secret, self.kotak.mpin,
                  self.kotak.totp_secret, self.kotak.password)
        found = [value.reveal() for value in (*values, *self.account_env.values()) if value]
        # DATABASE_URL and KOTAK_PROXY may carry a password, and an error may repeat the URL.
        passwords = [urlsplit(url).password for url in (self.database_url, self.kotak.proxy)]
        return found + [password for password in passwords if password]


def environment(env_file: Path | None = None) -> dict[str, str]:
    """Return the process environment over the ``.env`` file (the environment wins).

    The file is ``$ENV_FILE`` when set, else ``.env`` in the working directory.
    """
    path = env_file or Path(os.environ.get("ENV_FILE", ".env"))
    values: dict[str, str] = {}
    if path.is_file():
        values.update({key: value for key, value in dotenv_values(path).items()
                       if value is not None})
    values.update(os.environ)
    return values


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Parse and check every setting.

    :raises ConfigError: listing every problem found (values of secrets are never shown).
    """
    r = _Reader(environ)
    mode = r.choice("BRIDGE_MODE", Mode, Mode.PAPER)
    host, port = r.bind("BRIDGE_BIND", "127.0.0.1:5000")
    webhook_secret = r.secret("WEBHOOK_SECRET")
    if not webhook_secret:
        r.problem("WEBHOOK_SECRET is required: every signal must carry it (`make run` "
                  "writes a fresh one into .env)")
    elif len(webhook_secret.reveal()) < 16:
        r.warn("WEBHOOK_SECRET is shorter than 16 characters: anyone who guesses it can trade")
    api_key = _api_key(r, webhook_secret)
    kotak = _kotak_settings(r, mode)
    squareoff = r.squareoff("SQUAREOFF_TIMES")
    telegram_token = r.secret("TELEGRAM_BOT_TOKEN")
    telegram_chat = r.text("TELEGRAM_CHAT_ID")
    if bool(telegram_token) != bool(telegram_chat):
        r.problem("TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID go together: set both or neither")
    notify_webhook = r.secret(
        "NOTIFY_WEBHOOK_URL", rule="must be an http(s) URL",
        check=lambda v: urlsplit(v).scheme in ("http", "https") and bool(urlsplit(v).netloc))
    secret_key = r.secret("BRIDGE_SECRET_KEY")
    if secret_key and not _is_fernet_key(secret_key.reveal()):
        r.problem("BRIDGE_SECRET_KEY must be 32 url-safe base64 bytes (value not shown); "
                  "generate one with: python -c \"from cryptography.fernet import Fernet; "
                  "print(Fernet.generate_key().decode())\"")
    settings = Settings(
        mode=mode,
        bind_host=host,
        bind_port=port,
        webhook_secret=webhook_secret,
        api_key=api_key,
        database_url=r.database_url("DATABASE_URL", "sqlite:///instance/bridge.db"),
        database_pool=(r.optional_integer("DATABASE_POOL_SIZE", 1, 200),
                       r.optional_integer("DATABASE_MAX_OVERFLOW", 0, 500)),
        data_dir=Path(r.text("DATA_DIR", "instance")),
        redirect_url=r.url("REDIRECT_URL", "http://127.0.0.1:5000/kotak/callback"),
        kotak=kotak,
        squareoff_times=squareoff,
        session_renew_at=r.hhmm("SESSION_RENEW_AT", "08:30"),
        dedup_window_s=r.integer("DEDUP_WINDOW_S", 10, 0, 3600),
        tradingview_ips_only=r.boolean("TRADINGVIEW_IPS_ONLY", False),
        trusted_proxies=r.integer("TRUSTED_PROXIES", 0, 0, 5),
        admin_password=r.secret("ADMIN_PASSWORD"),
        telegram_bot_token=telegram_token,
        telegram_chat_id=telegram_chat,
        telegram_api_url=r.url("TELEGRAM_API_URL", "https://api.telegram.org"),
        notify_webhook_url=notify_webhook,
        public_url=r.url("PUBLIC_URL", "", required=False),
        accounts_file=Path(r.text("ACCOUNTS_FILE")
                           or str(Path(r.text("DATA_DIR", "instance")) / "accounts.json")),
        account_env={key: Secret(value.strip()) for key, value in environ.items()
                     if key.startswith(ACCOUNT_ENV_PREFIX) and value.strip()},
        log_level=r.choice_text("LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO"),
        log_format=r.choice("LOG_FORMAT", LogFormat, LogFormat.TEXT),
        secret_key=secret_key,
        risk=RiskSettings(
            market_hours=r.market_hours("MARKET_HOURS", mode),
            trading_hours=r.trading_hours("TRADING_HOURS"),
            max_orders_per_day=r.integer("MAX_ORDERS_PER_DAY", 500, 0, 100_000),
            max_orders_per_strategy=r.integer("MAX_ORDERS_PER_STRATEGY", 200, 0, 100_000),
            max_quantity_per_day=r.integer("MAX_QUANTITY_PER_DAY", 0, 0, 100_000_000),
            freeze_split=r.boolean("FREEZE_SPLIT", True),
            leg_failure=r.choice_text("LEG_FAILURE", LEG_FAILURE_CHOICES, "REPORT").lower(),
        ),
        intake=IntakeSettings(
            signal_ttl_s=r.integer("SIGNAL_TTL_S", 120, 5, 3600),
            response_budget_ms=r.integer("RESPONSE_BUDGET_MS", 800, 100, 2500),
            max_body_bytes=128 * 1024,
            inbound_limit_per_minute=r.integer("INBOUND_LIMIT_PER_MINUTE", 600, 1, 100_000),
            auth_failure_limit=r.integer("AUTH_FAILURE_LIMIT", 10, 1, 1000),
            chartink_config=Path(r.text("CHARTINK_CONFIG")
                                 or str(Path(r.text("DATA_DIR", "instance")) / "chartink.json")),
        ),
        schedule=ScheduleSettings(
            place=r.choice("SCHEDULER", SchedulerPlace, SchedulerPlace.EMBEDDED),
            instruments_refresh_at=r.hhmm("INSTRUMENTS_REFRESH_AT", "08:40"),
            holidays_file=Path(r.text("HOLIDAYS_FILE")
                               or str(Path(r.text("DATA_DIR", "instance")) / "holidays.csv")),
            retention_days=r.integer("JOURNAL_RETENTION_DAYS", 90, 1, 3650),
            reconcile_every_s=r.integer("RECONCILE_EVERY_S", 300, 5, 3600),
            squareoff_rounds=r.integer("SQUAREOFF_ROUNDS", 3, 1, 10),
            squareoff_fill_wait_s=r.number("SQUAREOFF_FILL_WAIT_S", 3.0, 0.2, 60.0),
            session_stagger_s=r.number("SESSION_STAGGER_S", 1.0, 0.0, 60.0),
        ),
        warnings=(),
    )
    if settings.schedule.place is SchedulerPlace.OFF and mode is Mode.LIVE:
        r.warn("SCHEDULER=off: no daily login and no square-off will run; intraday positions "
               "are left to Kotak's own square-off")
    for key in sorted(environ):
        warning = unknown_setting(key)
        if warning:
            r.warn(warning)
    if r.problems:
        raise ConfigError(r.problems)
    return dataclasses.replace(settings, warnings=tuple(r.warnings))


def unknown_setting(name: str) -> str:
    """Why ``name`` looks like a misspelt setting (naming the nearest one), or ``""``.

    Any unknown name with one of the bridge's prefixes (``TELEGRAM_TOKEN``); without one only
    a near twin of a setting (``WEBHOOKSECRET``), since the environment holds other programs'
    names too."""
    if name in KNOWN_KEYS or name in _LAUNCHER_KEYS or name.startswith(ACCOUNT_ENV_PREFIX):
        return ""
    watched = name.startswith(_WATCHED_PREFIXES)
    near = difflib.get_close_matches(name, KNOWN_KEYS, n=1, cutoff=0.6 if watched else 0.9)
    if not (watched or near):
        return ""
    hint = f"; did you mean {near[0]}?" if near else ""
    return f"{name} is not a setting of the bridge and is ignored{hint}"


#: what an API key may be made of: printable ASCII without spaces or quotes, so that it
#: survives a JSON body, a shell command line and a .env file unchanged
_API_KEY_TEXT = re.compile(r"[A-Za-z0-9._~+/=:@%^*!#$&()\[\]{}<>?|,;-]+")
API_KEY_MIN_LENGTH = 16


def _api_key(r: _Reader, webhook_secret: Secret) -> Secret:
    """``API_KEY``: empty turns the REST API off; otherwise a key that cannot be guessed and
    that is not the webhook secret (alert messages carry that one, and an alert template that
    leaks must not read the books or place orders through the API)."""
    key = r.secret("API_KEY")
    if not key:
        return key
    value = key.reveal()
    if len(value) < API_KEY_MIN_LENGTH:
        r.problem(f"API_KEY must be at least {API_KEY_MIN_LENGTH} characters (value not "
                  "shown); leave it empty to turn the REST API off")
    elif not _API_KEY_TEXT.fullmatch(value):
        r.problem("API_KEY may hold only letters, digits and punctuation, without spaces or "
                  "quotes (value not shown)")
    elif webhook_secret and value == webhook_secret.reveal():
        r.problem("API_KEY must differ from WEBHOOK_SECRET: alert messages carry the webhook "
                  "secret, and whoever reads one must not reach the REST API")
    return key


def _kotak_settings(r: _Reader, mode: Mode) -> KotakSettings:
    auth = r.choice("KOTAK_AUTH", AuthFlow, AuthFlow.TOTP)
    settings = KotakSettings(
        auth=auth,
        api_key=r.secret("BROKER_API_KEY"),
        api_secret=r.secret("BROKER_API_SECRET"),
        ucc=r.pattern("KOTAK_UCC", r"[A-Za-z0-9]{1,12}", "letters and digits, e.g. AB123").upper(),
        mobile=r.mobile("KOTAK_MOBILE"),
        pan=r.pattern("KOTAK_PAN", r"[A-Za-z]{5}[0-9]{4}[A-Za-z]", "like ABCDE1234F").upper(),
        mpin=r.secret("KOTAK_MPIN", check=lambda v: bool(re.fullmatch(r"\d{6}", v)),
                      rule="must be the 6-digit Neo MPIN"),
        totp_secret=r.secret("KOTAK_TOTP_SECRET", check=_is_base32,
                             rule="must be the base32 TOTP seed shown at TOTP registration"),
        password=r.secret("KOTAK_PASSWORD"),
        login_url=r.url("KOTAK_LOGIN_URL", "https://mis.kotaksecurities.com"),
        oauth_url=r.url("KOTAK_OAUTH_URL", "https://napi.kotaksecurities.com"),
        gateway_url=r.url("KOTAK_GATEWAY_URL", "https://gw-napi.kotaksecurities.com"),
        order_rate=r.integer("KOTAK_ORDER_RATE", 10, 1, 10_000),
        connect_timeout_s=r.number("KOTAK_CONNECT_TIMEOUT_S", 2.0, 0.1, 30.0),
        read_timeout_s=r.number("KOTAK_READ_TIMEOUT_S", 4.0, 0.5, 60.0),
        proxy=r.proxy("KOTAK_PROXY"),
    )
    if mode is Mode.LIVE:
        for name in missing_for_live(settings):
            r.problem(f"{name} is required in live mode with KOTAK_AUTH={auth.value}")
    return settings


def missing_for_live(kotak: KotakSettings) -> list[str]:
    """What a live login with these settings lacks, by setting name (BROKER_API_KEY,
    KOTAK_UCC ...); empty when nothing is missing."""
    needed = {"BROKER_API_KEY": bool(kotak.api_key)}
    if kotak.auth is AuthFlow.TOTP:
        needed.update({"KOTAK_UCC": bool(kotak.ucc), "KOTAK_MOBILE": bool(kotak.mobile)})
    else:
        needed.update({"BROKER_API_SECRET": bool(kotak.api_secret),
                       "KOTAK_MOBILE or KOTAK_PAN": bool(kotak.mobile or kotak.pan),
                       "KOTAK_PASSWORD": bool(kotak.password)})
    return [name for name, present in needed.items() if not present]


class _Reader:
    """Read values from a mapping, collecting problems instead of stopping at the first."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._env = environ
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def raw(self, name: str) -> str:
        return self._env.get(name, "").strip()

    def text(self, name: str, default: str = "") -> str:
        return self.raw(name) or default

    def secret(self, name: str, check: Callable[[str], bool] | None = None,
               rule: str = "") -> Secret:
        value = self.raw(name)
        if value and check is not None and not check(value):
            self.problem(f"{name} {rule} (value not shown)")
        return Secret(value)

    def choice(self, name: str, kind: type[T], default: T) -> T:
        value = self.raw(name).lower()
        if not value:
            return default
        try:
            return kind(value)  # type: ignore[call-arg]
        except ValueError:
            options = ", ".join(str(item.value) for item in kind)  # type: ignore[attr-defined]
            self.problem(f"{name}={value!r} is not one of {options}")
            return default

    def choice_text(self, name: str, options: tuple[str, ...], default: str) -> str:
        value = self.raw(name).upper()
        if not value:
            return default
        if value not in options:
            self.problem(f"{name}={value!r} is not one of {', '.join(options)}")
            return default
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.raw(name)
        if not value:
            return default
        try:
            number = int(value)
        except ValueError:
            self.problem(f"{name}={value!r} is not a whole number")
            return default
        if not low <= number <= high:
            self.problem(f"{name}={number} must be between {low} and {high}")
            return default
        return number

    def optional_integer(self, name: str, low: int, high: int) -> int | None:
        """A whole number, or ``None`` when unset (the caller's default applies)."""
        if not self.raw(name):
            return None
        return self.integer(name, low, low, high)

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.raw(name)
        if not value:
            return default
        try:
            number = float(value)
        except ValueError:
            self.problem(f"{name}={value!r} is not a number")
            return default
        if not low <= number <= high:
            self.problem(f"{name}={number:g} must be between {low:g} and {high:g}")
            return default
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name).lower()
        if not value:
            return default
        if value in ("true", "1", "yes", "on"):
            return True
        if value in ("false", "0", "no", "off"):
            return False
        self.problem(f"{name}={value!r} is not true or false")
        return default

    def url(self, name: str, default: str, required: bool = True) -> str:
        value = self.raw(name) or default
        if not value:
            return ""
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.problem(f"{name}={value!r} is not an http(s) URL")
            return default
        return value.rstrip("/")

    def proxy(self, name: str) -> str:
        """An http(s) proxy URL ``http://[user:password@]host:port``, or "" for none. The
        value is not repeated in a problem: it may carry the proxy's password."""
        value = self.raw(name)
        if not value:
            return ""
        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError:
            port = None
            self.problem(f"{name} has a port that is not a number (value not shown)")
            return ""
        if parts.scheme not in ("http", "https"):
            self.problem(f"{name} must start with http:// or https:// (a SOCKS proxy is not "
                         "supported; value not shown)")
        elif not parts.hostname or port is None:
            self.problem(f"{name} must name the proxy's host and port, e.g. "
                         "http://203.0.113.7:3128 (value not shown)")
        elif parts.path not in ("", "/") or parts.query or parts.fragment:
            self.problem(f"{name} must be just http://host:port, without a path (value not "
                         "shown)")
        else:
            return value.rstrip("/")
        return ""

    def bind(self, name: str, default: str) -> tuple[str, int]:
        value = self.raw(name) or default
        host, sep, port_text = value.rpartition(":")
        if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            self.problem(f"{name}={value!r} must be host:port, e.g. 127.0.0.1:5000")
            host, _, port_text = default.rpartition(":")
        return host.strip("[]"), int(port_text)

    def database_url(self, name: str, default: str) -> str:
        value = self.raw(name) or default
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://",
                                 "postgres://")):
            self.problem(f"{name} must start with sqlite:/// or postgresql:// (value not "
                         "shown: it may hold a password)")
            return default
        return value

    def pattern(self, name: str, regex: str, rule: str) -> str:
        value = self.raw(name)
        if value and not re.fullmatch(regex, value):
            self.problem(f"{name}={value!r} is not valid: {rule}")
            return ""
        return value

    def mobile(self, name: str) -> str:
        value = self.raw(name)
        if not value:
            return ""
        digits = re.sub(r"[\s-]", "", value).removeprefix("+")
        if len(digits) == 12 and digits.startswith("91"):
            digits = digits[2:]
        if not re.fullmatch(r"[6-9]\d{9}", digits):
            self.problem(f"{name} must be a 10-digit Indian mobile number (value not shown)")
            return ""
        return digits

    def hhmm(self, name: str, default: str) -> time:
        value = self.raw(name) or default
        parsed = _parse_hhmm(value)
        if parsed is None:
            self.problem(f"{name}={value!r} is not a time of day HH:MM (IST)")
            parsed = _parse_hhmm(default)
            assert parsed is not None
        return parsed

    def market_hours(self, name: str, mode: Mode) -> bool:
        """``enforce`` or ``ignore``; by default enforced live and ignored on paper."""
        value = self.raw(name).lower()
        if not value:
            return mode is Mode.LIVE
        if value not in ("enforce", "ignore"):
            self.problem(f"{name}={value!r} is not one of enforce, ignore")
            return mode is Mode.LIVE
        return value == "enforce"

    def trading_hours(self, name: str) -> dict[Exchange, tuple[time, time]]:
        """Parse ``EXCH=HH:MM-HH:MM,...``; exchanges not listed keep their default session."""
        result: dict[Exchange, tuple[time, time]] = {}
        for text in (DEFAULT_TRADING_HOURS, self.raw(name)):
            for item in filter(None, (part.strip() for part in text.split(","))):
                exch, _, span = item.partition("=")
                opens, _, closes = span.partition("-")
                start, end = _parse_hhmm(opens), _parse_hhmm(closes)
                try:
                    exchange = Exchange(exch.strip().upper())
                except ValueError:
                    self.problem(f"{name}: {exch.strip()!r} is not an exchange")
                    continue
                if start is None or end is None or not start < end:
                    self.problem(f"{name}: {item!r} must be EXCHANGE=HH:MM-HH:MM, open < close")
                    continue
                result[exchange] = (start, end)
        return result

    def squareoff(self, name: str) -> dict[Exchange, time]:
        """Parse ``EXCH=HH:MM,...``; exchanges not listed keep their default time."""
        result = {Exchange(k): t for k, t in _pairs(DEFAULT_SQUAREOFF).items()}
        value = self.raw(name)
        if not value:
            return result
        for item in value.split(","):
            exch, sep, when = item.strip().partition("=")
            parsed = _parse_hhmm(when.strip())
            try:
                exchange = Exchange(exch.strip().upper())
            except ValueError:
                self.problem(f"{name}: {exch.strip()!r} is not an exchange (NSE, BSE, NFO, "
                             "BFO, CDS, MCX)")
                continue
            if not sep or parsed is None:
                self.problem(f"{name}: {item.strip()!r} must be EXCHANGE=HH:MM")
                continue
            result[exchange] = parsed
        return result


def _pairs(text: str) -> dict[str, time]:
    pairs: dict[str, time] = {}
    for item in text.split(","):
        key, _, when = item.partition("=")
        parsed = _parse_hhmm(when)
        assert parsed is not None
        pairs[key] = parsed
    return pairs


def _parse_hhmm(text: str) -> time | None:
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    return time(int(match.group(1)), int(match.group(2))) if match else None


def _is_base32(value: str) -> bool:
    cleaned = value.replace(" ", "").upper()
    if len(cleaned) < 16 or not re.fullmatch(r"[A-Z2-7]+=*", cleaned):
        return False
    try:
        base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (binascii.Error, ValueError):
        return False
    return True


def _is_fernet_key(value: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value.encode())) == 32
    except (binascii.Error, ValueError):
        return False
