"""The bridge in live mode against the Kotak sandbox, served on a loopback port, with
OpenAlgo's own Python client (``openalgo`` from PyPI, unchanged) pointed at it.

One bridge serves a whole test module (``served``): tests trade instruments of their own and
look at what each of their calls added to the sandbox's request log. Tests that need other
settings (the API off, a low limit of wrong keys) start their own (``serve``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from openalgo import api
from werkzeug.serving import make_server

from bridge.kotak.sandbox import Sandbox, SandboxAccount, SandboxConfig, SandboxServer
from tests.signals.conftest import Bridge, start_bridge

KEY = "api-test-key-0123456789abcdef"


@dataclass
class Served:
    """A bridge on a real port, and an OpenAlgo client of it."""

    url: str
    bridge: Bridge
    client: Any  # openalgo.api: the package has no type hints

    def mark(self) -> int:
        """Where the sandbox's log of place requests stands now."""
        return len(self.bridge.sandbox.requests.snapshot("place"))

    def sent(self, since: int = 0) -> list[tuple[str, str, str]]:
        """(trading symbol, side, quantity) of each order that reached Kotak since ``since``,
        in the order Kotak received them."""
        return [(o["ts"], o["tt"], o["qt"]) for o in self.bridge.placed()[since:]]

    def booked(self, order_id: str) -> dict[str, Any]:
        """Kotak's row of an order (the sandbox's order book)."""
        rows = [row for row in self.bridge.book() if row["nOrdNo"] == order_id]
        assert rows, f"order {order_id} is not in the sandbox's book"
        return rows[0]

    def post(self, call: str, body: Any, headers: dict[str, str] | None = None,
             ) -> tuple[int, dict[str, Any]]:
        """A raw call, for what the client cannot send (headers, a broken body)."""
        answer = httpx.post(f"{self.url}/api/v1/{call}", timeout=30,
                            content=body if isinstance(body, (str, bytes)) else json.dumps(body),
                            headers={"Content-Type": "application/json", **(headers or {})})
        return answer.status_code, answer.json()


@contextmanager
def running(data_dir: Path, **overrides: str) -> Iterator[Served]:
    """A sandbox, a live bridge logged in to it, and the bridge's app on a loopback port."""
    account = SandboxAccount.generate("AB123")
    sandbox = Sandbox([account], config=SandboxConfig(order_rate=0, market="lean"))
    with SandboxServer(sandbox) as kotak:
        # A limit order that does not fill is answered "placed" once the time budget is up:
        # half a second keeps the module quick.
        bridge = start_bridge(kotak, account, f"sqlite:///{data_dir / 'journal.db'}",
                              data_dir / "data",
                              **{"API_KEY": KEY, "RESPONSE_BUDGET_MS": "500", **overrides})
        server = make_server("127.0.0.1", 0, bridge.app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{server.server_port}"
        try:
            yield Served(url, bridge, api(api_key=overrides.get("API_KEY", KEY), host=url))
        finally:
            server.shutdown()
            thread.join(10)
            bridge.services.close()


@pytest.fixture(autouse=True)
def _no_api_key_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep an API_KEY exported on this machine out of the tests that read an .env."""
    monkeypatch.delenv("API_KEY", raising=False)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with running(tmp_path_factory.mktemp("api")) as started:
        yield started


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start a bridge of its own with extra settings (``API_KEY`` set unless given)."""
    with ExitStack() as stack:
        def start(**overrides: str) -> Served:
            folder = tmp_path / f"bridge-{len(list(tmp_path.iterdir()))}"
            folder.mkdir()
            return stack.enter_context(running(folder, **overrides))

        yield start
