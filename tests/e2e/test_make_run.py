"""The paper-mode smoke test: `make run` starts the bridge on a fresh .env, and an order
placed through the client lands in the paper broker's order book and positions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.config import Settings, environment, load_settings
from bridge.domain import OrderRequest, OrderStatus, Product, Side
from bridge.wiring import build_services
from tests.e2e.helpers import free_port, start, stop, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    port = free_port()
    env_file = tmp_path / ".env"
    overrides = {"ENV_FILE": str(env_file), "DATA_DIR": str(tmp_path / "data"),
                 "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}",
                 "BRIDGE_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2"}
    log = tmp_path / "make-run.log"
    process = start(["make", "--no-print-directory", "run"], {**os.environ, **overrides}, log)
    try:
        wait_for(f"http://127.0.0.1:{port}/readyz", process, log)
        yield f"http://127.0.0.1:{port}", log, overrides
    finally:
        stop(process)


def test_make_run_serves_paper_mode_and_orders_reach_the_paper_book(
        running: tuple[str, Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    base, log, overrides = running
    env_file = Path(overrides["ENV_FILE"])
    secret = next(line.split("=", 1)[1] for line in env_file.read_text().splitlines()
                  if line.startswith("WEBHOOK_SECRET="))
    assert len(secret) >= 24
    assert f"webhook secret:  {secret}" in log.read_text()
    ready = requests.get(f"{base}/readyz", timeout=5).json()
    assert ready["status"] == "ready" and ready["mode"] == "paper"

    for key, value in overrides.items():
        monkeypatch.setenv(key, value)
    settings: Settings = load_settings(environment())
    services = build_services(settings)
    try:
        client = services.broker()
        assert client.sessions.status().valid  # the server's login, found in the journal
        sbin = services.instruments.current().resolve("NSE:SBIN")

        order_id = client.place_order(OrderRequest(sbin, Side.BUY, 7, Product.MIS,
                                                   tag="smoke"))

        (order,) = [o for o in client.order_book() if o.order_id == order_id]
        assert order.status is OrderStatus.COMPLETE and order.tag == "smoke"
        (position,) = client.positions()
        assert position.trading_symbol == "SBIN-EQ" and position.net_quantity == 7
        assert services.paper is not None
        assert services.paper.requests.snapshot("login") == []  # no second login
    finally:
        services.close()
    assert "Traceback" not in log.read_text()
