"""ChartInk scans: which order each scan's stocks become.

ChartInk sends a fixed payload (``stocks``, ``trigger_prices``, ``scan_name``, ``scan_url``,
``alert_name`` ...) that the user cannot template, so the meaning lives in a file,
``CHARTINK_CONFIG`` (default ``instance/chartink.json``), read again whenever it changes::

    {
      "scans": {
        "Breakout buy": {"action": "BUY", "quantity": 10, "product": "MIS"},
        "nifty-50-momentum": {"action": "BUY", "amount": 20000, "max_stocks": 5},
        "Breakdown exit": {"action": "EXIT"}
      }
    }

A scan is matched, ignoring case, by its ``scan_name``, its ``alert_name`` or its URL slug
(``scan_url``). Per scan: ``action`` BUY, SELL or EXIT (EXIT flattens each stock's position,
long or short, and never opens one); ``quantity`` in shares, or ``amount`` in rupees
(quantity = amount / trigger price, rounded down); ``exchange`` (default NSE), ``product``
(default MIS), ``strategy`` (default the scan's name), and ``max_stocks`` (default 10): a
scan listing more stocks than that is refused whole rather than firing dozens of orders.
Each stock becomes its own signal in the journal.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from bridge.domain import Exchange, Product

ACTIONS = ("BUY", "SELL", "EXIT")
_KEYS = frozenset({"action", "quantity", "amount", "exchange", "product", "strategy",
                   "max_stocks"})


class ChartinkConfigError(Exception):
    """The configuration file is missing or unusable; the message says where and why."""


@dataclass(frozen=True)
class ScanRule:
    name: str
    action: str
    quantity: int
    amount: Decimal | None
    exchange: Exchange
    product: Product
    strategy: str
    max_stocks: int

    def quantity_for(self, trigger_price: Decimal | None) -> int:
        """Shares to trade for one stock (0 when an amount cannot be converted)."""
        if self.amount is None:
            return self.quantity
        if not trigger_price or trigger_price <= 0:
            return 0
        return int(self.amount // trigger_price)


class ChartinkConfig:
    """The scan rules, reloaded when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[float, int] | None = None
        self._rules: dict[str, ScanRule] = {}
        self._lock = threading.Lock()

    def match(self, *names: str) -> ScanRule | None:
        rules = self.rules()
        for name in names:
            key = name.strip().lower()
            if key and key in rules:
                return rules[key]
        return None

    def rules(self) -> dict[str, ScanRule]:
        """:raises ChartinkConfigError:"""
        try:
            stat = self.path.stat()
        except FileNotFoundError as exc:
            raise ChartinkConfigError(f"ChartInk is not configured: create {self.path} (see "
                                      "the README's ChartInk section)") from exc
        stamp = (stat.st_mtime, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._rules = parse_config(self.path.read_text(encoding="utf-8"), self.path)
                self._stamp = stamp
            return self._rules


def parse_config(text: str, path: Path) -> dict[str, ScanRule]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ChartinkConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} "
                                  f"column {exc.colno})") from exc
    scans = data.get("scans") if isinstance(data, dict) else None
    if not isinstance(scans, dict) or not scans:
        raise ChartinkConfigError(f'{path}: expected {{"scans": {{"<scan name>": {{...}}}}}}')
    rules: dict[str, ScanRule] = {}
    problems: list[str] = []
    for name, spec in scans.items():
        try:
            rules[str(name).strip().lower()] = _rule(str(name), spec)
        except ValueError as exc:
            problems.append(f"scan {name!r}: {exc}")
    if problems:
        raise ChartinkConfigError(f"{path}: " + "; ".join(problems))
    return rules


def _rule(name: str, spec: Any) -> ScanRule:
    if not isinstance(spec, dict):
        raise ValueError("must be an object")
    unknown = set(spec) - _KEYS
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; allowed {sorted(_KEYS)}")
    action = str(spec.get("action", "")).upper()
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
    quantity = _count(spec.get("quantity", 0), "quantity")
    amount = None
    if "amount" in spec:
        try:
            amount = Decimal(str(spec["amount"]))
        except InvalidOperation as exc:
            raise ValueError("amount must be a number of rupees") from exc
        if amount <= 0:
            raise ValueError("amount must be positive")
    if action != "EXIT" and not quantity and amount is None:
        raise ValueError("needs a quantity (shares) or an amount (rupees)")
    if quantity and amount is not None:
        raise ValueError("give a quantity or an amount, not both")
    try:
        exchange = Exchange(str(spec.get("exchange", "NSE")).upper())
        product = Product(str(spec.get("product", "MIS")).upper())
    except ValueError as exc:
        raise ValueError(f"bad exchange or product: {exc}") from exc
    max_stocks = _count(spec.get("max_stocks", 10), "max_stocks") or 10
    return ScanRule(name=name, action=action, quantity=quantity, amount=amount,
                    exchange=exchange, product=product,
                    strategy=str(spec.get("strategy", name))[:64], max_stocks=max_stocks)


def _count(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} must be a whole number, not {value!r}")
    return value
