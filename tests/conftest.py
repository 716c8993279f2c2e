"""Shared fixtures: a Kotak sandbox on a loopback port, clients of both login generations,
and databases (a SQLite file, or a fresh schema in the PostgreSQL at 127.0.0.1:5432)."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from bridge.clock import IST, Clock, ManualClock, SystemClock
from bridge.journal.db import create_db_engine
from bridge.journal.schema import create_schema
from bridge.kotak.auth import AuthFlow, KotakCredentials
from bridge.kotak.client import KotakClient
from bridge.kotak.http import KotakHttp, RetryPolicy, Timeouts
from bridge.kotak.sandbox import Sandbox, SandboxAccount, SandboxConfig, SandboxServer
from bridge.kotak.sandbox.hosts import Role
from bridge.kotak.session import MemorySessionStore, SessionManager, SessionStore

# Kotak's SDK (the oracle of tests/kotak/test_sdk_*) opens ./logs/neo-api-client.log when it
# is first imported unless told not to; conftest runs before any test module imports it.
os.environ["NEO_LOG_FILE_ENABLED"] = "false"

POSTGRES_URL = os.environ.get("BRIDGE_TEST_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the machine's settings and proxies out of every test."""
    settings = {"WEBHOOK_SECRET", "DATABASE_URL", "ENV_FILE", "DATA_DIR", "HTTP_PROXY",
                "HTTPS_PROXY", "http_proxy", "https_proxy"}
    for name in list(os.environ):
        ours = name.startswith(("KOTAK_", "BRIDGE_", "BROKER_")) or name in settings
        if ours and name != "BRIDGE_TEST_POSTGRES_URL":
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def account() -> SandboxAccount:
    return SandboxAccount.generate("AB123")


@pytest.fixture
def sandbox(account: SandboxAccount) -> Sandbox:
    # The lean market: every bridge start parses the scrip master, and the suite starts
    # hundreds (tests/sandbox/test_market.py covers the full one).
    return Sandbox([account], config=SandboxConfig(order_rate=0, market="lean"))


@pytest.fixture
def server(sandbox: Sandbox) -> Iterator[SandboxServer]:
    with SandboxServer(sandbox) as running:
        yield running


def credentials_for(account: SandboxAccount, server: SandboxServer | str, flow: AuthFlow,
                    **changes: str) -> KotakCredentials:
    """Credentials for ``server``'s hosts (a plain URL: one address for every host)."""
    login, oauth, gateway = ((server, server, server) if isinstance(server, str)
                             else (server.url, server.oauth_url, server.gateway_url))
    values = {
        "access_token": account.consumer_key, "consumer_secret": account.consumer_secret,
        "ucc": account.ucc, "mobile": account.mobile, "mpin": account.mpin,
        "totp_secret": account.totp_secret, "password": account.password,
        "login_url": login, "oauth_url": oauth, "gateway_url": gateway,
    }
    values.update(changes)
    return KotakCredentials(flow=flow, **values)


@dataclass
class Kotak:
    """A client wired to a sandbox, with everything a test may need to look at."""

    client: KotakClient
    sessions: SessionManager
    store: SessionStore
    sandbox: Sandbox
    account: SandboxAccount
    url: str  # the trading host: the baseUrl (totp) or the gateway (oauth2)
    flow: AuthFlow
    clock: Clock
    files_url: str = ""  # where the scrip-master CSVs are

    def login(self) -> None:
        self.sessions.login()

    def requests_to(self, endpoint: str) -> int:
        return len(self.sandbox.requests.snapshot(endpoint))


def make_kotak(sandbox: Sandbox, account: SandboxAccount, server: SandboxServer | str,
               flow: AuthFlow, *,
               clock: Clock | None = None, store: SessionStore | None = None,
               read_timeout: float = 2.0, **changes: str) -> Kotak:
    http = KotakHttp(timeouts=Timeouts(connect=1.0, read=read_timeout, login=read_timeout),
                     retry=RetryPolicy(attempts=3, backoff=0.01, max_wait=0.05))
    store = store or MemorySessionStore()
    clock = clock or SystemClock()
    manager = SessionManager("default", credentials_for(account, server, flow, **changes), http,
                             store, clock)
    if isinstance(server, str):
        return Kotak(KotakClient(http, manager), manager, store, sandbox, account, server, flow,
                     clock, files_url=server)
    trading = server.url_of(Role.TRADING) if flow is AuthFlow.TOTP else server.gateway_url
    return Kotak(KotakClient(http, manager), manager, store, sandbox, account, trading, flow,
                 clock, files_url=server.url_of(Role.FILES))


@pytest.fixture(params=[AuthFlow.TOTP, AuthFlow.OAUTH2], ids=["totp", "oauth2"])
def flow(request: pytest.FixtureRequest) -> AuthFlow:
    flow: AuthFlow = request.param
    return flow


@pytest.fixture
def kotak(sandbox: Sandbox, account: SandboxAccount, server: SandboxServer,
          flow: AuthFlow) -> Kotak:
    """A logged-in client of the sandbox over loopback, for each login generation."""
    connected = make_kotak(sandbox, account, server, flow)
    connected.login()
    return connected


def ist(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=IST)


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock(ist("2026-11-24T10:00:00"))


# --- databases ----------------------------------------------------------------------------


def _postgres_available() -> bool:
    try:
        engine = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"),
                               connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    return _postgres_available()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path,
                 postgres_available: bool) -> Iterator[str]:
    """A fresh, empty journal database: a SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'journal.db'}"
        return
    if not postgres_available:
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}")
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_db_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    create_schema(engine)
    yield engine
    engine.dispose()


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[None]:
    """Serve ``server`` (a loopback stand-in) on a thread for the block, then close it."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
