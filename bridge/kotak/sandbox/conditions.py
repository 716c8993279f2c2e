"""Who may log in to the sandbox, how it behaves, and the rules that make it say no.

Rules are how tests and drills reproduce what Kotak does to real orders. Each matches orders
by symbol, side and product, applies to the next ``times`` of them (``None``: all), and does
one of:

===================  ==========================================================================
``reject`` reason    effect
===================  ==========================================================================
insufficient_funds   accepted, then rejected by RMS with a margin shortfall message
circuit_limit        accepted, then rejected by RMS: price outside the circuit band
freeze               accepted, then rejected: quantity above the freeze limit
ip_not_whitelisted   refused at once: stCode 100008 "unauthorized"
session_ip           refused at once: stCode 1037 (session created from another IP)
algo_not_allowed     refused at once: stCode 1017 "algo order not allowed"
invalid_access_type  refused at once: stCode 100021 "invalid access type" (a token without
                     trading rights)
any other text       accepted, then rejected by RMS with that text as the reason
===================  ==========================================================================

``stuck``: a market order becomes a protected limit on the wrong side of the market and never
fills (what a user saw: an MKT sell at Rs 170 shown as a Rs 202 limit, open for 17 minutes).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from decimal import Decimal

import pyotp

from bridge.kotak.sandbox.scripmaster import Listing

SYNC_REJECTIONS: dict[str, tuple[str, str]] = {
    "ip_not_whitelisted": ("100008", "unauthorized"),
    "session_ip": ("1037", "session ip does not match the request ip"),
    "algo_not_allowed": ("1017", "algo order not allowed"),
    "invalid_access_type": ("100021", "invalid  access type"),
}
RMS_REASONS: dict[str, str] = {
    "circuit_limit": "RMS:Rule: Check circuit limit including square off order exceeds",
    "freeze": "RMS:Rule: Quantity greater than freeze quantity",
}


@dataclass(frozen=True)
class SandboxAccount:
    """Credentials the sandbox accepts for one client code (UCC), and its opening cash."""

    ucc: str
    mobile: str  # 10 digits
    mpin: str = field(repr=False)
    totp_secret: str = field(repr=False)
    password: str = field(repr=False)
    consumer_key: str = field(repr=False)  # also the current API's access token
    consumer_secret: str = field(repr=False)
    otp: str = field(repr=False)
    pan: str = ""
    cash: Decimal = Decimal(1_000_000)
    name: str = "SANDBOX TRADER"

    @classmethod
    def generate(cls, ucc: str, **given: str) -> SandboxAccount:
        """Fill every credential not given with a fresh random one."""
        values: dict[str, str] = {
            "mobile": "9" + "".join(secrets.choice("0123456789") for _ in range(9)),
            "mpin": "".join(secrets.choice("0123456789") for _ in range(6)),
            "totp_secret": pyotp.random_base32(),
            "password": secrets.token_urlsafe(12),
            "consumer_key": secrets.token_urlsafe(24),
            "consumer_secret": secrets.token_urlsafe(24),
            "otp": "".join(secrets.choice("0123456789") for _ in range(4)),
            "pan": "ABCDE" + "".join(secrets.choice("0123456789") for _ in range(4)) + "F",
        }
        values.update({key: value for key, value in given.items() if value})
        return cls(ucc=ucc.upper(), mobile=values["mobile"], mpin=values["mpin"],
                   totp_secret=values["totp_secret"], password=values["password"],
                   consumer_key=values["consumer_key"],
                   consumer_secret=values["consumer_secret"], otp=values["otp"],
                   pan=values["pan"])


MARKETS = ("full", "lean")


@dataclass
class SandboxConfig:
    """How the simulated broker behaves. Defaults follow Kotak's observed behaviour."""

    order_rate: int = 10  # order requests per second per account; 0 = no limit
    accept_delay: float = 0.0  # seconds an order spends "open pending" before the exchange
    oauth_expires_in: int = 3600  # legacy OAuth2 token lifetime
    server_id: str = "server1"  # hsServerId handed out by the legacy login
    reject_slm: bool = True  # SL-M from API sessions is refused (section 9.4)
    protect_market: bool = True  # MKT becomes a limit one protection band away, which fills
    whitelist: tuple[str, ...] = ()  # IPs allowed to place/modify/cancel; empty = any
    bind_session_ip: bool = False  # refuse orders from another IP than the session's (1037)
    lockout_after: int = 3  # consecutive failed logins before the account locks
    unique_tags: bool = True  # a repeated ``ig`` tag in one day is refused (stCode 32)
    #: tradeApiValidate names no ``baseUrl``: the account trades on the login host, which is
    #: also one of Kotak's trading hosts (mis.kotaksecurities.com)
    omit_base_url: bool = False
    #: paths that answer 404, as on a Kotak that has retired (or not yet opened) them, e.g.
    #: ``("quick/user/positions",)``
    retired_paths: tuple[str, ...] = ()
    #: seconds the order book hangs after an account sends ``book_hang_after`` orders inside
    #: one second (Kotak-neo-api-v2 #68: about 60 s after bursts near 10 orders/s); 0: never
    book_hang_s: float = 0.0
    book_hang_after: int = 8
    #: prices move (market.py): every underlying takes a seeded random step every
    #: ``walk_step_s`` seconds and its futures and options follow; off, prices stay at the
    #: catalogue's levels (tests pin what they need with ``Sandbox.set_price``)
    price_walk: bool = False
    #: the same seed and clock give the same prices, in every process
    walk_seed: int = 2026
    walk_step_s: float = 1.0
    #: standard deviation of an underlying's relative move over one hour (0.0025: NIFTY
    #: moves about 65 points an hour, about 1 % a day)
    walk_volatility: float = 0.0025
    #: ``full``: the market of the README (NIFTY 100, index chains 6 % each side, options on
    #: the most traded stocks); ``lean``: the same names, index chains of 10 strikes each
    #: side and stock options on RELIANCE only. Every bridge start parses the whole scrip
    #: master, so the test suite, which starts hundreds of bridges, trades the lean market.
    market: str = "full"
    #: shares added to the market (paper mode: the data folder's paper-instruments.csv)
    listings: tuple[Listing, ...] = ()

    def __post_init__(self) -> None:
        if self.market not in MARKETS:
            raise ValueError(f"market must be one of {', '.join(MARKETS)}, not {self.market!r}")


@dataclass
class Rule:
    action: str  # "reject" or "stuck"
    reason: str = ""
    symbol: str = ""  # trading symbol or name; empty matches any
    side: str = ""  # BUY / SELL (or B / S); empty matches any
    product: str = ""
    times: int | None = 1

    def matches(self, trading_symbol: str, symbol: str, side: str, product: str) -> bool:
        if self.symbol and self.symbol.upper() not in (trading_symbol.upper(), symbol.upper()):
            return False
        if self.side and self.side.upper()[:1] != side.upper()[:1]:
            return False
        return not self.product or self.product.upper() == product.upper()


class RuleBook:
    """The active rules; each order consumes at most one matching rule."""

    def __init__(self) -> None:
        self._rules: list[Rule] = []
        self._lock = threading.Lock()

    def add(self, rule: Rule) -> None:
        if rule.action not in ("reject", "stuck"):
            raise ValueError("a rule's action is 'reject' or 'stuck'")
        if rule.action == "reject" and not rule.reason:
            raise ValueError("a reject rule needs a reason")
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, trading_symbol: str, symbol: str, side: str, product: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(trading_symbol, symbol, side, product):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times <= 0:
                            self._rules.remove(rule)
                    return rule
        return None

    def active(self) -> list[Rule]:
        with self._lock:
            return list(self._rules)
