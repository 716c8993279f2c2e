"""Paper mode: the ordinary Kotak client talking to the in-process sandbox, shared by every
worker process through one state file, logged in once."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from bridge.config import Settings, load_settings
from bridge.domain import OrderRequest, OrderStatus, Product, Side
from bridge.kotak.errors import OutcomeUnknown
from bridge.kotak.sandbox import Fault
from bridge.startup import prepare
from bridge.wiring import Services, build_services


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings({"WEBHOOK_SECRET": "paper-mode-secret-123456",
                          "DATA_DIR": str(tmp_path / "data"),
                          "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}"})


@pytest.fixture
def worker_a(settings: Settings) -> Iterator[Services]:
    services = build_services(settings)
    yield services
    services.close()


@pytest.fixture
def worker_b(settings: Settings) -> Iterator[Services]:
    services = build_services(settings)
    yield services
    services.close()


def test_start_logs_in_once_and_loads_instruments(worker_a: Services) -> None:
    prepare(worker_a)

    assert worker_a.broker().sessions.status().valid
    assert worker_a.instruments.current().resolve("NSE:SBIN").trading_symbol == "SBIN-EQ"
    assert worker_a.paper is not None
    assert len(worker_a.paper.requests.snapshot("login")) == 1


def test_workers_share_one_session_and_one_book(worker_a: Services,
                                                worker_b: Services) -> None:
    prepare(worker_a)
    sbin = worker_a.instruments.current().resolve("NSE:SBIN")

    order_id = worker_a.broker().place_order(OrderRequest(sbin, Side.BUY, 3, Product.MIS,
                                                          tag="w-a"))

    (order,) = worker_b.broker().order_book()
    assert order.order_id == order_id and order.status is OrderStatus.COMPLETE
    (position,) = worker_b.broker().positions()
    assert position.net_quantity == 3
    assert worker_b.paper is not None and worker_b.paper.requests.snapshot("login") == []


def test_paper_broker_honours_the_clients_timeouts(worker_a: Services) -> None:
    prepare(worker_a)
    sbin = worker_a.instruments.current().resolve("NSE:SBIN")
    assert worker_a.paper is not None
    worker_a.paper.add_fault(Fault("drop", endpoint="place", when="after"))

    with pytest.raises(OutcomeUnknown):
        worker_a.broker().place_order(OrderRequest(sbin, Side.BUY, 1, Product.MIS, tag="lost"))

    assert [o.tag for o in worker_a.broker().order_book()] == ["lost"]


def test_paper_books_survive_a_restart(settings: Settings) -> None:
    first = build_services(settings)
    prepare(first)
    sbin = first.instruments.current().resolve("NSE:SBIN")
    assert first.paper is not None
    first.paper.set_price("NSE", "SBIN-EQ", Decimal("900"))
    first.broker().place_order(OrderRequest(sbin, Side.BUY, 2, Product.CNC))
    first.close()

    again = build_services(settings)
    prepare(again)
    try:
        (position,) = again.broker().positions()
        assert position.net_quantity == 2 and position.average_price == Decimal("900")
        assert again.paper is not None and again.paper.requests.snapshot("login") == []
    finally:
        again.close()


def test_an_option_alert_by_offset_trades_in_paper_mode(worker_a: Services) -> None:
    """The first thing an options trader tries: BUY the ATM call of NIFTY from the index's
    moving price, with nothing but the webhook secret configured."""
    from bridge.app import create_app

    prepare(worker_a)
    worker_a.start_background()
    client = create_app(services=worker_a).test_client()
    answer = client.post("/webhook/tradingview", json={
        "secret": "paper-mode-secret-123456", "underlying": "NIFTY", "exchange": "NSE_INDEX",
        "offset": "ATM", "option_type": "CE", "action": "BUY", "quantity": 65,
        "product": "MIS", "alert_id": "paper-atm"}).get_json()

    assert answer["status"] == "placed", answer
    picked = answer["option"]
    step = Decimal(picked["strike_step"])
    assert abs(Decimal(picked["strike"]) - Decimal(picked["underlying_price"])) <= step / 2
    assert answer["orders"][0]["symbol"] == picked["trading_symbol"]
