"""The standalone sandbox: it prints the credentials it accepts, and a live-mode bridge
pointed at it works exactly as against Kotak, with either login generation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.config import load_settings
from bridge.domain import OrderRequest, OrderStatus, Product, Side
from bridge.startup import prepare
from bridge.wiring import Services, build_services
from tests.e2e.helpers import start_sandbox, stop

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    process, _, settings = start_sandbox(tmp_path_factory.mktemp("sandbox") / "sandbox.log",
                                         "--ucc", "ZX901", "--mpin", "246810", env={})
    try:
        yield settings
    finally:
        stop(process)


def drill_services(printed: dict[str, str], tmp_path: Path, **settings: str) -> Services:
    """A live-mode bridge's services pointed at the standalone sandbox, logged in."""
    services = build_services(load_settings({
        **printed, **settings, "WEBHOOK_SECRET": "standalone-drill-secret-1",
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}"}))
    prepare(services)
    return services


@pytest.mark.parametrize("flow", ["totp", "oauth2"])
def test_live_bridge_against_the_standalone_sandbox(printed: dict[str, str], flow: str,
                                                    tmp_path: Path) -> None:
    assert printed["KOTAK_UCC"] == "ZX901" and printed["KOTAK_MPIN"] == "246810"
    services = drill_services(printed, tmp_path, KOTAK_AUTH=flow)
    try:
        client = services.broker()
        assert client.sessions.status().valid
        nifty = services.instruments.current().resolve("NIFTY1!")

        order_id = client.place_order(OrderRequest(nifty, Side.BUY, nifty.lot_size,
                                                   Product.NRML, tag=f"drill-{flow}"))

        order = next(o for o in client.order_book() if o.order_id == order_id)
        assert order.status is OrderStatus.COMPLETE and order.tag == f"drill-{flow}"
    finally:
        services.close()


def test_every_login_url_may_point_at_the_one_port_given(printed: dict[str, str],
                                                         tmp_path: Path) -> None:
    """The design's drill: KOTAK_LOGIN_URL, KOTAK_OAUTH_URL and KOTAK_GATEWAY_URL all at the
    port passed with --port; the trading and files hosts come from Kotak's own answers."""
    one = printed["KOTAK_LOGIN_URL"]
    assert printed["KOTAK_GATEWAY_URL"] != one  # each host has its own port too
    services = drill_services(printed, tmp_path, KOTAK_AUTH="oauth2", KOTAK_OAUTH_URL=one,
                              KOTAK_GATEWAY_URL=one)
    try:
        client = services.broker()
        assert client.sessions.current().base_url == one
        sbin = services.instruments.current().resolve("NSE:SBIN")

        order_id = client.place_order(OrderRequest(sbin, Side.BUY, 1, Product.CNC,
                                                   tag="drill-one-port"))

        assert client.order(order_id) is not None
    finally:
        services.close()
