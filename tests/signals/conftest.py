"""A live-mode bridge wired to a Kotak sandbox on a loopback port, on SQLite or PostgreSQL.

Tests post signals through the Flask app and look at what a user would: the answer, what
reached the broker (the sandbox's request log and books), and what the journal holds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bridge.app import create_app
from bridge.clock import IST, Clock, ManualClock
from bridge.config import load_settings
from bridge.domain import Exchange
from bridge.journal.rows import SignalRow, SignalStatus
from bridge.kotak.sandbox import Sandbox, SandboxAccount, SandboxServer
from bridge.schedule.calendar import TradingCalendar
from bridge.startup import prepare
from bridge.wiring import Services, build_services

SECRET = "test-webhook-secret-0123456789"


@dataclass
class Bridge:
    app: Flask
    client: FlaskClient
    services: Services
    sandbox: Sandbox
    account: SandboxAccount

    def post(self, path: str, body: Any, *, headers: dict[str, str] | None = None,
             content_type: str = "application/json",
             remote: str = "127.0.0.1") -> tuple[int, dict[str, Any]]:
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        response = self.client.post(path, data=data, headers=headers or {},
                                    content_type=content_type,
                                    environ_base={"REMOTE_ADDR": remote})
        return response.status_code, response.get_json() or {}

    def signal(self, path: str = "/webhook/tradingview", **fields: Any) -> tuple[int,
                                                                                dict[str, Any]]:
        return self.post(path, {"secret": SECRET, **fields})

    def placed(self) -> list[dict[str, str]]:
        """The jData of every place request that reached the broker, in order."""
        return [json.loads(r.jdata) for r in self.sandbox.requests.snapshot("place")]

    def book(self) -> list[dict[str, Any]]:
        return self.sandbox.orders(self.account.ucc)

    def net(self, trading_symbol: str, product: str = "MIS") -> int:
        total = 0
        for row in self.sandbox.positions(self.account.ucc):
            if row["trdSym"] == trading_symbol and row["prod"] == product:
                total += (int(row["flBuyQty"]) + int(row["cfBuyQty"])
                          - int(row["flSellQty"]) - int(row["cfSellQty"]))
        return total

    def seed(self, trading_symbol: str, quantity: int, *, exchange: str = "NSE",
             product: str = "MIS", price: str = "100") -> None:
        from decimal import Decimal

        self.sandbox.seed_position(self.account.ucc, exchange, trading_symbol, product,
                                   quantity, Decimal(price))

    def journaled(self, alert_id: str) -> SignalRow:
        rows = self.services.journal.signals.signals_by_alert_id(alert_id)
        assert rows, f"signal {alert_id} is not in the journal"
        return rows[0]

    def wait_status(self, alert_id: str, *wanted: SignalStatus,
                    timeout: float = 10.0) -> SignalRow:
        deadline = time.monotonic() + timeout
        while True:
            row = self.journaled(alert_id)
            if row.status in wanted:
                return row
            if time.monotonic() > deadline:
                raise AssertionError(f"signal {alert_id} stayed {row.status}, wanted {wanted}")
            time.sleep(0.05)


def bridge_settings(server: SandboxServer, account: SandboxAccount, database_url: str,
                    data_dir: Path, **overrides: str) -> dict[str, str]:
    return {
        "BRIDGE_MODE": "live", "WEBHOOK_SECRET": SECRET, "DATABASE_URL": database_url,
        "DATA_DIR": str(data_dir), **server.settings(), "BROKER_API_KEY": account.consumer_key,
        "BROKER_API_SECRET": account.consumer_secret, "KOTAK_UCC": account.ucc,
        "KOTAK_MOBILE": account.mobile, "KOTAK_MPIN": account.mpin,
        "KOTAK_TOTP_SECRET": account.totp_secret, "KOTAK_PASSWORD": account.password,
        "MARKET_HOURS": "ignore", "KOTAK_ORDER_RATE": "50", "DEDUP_WINDOW_S": "10",
        "KOTAK_READ_TIMEOUT_S": "1.5", "RESPONSE_BUDGET_MS": "2000",
        **overrides,
    }


def start_bridge(server: SandboxServer, account: SandboxAccount, database_url: str,
                 data_dir: Path, clock: Clock | None = None, background: bool = True,
                 **overrides: str) -> Bridge:
    settings = load_settings(bridge_settings(server, account, database_url, data_dir,
                                             **overrides))
    services = build_services(settings, clock=clock)
    prepare(services)
    app = create_app(services=services)
    if background:
        services.start_background()
    return Bridge(app, app.test_client(), services, server.sandbox, account)


@pytest.fixture
def make_bridge(server: SandboxServer, account: SandboxAccount, database_url: str,
                tmp_path: Path) -> Iterator[Any]:
    """Start a bridge with extra settings; closed after the test."""
    started: list[Bridge] = []

    def make(clock: Clock | None = None, background: bool = True, **overrides: str) -> Bridge:
        if clock is not None:
            server.sandbox.clock = clock  # one time for both ends (TOTP, books, sessions)
        bridge = start_bridge(server, account, database_url, tmp_path / "data", clock,
                              background, **overrides)
        started.append(bridge)
        return bridge

    yield make
    for bridge in started:
        bridge.services.close()


@pytest.fixture
def bridge(make_bridge: Any) -> Bridge:
    made: Bridge = make_bridge()
    return made


def weekday_at(hour: int, minute: int, weekday: int = 0) -> datetime:
    """A recent past weekday (Monday by default) at this IST time, not an NSE holiday."""
    hours = load_settings({"WEBHOOK_SECRET": SECRET}).risk.trading_hours
    calendar = TradingCalendar.load(hours)
    day = datetime.now(IST).date() - timedelta(days=7)
    day -= timedelta(days=(day.weekday() - weekday) % 7)
    while calendar.closure(Exchange.NSE, day) is not None:
        day -= timedelta(days=7)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=IST)


@pytest.fixture
def market_clock() -> ManualClock:
    return ManualClock(weekday_at(10, 0))
