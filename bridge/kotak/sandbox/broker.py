"""One simulated Kotak: accounts, books, rules and faults behind a WSGI app.

A :class:`Sandbox` is itself a WSGI application, so it runs three ways with the same code:
in-process behind a requests transport adapter (paper mode), on a loopback port in tests
(:mod:`bridge.kotak.sandbox.server`), and standalone for drills (``python -m
bridge.kotak.sandbox``). Its Python methods are the control API tests use directly; the same
actions are served over HTTP under ``/_sandbox/``.

The sandbox is the other end of the wire: it is written from Kotak's documented behaviour
independently of :mod:`bridge.kotak.wire`, so the contract tests catch a mistake on either
side instead of sharing it.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bridge.clock import Clock, SystemClock
from bridge.kotak.sandbox.app import RequestLog, SandboxApp
from bridge.kotak.sandbox.conditions import Rule, RuleBook, SandboxAccount, SandboxConfig
from bridge.kotak.sandbox.engine import Engine
from bridge.kotak.sandbox.faults import Fault, FaultPlan
from bridge.kotak.sandbox.hosts import Hosts
from bridge.kotak.sandbox.logins import Logins
from bridge.kotak.sandbox.state import MemoryStateStore, StateStore

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

_SEGMENTS = {"NSE": "nse_cm", "BSE": "bse_cm", "NFO": "nse_fo", "BFO": "bse_fo",
             "CDS": "cde_fo", "MCX": "mcx_fo"}


def segment(name: str) -> str:
    """Accept an exchange code (NSE, NFO ...) or a Kotak segment (nse_cm ...)."""
    return _SEGMENTS.get(name.upper(), name.lower())


class Sandbox:
    def __init__(
        self,
        accounts: Iterable[SandboxAccount],
        *,
        config: SandboxConfig | None = None,
        store: StateStore | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.accounts: dict[str, SandboxAccount] = {a.ucc: a for a in accounts}
        if not self.accounts:
            raise ValueError("a sandbox needs at least one account")
        self.config = config or SandboxConfig()
        self.clock: Clock = clock or SystemClock()
        self.store: StateStore = store or MemoryStateStore()
        self.rules = RuleBook()
        self.faults = FaultPlan()
        self.requests = RequestLog()
        self.engine = Engine(self.accounts, self.config, self.rules)
        self.logins = Logins(self.accounts, self.config)
        #: the address of each of Kotak's hosts, set by whoever serves the sandbox (the
        #: ``baseUrl`` handed out and the file links point there); ``None``: one address
        #: serves everything
        self.hosts: Hosts | None = None
        self._app = SandboxApp(self)

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        return self._app(environ, start_response)

    # --- control --------------------------------------------------------------------------

    def add_account(self, account: SandboxAccount) -> None:
        self.accounts[account.ucc] = account

    def add_rule(self, rule: Rule) -> None:
        self.rules.add(rule)

    def add_fault(self, fault: Fault) -> None:
        self.faults.add(fault)

    def clear(self) -> None:
        """Remove every rule and fault."""
        self.rules.clear()
        self.faults.clear()

    def set_price(self, exchange: str, trading_symbol: str, price: Decimal) -> None:
        with self.store.transaction() as state:
            self.engine.set_price(state, segment(exchange), trading_symbol, price,
                                  self.clock.now())

    def freeze_prices(self) -> None:
        """Stop the price walk where it stands (prices stay put until :meth:`unfreeze_prices`).
        A no-op when the walk is already stopped or was never started."""
        self.engine.walk.freeze(self.clock.now())

    def unfreeze_prices(self) -> None:
        """Let prices walk on from where they stand (also starts a walk the config left off)."""
        self.engine.walk.unfreeze(self.clock.now())

    @property
    def prices_walking(self) -> bool:
        return self.engine.walk.running

    def seed_position(self, ucc: str, exchange: str, trading_symbol: str, product: str,
                      quantity: int, price: Decimal) -> None:
        with self.store.transaction() as state:
            self.engine.seed_position(state, ucc.upper(), segment(exchange), trading_symbol,
                                      product, quantity, price, self.clock.now())

    def expire_sessions(self, ucc: str = "") -> int:
        with self.store.transaction() as state:
            return self.logins.expire(state, self.clock.now(), ucc)

    def unlock(self, ucc: str) -> None:
        with self.store.transaction() as state:
            state.login_failures.pop(ucc.upper(), None)

    def failed_logins(self, ucc: str) -> int:
        with self.store.transaction() as state:
            return state.login_failures.get(ucc.upper(), 0)

    # --- inspection (wire-shaped rows, as a client would see them) ------------------------

    def orders(self, ucc: str) -> list[dict[str, Any]]:
        with self.store.transaction() as state:
            _, body = self.engine.order_book(state, ucc.upper(), self.clock.now())
        return list(body.get("data", []))

    def positions(self, ucc: str) -> list[dict[str, Any]]:
        with self.store.transaction() as state:
            _, body = self.engine.positions(state, ucc.upper(), self.clock.now())
        return list(body.get("data", []))

    def summary(self) -> dict[str, Any]:
        with self.store.transaction() as state:
            now = self.clock.now()
            return {
                "now": now.isoformat(),
                "accounts": sorted(self.accounts),
                "sessions": sum(1 for s in state.sessions.values() if s.expires_at > now),
                "orders": {ucc: len(book.orders) for ucc, book in state.books.items()},
                "rules": len(self.rules.active()),
                "faults": len(self.faults.active()),
            }
