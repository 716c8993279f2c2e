"""One ``bridge.signals`` line per signal at its final status: fields for log shippers in
JSON, a readable sentence in text, and no secret either way."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bridge.journal.rows import SignalStatus
from bridge.log import JsonFormatter, RedactFilter
from tests.metrics.conftest import Bridge
from tests.signals.conftest import SECRET

Lines = Callable[[logging.Formatter], io.StringIO]


@pytest.fixture
def capture(bridge: Bridge) -> Iterator[Lines]:
    """Attach a handler like the one ``configure_logging`` installs to ``bridge.signals``."""
    logger = logging.getLogger("bridge.signals")
    handlers: list[logging.Handler] = []
    level = logger.level

    def attach(formatter: logging.Formatter) -> io.StringIO:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        handler.addFilter(RedactFilter(bridge.services.redactor))
        logger.addHandler(handler)
        handlers.append(handler)
        return stream

    logger.setLevel(logging.INFO)
    yield attach
    for handler in handlers:
        logger.removeHandler(handler)
    logger.setLevel(level)


def wait_lines(stream: io.StringIO, count: int, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(stream.getvalue().splitlines()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # long enough for the tracker's next sweep to (wrongly) log again
    return stream.getvalue().splitlines()


def test_json_lines_one_per_signal_with_its_fields(bridge: Bridge, capture: Lines) -> None:
    stream = capture(JsonFormatter())

    code, placed = bridge.signal(symbol="NSE:SBIN", action="buy", quantity=3,
                                 alert_id="log-1", strategy="trend")
    assert code == 200
    assert bridge.signal(symbol="NSE:SBIN", action="hold", quantity=1,
                         alert_id="log-2")[0] == 422
    assert bridge.signal(symbol="NSE:SBIN", action="buy", quantity=3,
                         alert_id="log-1")[1]["status"] == "duplicate"
    bridge.wait_status("log-1", SignalStatus.PLACED)

    entries = [json.loads(line) for line in wait_lines(stream, 3)]

    assert sorted((e["alert_id"], e["status"]) for e in entries) == [
        ("log-1", "duplicate"), ("log-1", "placed"), ("log-2", "rejected")]
    done = next(e for e in entries if e["status"] == "placed")
    assert done["logger"] == "bridge.signals" and done["level"] == "INFO"
    assert (done["source"], done["strategy"], done["symbol"], done["exchange"],
            done["action"], done["quantity"]) == ("tradingview", "trend", "SBIN-EQ", "NSE",
                                                  "BUY", 3)
    (order,) = placed["orders"]
    assert done["order_ids"] == [order["order_id"]]
    assert done["order_statuses"] == ["complete"] and done["filled_quantity"] == 3
    assert isinstance(done["latency_ms"], int) and 0 <= done["latency_ms"] < 10_000
    refused = next(e for e in entries if e["status"] == "rejected")
    assert refused["error_code"] == "invalid_signal" and "action" in refused["reason"]
    repeat = next(e for e in entries if e["status"] == "duplicate")
    assert repeat["duplicate_of"] == done["signal_id"]


def test_text_line_reads_as_a_sentence(bridge: Bridge, capture: Lines) -> None:
    stream = capture(logging.Formatter("%(message)s"))

    _, answer = bridge.signal(symbol="NSE:SBIN", action="buy", quantity=10, alert_id="txt-1")
    bridge.wait_status("txt-1", SignalStatus.PLACED)

    (line,) = wait_lines(stream, 1)
    order_id = answer["orders"][0]["order_id"]
    assert re.fullmatch(rf"signal txt-1 tradingview BUY 10 NSE:SBIN-EQ -> placed, order "
                        rf"{order_id}: complete in \d+ ms", line), line


def test_a_broker_rejection_names_the_reason(bridge: Bridge, capture: Lines) -> None:
    from bridge.kotak.sandbox import Rule

    stream = capture(logging.Formatter("%(message)s"))
    bridge.sandbox.add_rule(Rule(action="reject", reason="insufficient_funds"))

    bridge.signal(symbol="NSE:SBIN", action="buy", quantity=1, alert_id="rms-1")
    bridge.wait_status("rms-1", SignalStatus.REJECTED)

    (line,) = wait_lines(stream, 1)
    assert line.startswith("signal rms-1 tradingview BUY 1 NSE:SBIN-EQ -> rejected, order ")
    assert ": rejected (broker_rejected: Kotak rejected it: " in line


def test_no_secret_reaches_the_line(bridge: Bridge, capture: Lines) -> None:
    stream = capture(JsonFormatter())
    sneaky: dict[str, Any] = {"strategy": f"s-{SECRET}", "comment": SECRET}

    bridge.signal(symbol="NSE:SBIN", action="buy", quantity=1, alert_id="sec-1", **sneaky)
    bridge.signal(symbol=f"NSE:{SECRET}", action="buy", quantity=1, alert_id="sec-2")
    bridge.wait_status("sec-1", SignalStatus.PLACED, SignalStatus.REJECTED)

    lines = wait_lines(stream, 2)
    assert len(lines) == 2
    text = "\n".join(lines)
    for secret in (SECRET, bridge.account.mpin, bridge.account.totp_secret,
                   bridge.account.consumer_key):
        assert secret not in text
    entries = {entry["alert_id"]: entry for entry in map(json.loads, lines)}
    assert entries["sec-1"]["strategy"] == "s-***"
    assert entries["sec-2"]["symbol"] == "NSE:***" and "***" in entries["sec-2"]["reason"]


def test_a_queued_signal_is_logged_when_sent_and_timed(make_bridge: Any) -> None:
    bridge = make_bridge(KOTAK_ORDER_RATE="1")
    logger = logging.getLogger("bridge.signals")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    try:
        answers = [bridge.signal(symbol="NSE:SBIN", action="buy", quantity=1,
                                 alert_id=f"q-{n}")[1]["status"] for n in range(3)]
        assert "queued" in answers
        for n in range(3):
            bridge.wait_status(f"q-{n}", SignalStatus.PLACED)
        entries = [json.loads(line) for line in wait_lines(stream, 3)]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

    assert sorted(e["alert_id"] for e in entries) == ["q-0", "q-1", "q-2"]
    metrics = bridge.client.get("/metrics").get_data(as_text=True)
    assert "bridge_signal_to_broker_seconds_count 3.0" in metrics
