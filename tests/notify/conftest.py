"""Fake notification receivers on loopback (a Telegram Bot API and a plain webhook) that
record every post and answer as a test scripts them, and a live-mode bridge (sandbox,
SQLite or PostgreSQL) whose notices they receive."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bridge.kotak.sandbox import SandboxAccount
from bridge.outbox import Backoff
from tests.signals.conftest import SECRET, Bridge, make_bridge

__all__ = ["account", "make_bridge"]

BOT_TOKEN = "987654321:AAFake-bot-token-XYZ0123456789abcdefg"
CHAT_ID = "4242"
HOOK_TOKEN = "hook-token-5f1e2d3c4b5a69788796a5b4"
ADMIN_PASSWORD = "admin-password-0123456789"


@dataclass(frozen=True)
class Received:
    path: str
    raw: str
    body: dict[str, Any]
    status: int  # what the fake answered
    at: float  # monotonic arrival


@dataclass
class Answer:
    status: int = 200
    body: dict[str, Any] = dataclasses.field(default_factory=lambda: {"ok": True,
                                                                      "result": {}})
    hang: float = 0.0  # seconds to sit on the request before answering


class FakeReceiver:
    """An HTTP server on 127.0.0.1 (a free port) in a thread; every POST is recorded."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[Answer] = []  # next answers, in order; then 200
        self.delay = 0.0  # before every answer
        self.released = threading.Event()  # ends any hang at once
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                arrived = time.monotonic()
                with fake._lock:
                    answer = fake.script.pop(0) if fake.script else Answer()
                    fake.received.append(Received(self.path, raw, json.loads(raw or "{}"),
                                                  answer.status, arrived))
                if answer.hang:
                    fake.released.wait(answer.hang)
                if fake.delay:
                    time.sleep(fake.delay)
                payload = json.dumps(answer.body).encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the courier gave up waiting

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self, status: int, body: dict[str, Any] | None = None, *, times: int = 1,
               hang: float = 0.0) -> None:
        with self._lock:
            for _ in range(times):
                self.script.append(Answer(status, body if body is not None else {}, hang))

    def posts(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def delivered(self) -> list[Received]:
        return [post for post in self.posts() if 200 <= post.status < 300]

    def wait_for(self, wanted: Callable[[list[Received]], bool], timeout: float = 15.0,
                 what: str = "the expected posts") -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            posts = self.posts()
            if wanted(posts):
                return posts
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} never arrived; got {[p.raw for p in posts]}")
            time.sleep(0.02)

    def __enter__(self) -> FakeReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def telegram() -> Iterator[FakeReceiver]:
    with FakeReceiver() as fake:
        yield fake


@pytest.fixture
def hook() -> Iterator[FakeReceiver]:
    with FakeReceiver() as fake:
        yield fake


@pytest.fixture
def account() -> SandboxAccount:
    """A trader with room for the square-off drill's positions."""
    return dataclasses.replace(SandboxAccount.generate("AB123"), cash=Decimal(500_000_000))


FAST = Backoff(first=0.1, cap=0.5)


def notifying(telegram: FakeReceiver, hook: FakeReceiver) -> dict[str, str]:
    """Settings that send notices to both fakes (with every kind of secret configured)."""
    return {"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_CHAT_ID": CHAT_ID,
            "TELEGRAM_API_URL": telegram.url, "NOTIFY_WEBHOOK_URL": f"{hook.url}/hook/{HOOK_TOKEN}",
            "ADMIN_PASSWORD": ADMIN_PASSWORD}


@pytest.fixture
def notify_bridge(make_bridge: Any, telegram: FakeReceiver, hook: FakeReceiver
                  ) -> Callable[..., Bridge]:
    """A bridge whose courier delivers to the fakes, with back-off short enough to watch."""

    def make(clock: Any = None, **overrides: str) -> Bridge:
        bridge: Bridge = make_bridge(clock, background=False,
                                     **{**notifying(telegram, hook), **overrides})
        courier = bridge.services.courier
        assert courier is not None
        courier.backoff, courier.poll, courier.timeout = FAST, 0.05, (1.0, 2.0)
        bridge.services.start_background()
        return bridge

    return make


def secrets_of(account: SandboxAccount) -> list[str]:
    """Every secret a message must never carry."""
    return [SECRET, BOT_TOKEN, HOOK_TOKEN, ADMIN_PASSWORD, account.mpin, account.totp_secret,
            account.password, account.consumer_secret, account.consumer_key]
