"""Every injected fault reaches the caller as the error type that says what to do next, and
an order-changing call is never sent twice."""

from __future__ import annotations

import socket
from decimal import Decimal
from pathlib import Path

import pytest

from bridge.domain import Exchange, Instrument, InstrumentKind, OrderRequest, Product, Side
from bridge.kotak.auth import AuthFlow
from bridge.kotak.errors import (
    BrokerUnavailable,
    OutcomeUnknown,
    ProtocolError,
    RateLimited,
)
from bridge.kotak.instruments import InstrumentStore
from bridge.kotak.sandbox import Fault, Sandbox, SandboxAccount, SandboxServer
from bridge.kotak.sandbox.hosts import Role
from tests.conftest import Kotak, make_kotak

SBIN = Instrument(Exchange.NSE, "SBIN-EQ", "SBIN", "3045", InstrumentKind.EQUITY, 1,
                  Decimal("0.05"))


def buy(tag: str, quantity: int = 1) -> OrderRequest:
    return OrderRequest(SBIN, Side.BUY, quantity, Product.MIS, tag=tag)


def tags(kotak: Kotak) -> list[str]:
    return [order.tag for order in kotak.client.order_book()]


def test_html_bad_gateway_on_an_order_is_outcome_unknown_and_not_resent(kotak: Kotak) -> None:
    kotak.sandbox.add_fault(Fault("http_error", endpoint="place", status=502))

    with pytest.raises(OutcomeUnknown) as unknown:
        kotak.client.place_order(buy("gw-502"))

    assert "HTTP 502" in unknown.value.message and "Bad Gateway" in unknown.value.message
    assert kotak.requests_to("place") == 1
    assert tags(kotak) == []  # the gateway never passed it on


def test_html_error_on_a_read_is_retried_with_backoff(kotak: Kotak) -> None:
    kotak.sandbox.add_fault(Fault("http_error", endpoint="orders", status=503, times=2))

    assert kotak.client.order_book() == []
    assert kotak.requests_to("orders") == 3


def test_persistent_read_failure_is_broker_unavailable(kotak: Kotak) -> None:
    kotak.sandbox.add_fault(Fault("http_error", endpoint="positions", status=504, times=None))

    with pytest.raises(BrokerUnavailable) as down:
        kotak.client.positions()

    assert down.value.retry_safe
    assert kotak.requests_to("positions") == 3


def test_connection_dropped_before_handling_is_unknown_and_nothing_was_placed(
        kotak: Kotak) -> None:
    kotak.sandbox.add_fault(Fault("drop", endpoint="place", when="before"))

    with pytest.raises(OutcomeUnknown):
        kotak.client.place_order(buy("drop-b"))

    assert "drop-b" not in tags(kotak)


def test_connection_dropped_after_handling_is_unknown_and_the_tag_finds_the_order(
        kotak: Kotak) -> None:
    kotak.sandbox.add_fault(Fault("drop", endpoint="place", when="after"))

    with pytest.raises(OutcomeUnknown):
        kotak.client.place_order(buy("drop-a"))

    assert tags(kotak) == ["drop-a"]
    assert kotak.requests_to("place") == 1


def test_answer_slower_than_the_read_timeout_is_unknown(sandbox: Sandbox,
                                                        account: SandboxAccount,
                                                        server: SandboxServer) -> None:
    kotak = make_kotak(sandbox, account, server, AuthFlow.TOTP, read_timeout=0.5)
    kotak.login()
    sandbox.add_fault(Fault("stall", endpoint="place", seconds=1.2, when="after"))

    with pytest.raises(OutcomeUnknown) as unknown:
        kotak.client.place_order(buy("slow"))

    assert "within 0.5s" in unknown.value.message
    assert tags(kotak) == ["slow"]
    assert kotak.requests_to("place") == 1


def test_latency_inside_the_timeout_is_just_slower(kotak: Kotak) -> None:
    kotak.sandbox.add_fault(Fault("latency", endpoint="place", seconds=0.2))

    order_id = kotak.client.place_order(buy("late"))

    assert kotak.client.order_book()[0].order_id == order_id


def test_rate_limit_on_orders_is_refused_without_retry(sandbox: Sandbox,
                                                       account: SandboxAccount,
                                                       server: SandboxServer) -> None:
    sandbox.config.order_rate = 2
    kotak = make_kotak(sandbox, account, server, AuthFlow.TOTP)
    kotak.login()
    kotak.client.place_order(buy("r1"))
    kotak.client.place_order(buy("r2"))

    with pytest.raises(RateLimited) as limited:
        kotak.client.place_order(buy("r3"))

    assert limited.value.retry_safe and limited.value.retry_after == 1.0
    assert kotak.requests_to("place") == 3
    assert sorted(tags(kotak)) == ["r1", "r2"]


def test_rate_limited_read_is_retried(kotak: Kotak) -> None:
    kotak.sandbox.add_fault(Fault("rate_limit", endpoint="trades"))

    assert kotak.client.trade_book() == []
    assert kotak.requests_to("trades") == 2


def test_nothing_listening_is_unavailable_and_nothing_sent(sandbox: Sandbox,
                                                           account: SandboxAccount) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    kotak = make_kotak(sandbox, account, dead_url, AuthFlow.TOTP)

    with pytest.raises(BrokerUnavailable) as down:
        kotak.sessions.login()

    assert "could not connect" in down.value.message
    assert kotak.store.load_failure("default") is None  # never reached Kotak: not a failure


def test_a_request_its_sender_cut_short_is_never_handled(kotak: Kotak,
                                                         server: SandboxServer) -> None:
    """A process killed while writing an order: the part that arrived places nothing and is
    not answered or logged as a request (it was, as a refusal with HTTP 200 and no order
    data, which read as an accepted order), and the next order goes through as usual."""
    kotak.client.place_order(buy("before-cut"))
    (sent,) = server.sandbox.requests.snapshot("place")
    head = "".join(f"{name}: {value}\r\n" for name, value in sent.headers
                   if name.lower() not in ("content-length", "connection"))
    host, port = server.url_of(Role.TRADING).removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as cut:
        cut.sendall(f"POST {sent.target} HTTP/1.1\r\n{head}Content-Length: 400\r\n\r\n"
                    .encode() + b"jData=%7B%22es%22")
        cut.shutdown(socket.SHUT_WR)
        assert cut.recv(1024) == b""  # closed without an answer

    assert len(server.sandbox.requests.snapshot("place")) == 1
    kotak.client.place_order(buy("after-cut"))
    assert sorted(tags(kotak)) == ["after-cut", "before-cut"]
    assert [r.status for r in server.sandbox.requests.snapshot("place")] == [200, 200]


def test_order_to_a_dead_host_is_unavailable_not_unknown(kotak: Kotak,
                                                         server: SandboxServer) -> None:
    server.stop()

    with pytest.raises(BrokerUnavailable) as down:
        kotak.client.place_order(buy("dead"))

    assert not isinstance(down.value, OutcomeUnknown)


def test_wrong_address_is_a_protocol_error_not_retried_forever(kotak: Kotak) -> None:
    kotak.sandbox.add_fault(Fault("http_error", endpoint="orders", status=404, times=None))

    with pytest.raises(ProtocolError) as wrong:
        kotak.client.order_book()

    assert "check the Kotak URL settings" in wrong.value.message


def test_failed_scrip_download_keeps_the_previous_index(kotak: Kotak, tmp_path: Path) -> None:
    store = InstrumentStore(tmp_path / "scrip", kotak.clock)
    store.refresh(kotak.client)
    before = store.current()
    kotak.sandbox.add_fault(Fault("http_error", endpoint="scrip-file", status=500,
                                  times=None))

    with pytest.raises(BrokerUnavailable):
        store.refresh(kotak.client)

    assert store.current() is before
    assert sorted(p.name for p in (tmp_path / "scrip").iterdir()
                  if not p.name.startswith(".")) == [before.trading_day.isoformat()]
