"""``/metrics``: counters by source and outcome, broker latency and errors, gauges from the
journal, and nothing secret in it."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
import requests
from prometheus_client import generate_latest

from bridge.counters import Metrics, error_code
from bridge.kotak.errors import (
    BrokerRejected,
    BrokerUnavailable,
    KotakError,
    OutcomeUnknown,
    ProtocolError,
    RateLimited,
    SessionInvalid,
)
from bridge.kotak.sandbox import Fault, Rule
from bridge.schedule.runner import ROLE
from tests.metrics.conftest import Bridge, scrape
from tests.signals.conftest import SECRET


def buy(bridge: Bridge, path: str = "/webhook/tradingview", **extra: Any) -> tuple[int,
                                                                                 dict[str, Any]]:
    return bridge.signal(path, symbol="NSE:SBIN", action="buy", quantity=1, **extra)


def test_signals_are_counted_by_source_and_outcome(bridge: Bridge) -> None:
    before = scrape(bridge)

    assert buy(bridge, alert_id="m-1")[1]["status"] == "placed"
    assert buy(bridge, alert_id="m-2")[1]["status"] == "placed"
    assert buy(bridge, alert_id="m-1")[1]["status"] == "duplicate"
    assert bridge.signal(symbol="NSE:SBIN", action="hold", quantity=1)[0] == 422
    code, answer = bridge.post("/webhook/amibroker", {"symbol": "NSE:SBIN", "action": "SELL",
                                                      "quantity": 1},
                               headers={"X-Webhook-Secret": SECRET})
    assert (code, answer["status"]) == (200, "placed")
    assert bridge.post("/webhook/amibroker", {"secret": "wrong", "symbol": "NSE:SBIN"})[0] == 401
    assert bridge.post("/webhook/chartink/wrong-secret", {"stocks": "SBIN"})[0] == 401

    after = scrape(bridge)

    def moved(source: str, outcome: str) -> float:
        labels = {"source": source, "outcome": outcome}
        return (after.value("bridge_signals_total", **labels)
                - before.value("bridge_signals_total", **labels))

    assert moved("tradingview", "placed") == 2
    assert moved("tradingview", "duplicate") == 1
    assert moved("tradingview", "rejected") == 1
    assert moved("amibroker", "placed") == 1
    assert moved("amibroker", "rejected") == 1
    assert moved("chartink", "rejected") == 1
    assert after.total("bridge_signals_total") - before.total("bridge_signals_total") == 7
    # Every pair is there from the start, so a rate over it begins at once.
    assert before.has("bridge_signals_total", source="chartink", outcome="queued")
    # Three orders went to Kotak; each answer's latency was observed.
    grew = (after.value("bridge_signal_to_broker_seconds_count")
            - before.value("bridge_signal_to_broker_seconds_count"))
    assert grew == 3
    assert 0 < after.value("bridge_signal_to_broker_seconds_sum") < 3 * 5
    assert after.value("bridge_signal_to_broker_seconds_bucket", le="5.0") == 3


def test_broker_errors_are_counted_by_kotak_code(bridge: Bridge) -> None:
    bridge.sandbox.add_rule(Rule(action="reject", reason="algo_not_allowed"))

    code, answer = buy(bridge)

    assert (code, answer["status"]) == (502, "rejected")
    bridge.sandbox.add_fault(Fault("http_error", endpoint="orders", status=503))
    assert bridge.services.broker().order_book() == []  # retried once, then answered
    metrics = scrape(bridge)
    assert metrics.value("bridge_broker_errors_total", code="1017") == 1
    assert metrics.value("bridge_broker_errors_total", code="http_503") == 1
    # A refusal is an answer: its latency counts.
    assert metrics.value("bridge_signal_to_broker_seconds_count") == 1


def test_a_lost_connection_is_counted_as_connection(bridge: Bridge) -> None:
    bridge.sandbox.add_fault(Fault("drop", endpoint="place", when="after"))

    code, _ = buy(bridge)

    assert code in (200, 504)  # found in the book at once, or still being settled
    metrics = scrape(bridge)
    assert metrics.value("bridge_broker_errors_total", code="connection") == 1
    # No answer came back: nothing to time.
    assert metrics.value("bridge_signal_to_broker_seconds_count") == 0


def test_gauges_read_the_shared_state(bridge: Bridge) -> None:
    services = bridge.services

    first = scrape(bridge)

    assert first.value("bridge_queue_depth") == 0
    assert first.has("bridge_queue_oldest_age_seconds")
    left = first.value("bridge_session_seconds_to_expiry", account="default")
    assert 0 < left <= timedelta(days=1).total_seconds()
    assert first.value("bridge_kill_switch") == 0
    assert math.isinf(first.value("bridge_scheduler_heartbeat_age_seconds"))  # no leader yet
    assert not first.has("bridge_last_squareoff_result")

    services.journal.switches.set_kill_switch(True)
    services.jobs.beat(ROLE, "test-leader", services.clock.now())
    services.jobs.add_notice("squareoff", "error", "NSE: 1 position still open")
    second = scrape(bridge)

    assert second.value("bridge_kill_switch") == 1
    assert 0 <= second.value("bridge_scheduler_heartbeat_age_seconds") < 30
    assert second.value("bridge_last_squareoff_result") == 0
    stamp = second.value("bridge_last_squareoff_timestamp_seconds")
    assert abs(stamp - services.clock.now().timestamp()) < 60

    services.jobs.add_notice("squareoff", "info", "NSE: flat")
    services.broker().sessions.invalidate("test")
    third = scrape(bridge)

    assert third.value("bridge_last_squareoff_result") == 1
    assert third.value("bridge_session_seconds_to_expiry", account="default") == 0


def test_no_heartbeat_gauge_when_no_scheduler_is_configured(make_bridge: Any) -> None:
    bridge = make_bridge(SCHEDULER="off")

    assert not scrape(bridge).has("bridge_scheduler_heartbeat_age_seconds")


def test_metrics_carry_no_secret_and_no_alert_text(bridge: Bridge) -> None:
    buy(bridge, comment="alert-text-visible-only-in-the-journal", strategy="momentum-xyz")
    bridge.post("/webhook/chartink/" + SECRET + "x", {"stocks": "SBIN"})

    text = scrape(bridge).text

    for private in (SECRET, bridge.account.mpin, bridge.account.totp_secret,
                    bridge.account.consumer_key, "alert-text-visible", "momentum-xyz"):
        assert private not in text


def test_each_metrics_object_counts_alone() -> None:
    first, second = Metrics(multiprocess=False), Metrics(multiprocess=False)

    first.signal("tradingview", "placed")
    first.broker_answered(0.012)

    assert b'source="tradingview"} 1.0' in generate_latest(first.registry)
    assert b'source="tradingview"} 1.0' not in generate_latest(second.registry)
    assert b"bridge_signal_to_broker_seconds_count 0.0" in generate_latest(second.registry)


def _caused(error: KotakError, cause: BaseException) -> KotakError:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(("error", "code"), [
    (BrokerRejected("1017", "algo order not allowed"), "1017"),
    (BrokerRejected("HTTP 400", "bad request"), "http_400"),
    (SessionInvalid("refused", "900901"), "900901"),
    (RateLimited("slow down", 1.0), "rate_limited"),
    (ProtocolError("HTML page"), "protocol"),
    (_caused(OutcomeUnknown("no answer", "ReadTimeout"), requests.exceptions.ReadTimeout()),
     "timeout"),
    (_caused(BrokerUnavailable("refused"), requests.exceptions.ConnectionError()),
     "connection"),
    (OutcomeUnknown("Kotak failed place with HTTP 502", cause="HTTP 502"), "http_502"),
    (BrokerUnavailable("Kotak failed order book with HTTP 504 (Gateway)"), "http_504"),
])
def test_error_codes_are_short_bounded_labels(error: KotakError, code: str) -> None:
    assert error_code(error) == code
