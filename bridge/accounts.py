"""The Kotak accounts signals trade, and which strategies each follows.

The ``default`` account is the one the ``KOTAK_*`` settings describe; it always exists.
More accounts (a family's, an advisor's clients') are listed in ``ACCOUNTS_FILE`` (JSON,
default ``DATA_DIR/accounts.json``)::

    {
      "accounts": {
        "default": {"multiplier": 1},
        "asha": {"ucc": "XY987", "mobile": "9812345678", "mode": "live",
                 "multiplier": 0.5, "max_orders_per_day": 100, "max_quantity": 500,
                 "proxy": "http://10.0.0.2:3128"},
        "ravi": {"mode": "paper", "lots": 1, "enabled": false}
      },
      "strategies": {"breakout": ["default", "asha", "ravi"], "*": ["default"]}
    }

Secrets never sit in this file (nor in the database): an account's are read from the
environment as ``ACCOUNT_<NAME>_BROKER_API_KEY``, ``ACCOUNT_<NAME>_BROKER_API_SECRET``,
``ACCOUNT_<NAME>_MPIN``, ``ACCOUNT_<NAME>_TOTP_SECRET`` and ``ACCOUNT_<NAME>_PASSWORD``
(``<NAME>`` upper-cased, ``-`` as ``_``); a secret written into the file is refused.

Sizing: a signal's quantity (and target ``position_size``) is multiplied by ``multiplier``
and rounded down to whole lots, or replaced by ``lots`` whole lots; ``max_quantity`` refuses
that account's order above it. ``max_orders_per_day`` replaces ``MAX_ORDERS_PER_DAY`` and
``order_rate`` ``KOTAK_ORDER_RATE`` for the account (each Kotak account has its own limit).
A strategy missing from ``strategies`` trades the accounts under ``"*"``, else ``default``
alone. A ``"mode": "live"`` account needs ``BRIDGE_MODE=live``: a paper bridge never moves
money; a live bridge may keep some accounts on paper.

Every problem in the file is reported at start, all at once, naming the account and field.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from bridge.config import (
    ACCOUNT_ENV_PREFIX,
    ConfigError,
    KotakSettings,
    Mode,
    RiskSettings,
    Secret,
    Settings,
    missing_for_live,
)
from bridge.domain import DEFAULT_ACCOUNT
from bridge.kotak.auth import AuthFlow

NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
SECRET_NAMES = {"BROKER_API_KEY": "api_key", "BROKER_API_SECRET": "api_secret",
                "MPIN": "mpin", "TOTP_SECRET": "totp_secret", "PASSWORD": "password"}
_SECRETISH = {"api_key", "api_secret", "mpin", "totp_secret", "password", "access_token",
              "consumer_key", "consumer_secret", "broker_api_key", "broker_api_secret"}
_FIELDS = ("enabled", "mode", "auth", "ucc", "mobile", "pan", "proxy", "login_url",
           "oauth_url", "gateway_url", "multiplier", "lots", "max_quantity",
           "max_orders_per_day", "order_rate")
_DEFAULT_FIELDS = ("multiplier", "lots", "max_quantity", "max_orders_per_day")
#: a live login's needs (by their KOTAK_* names): fields of this file, or secrets
_IN_FILE = {"KOTAK_UCC": "ucc", "KOTAK_MOBILE": "mobile",
            "KOTAK_MOBILE or KOTAK_PAN": "mobile or pan"}
_IN_ENV = {"KOTAK_PASSWORD": "PASSWORD"}


@dataclass(frozen=True)
class Sizing:
    multiplier: Decimal = Decimal(1)
    lots: int | None = None  # fixed whole lots, whatever the signal says
    max_quantity: int = 0  # units per order signal; 0: no cap

    @property
    def plain(self) -> bool:
        """Whether the account trades exactly what the signal says."""
        return self.lots is None and self.multiplier == 1 and not self.max_quantity


@dataclass(frozen=True)
class AccountSettings:
    name: str
    mode: Mode
    kotak: KotakSettings
    sizing: Sizing
    risk: RiskSettings
    order_rate: int


@dataclass(frozen=True)
class AccountBook:
    """The enabled accounts (``default`` first) and the strategies' subscriptions."""

    accounts: dict[str, AccountSettings]
    subscriptions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    disabled: tuple[str, ...] = ()

    def for_strategy(self, strategy: str) -> list[AccountSettings]:
        names = (self.subscriptions.get(strategy) or self.subscriptions.get("*")
                 or (DEFAULT_ACCOUNT,))
        return [self.accounts[name] for name in names if name in self.accounts]

    def rate(self, account: str) -> int:
        return self.accounts[account].order_rate

    def risk(self, account: str) -> RiskSettings:
        return self.accounts[account].risk

    @property
    def fans_out(self) -> bool:
        return len(self.accounts) > 1 or not self.accounts[DEFAULT_ACCOUNT].sizing.plain


def single(settings: Settings) -> AccountBook:
    """The book of a bridge with no accounts file: the default account alone."""
    default = AccountSettings(DEFAULT_ACCOUNT, settings.mode, settings.kotak, Sizing(),
                              settings.risk, settings.kotak.order_rate)
    return AccountBook({DEFAULT_ACCOUNT: default})


def load_accounts(settings: Settings) -> AccountBook:
    """Read ``settings.accounts_file`` (absent: the default account alone).

    :raises ConfigError: listing every problem in the file.
    """
    path = settings.accounts_file
    if not path.is_file():
        return single(settings)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError([f"ACCOUNTS_FILE {path}: not readable JSON ({exc})"]) from exc
    reader = _FileReader(settings, path)
    book = reader.read(data)
    if reader.problems:
        raise ConfigError(reader.problems)
    return book


def secret_env_name(account: str, what: str) -> str:
    return f"{ACCOUNT_ENV_PREFIX}{account.upper().replace('-', '_')}_{what}"


class _FileReader:
    def __init__(self, settings: Settings, path: Path) -> None:
        self.settings = settings
        self.where = f"ACCOUNTS_FILE {path}"
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        self.problems.append(f"{self.where}: {text}")

    def read(self, data: Any) -> AccountBook:
        base = single(self.settings).accounts[DEFAULT_ACCOUNT]
        if not isinstance(data, dict) or set(data) - {"accounts", "strategies"}:
            self.problem('must be an object with "accounts" and "strategies"')
            return single(self.settings)
        raw_accounts = data.get("accounts", {})
        if not isinstance(raw_accounts, dict):
            self.problem('"accounts" must map each account name to its settings')
            raw_accounts = {}
        accounts: dict[str, AccountSettings] = {DEFAULT_ACCOUNT: base}
        disabled: list[str] = []
        for name, entry in raw_accounts.items():
            if not isinstance(name, str) or not NAME.fullmatch(name):
                self.problem(f"account name {name!r} must be lower-case letters, digits, - "
                             "or _, starting with a letter (at most 32)")
                continue
            if not isinstance(entry, dict):
                self.problem(f"account {name}: its settings must be an object")
                continue
            account = self._account(name, entry, base)
            if account is None:
                continue
            if entry.get("enabled", True) is False:
                disabled.append(name)
                if name == DEFAULT_ACCOUNT:
                    accounts.pop(DEFAULT_ACCOUNT)
                continue
            accounts[name] = account
        if not accounts:
            self.problem("every account is disabled")
        subscriptions = self._strategies(data.get("strategies", {}), set(accounts),
                                         set(disabled))
        # The default account first: it is what single-account tools (CLI login) act on.
        ordered = dict(sorted(accounts.items(), key=lambda item: item[0] != DEFAULT_ACCOUNT))
        return AccountBook(ordered, subscriptions, tuple(disabled))

    def _account(self, name: str, entry: dict[str, Any],
                 base: AccountSettings) -> AccountSettings | None:
        before = len(self.problems)
        allowed = (*_DEFAULT_FIELDS, "enabled") if name == DEFAULT_ACCOUNT else _FIELDS
        for key in entry:
            if key.lower() in _SECRETISH:
                self.problem(f"account {name}: {key} is a secret and must not be in this "
                             f"file; set it in the environment as "
                             f"{secret_env_name(name, _env_suffix(key))}")
            elif key not in allowed:
                self.problem(f"account {name}: unknown field {key!r}; accepted: "
                             f"{', '.join(allowed)}")
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            self.problem(f"account {name}: enabled must be true or false")
        sizing = self._sizing(name, entry)
        orders_per_day = self._whole(name, entry, "max_orders_per_day",
                                     base.risk.max_orders_per_day, 0, 100_000)
        risk = dataclasses.replace(base.risk, max_orders_per_day=orders_per_day)
        if name == DEFAULT_ACCOUNT:
            return None if len(self.problems) > before else dataclasses.replace(
                base, sizing=sizing, risk=risk)
        mode = self._mode(name, entry)
        kotak = self._kotak(name, entry, mode)
        rate = self._whole(name, entry, "order_rate", base.order_rate, 1, 10_000)
        if len(self.problems) > before:
            return None
        return AccountSettings(name, mode, kotak, sizing, risk, rate)

    def _mode(self, name: str, entry: dict[str, Any]) -> Mode:
        value = entry.get("mode", self.settings.mode.value)
        try:
            mode = Mode(value)
        except ValueError:
            self.problem(f"account {name}: mode must be paper or live")
            return Mode.PAPER
        if mode is Mode.LIVE and self.settings.mode is Mode.PAPER:
            self.problem(f"account {name}: a live account needs BRIDGE_MODE=live (a paper "
                         "bridge never moves money)")
        return mode

    def _kotak(self, name: str, entry: dict[str, Any], mode: Mode) -> KotakSettings:
        base = self.settings.kotak
        env = self.settings.account_env

        def secret(what: str) -> Secret:
            return env.get(secret_env_name(name, what), Secret(""))

        def text(key: str, default: str) -> str:
            value = entry.get(key, default)
            if not isinstance(value, str):
                self.problem(f"account {name}: {key} must be text")
                return default
            return value.strip()

        try:
            auth = AuthFlow(entry.get("auth", base.auth.value))
        except ValueError:
            self.problem(f"account {name}: auth must be totp or oauth2")
            auth = base.auth
        kotak = dataclasses.replace(
            base, auth=auth, api_key=secret("BROKER_API_KEY"),
            api_secret=secret("BROKER_API_SECRET"), ucc=text("ucc", "").upper(),
            mobile=text("mobile", ""), pan=text("pan", "").upper(), mpin=secret("MPIN"),
            totp_secret=secret("TOTP_SECRET"), password=secret("PASSWORD"),
            login_url=text("login_url", base.login_url).rstrip("/"),
            oauth_url=text("oauth_url", base.oauth_url).rstrip("/"),
            gateway_url=text("gateway_url", base.gateway_url).rstrip("/"),
            proxy=text("proxy", ""))
        if mode is Mode.LIVE:
            for what in missing_for_live(kotak):
                if what in _IN_FILE:
                    self.problem(f"account {name}: {_IN_FILE[what]} is required for a live "
                                 "account")
                else:
                    self.problem(f"account {name}: "
                                 f"{secret_env_name(name, _IN_ENV.get(what, what))} is not "
                                 "set in the environment")
        return kotak

    def _sizing(self, name: str, entry: dict[str, Any]) -> Sizing:
        multiplier = Decimal(1)
        if "multiplier" in entry:
            try:
                multiplier = Decimal(str(entry["multiplier"]))
                if not (multiplier.is_finite() and Decimal(0) < multiplier <= 1000):
                    raise InvalidOperation
            except (InvalidOperation, ValueError):
                self.problem(f"account {name}: multiplier must be a number above 0 "
                             "(at most 1000)")
                multiplier = Decimal(1)
        lots = None
        if entry.get("lots") is not None:
            lots = self._whole(name, entry, "lots", 1, 1, 100_000)
            if "multiplier" in entry:
                self.problem(f"account {name}: give lots or multiplier, not both")
        max_quantity = self._whole(name, entry, "max_quantity", 0, 0, 100_000_000)
        return Sizing(multiplier, lots, max_quantity)

    def _whole(self, name: str, entry: dict[str, Any], key: str, default: int, low: int,
               high: int) -> int:
        value = entry.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(f"account {name}: {key} must be a whole number from {low} to {high}")
            return default
        return value

    def _strategies(self, raw: Any, known: set[str],
                    disabled: set[str]) -> dict[str, tuple[str, ...]]:
        if not isinstance(raw, dict):
            self.problem('"strategies" must map each strategy name to a list of accounts')
            return {}
        found: dict[str, tuple[str, ...]] = {}
        for strategy, names in raw.items():
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                self.problem(f"strategy {strategy!r}: give a list of account names")
                continue
            unknown = [n for n in names if n not in known and n not in disabled]
            if unknown:
                self.problem(f"strategy {strategy!r}: no account named {', '.join(unknown)}")
                continue
            if len(set(names)) != len(names):
                self.problem(f"strategy {strategy!r}: an account is listed twice")
                continue
            found[str(strategy)] = tuple(names)
        return found


def _env_suffix(key: str) -> str:
    key = key.lower()
    if key in ("api_key", "access_token", "consumer_key", "broker_api_key"):
        return "BROKER_API_KEY"
    if key in ("api_secret", "consumer_secret", "broker_api_secret"):
        return "BROKER_API_SECRET"
    return key.upper()

