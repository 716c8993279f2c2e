"""The bridge's Prometheus counters and latency histogram.

A :class:`Metrics` is made with each set of services (so two apps in one test run never
share counts): the wiring hands its recording methods to the Kotak connector and the order
service, and the front doors count through :func:`bridge.metrics.count_signal`. Under
gunicorn ``deploy/gunicorn.conf.py`` sets ``PROMETHEUS_MULTIPROC_DIR``: every process then
writes its counts to files there and the scrape adds them up. The ``/metrics`` endpoint and
the gauges read at scrape time are :mod:`bridge.metrics`, which builds on the services; the
services build on this module, so it imports none of them.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import requests
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from bridge.kotak.errors import (
    BrokerUnavailable,
    KotakError,
    LoginFailed,
    OutcomeUnknown,
    ProtocolError,
    RateLimited,
)

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SOURCES = ("tradingview", "amibroker", "chartink")
OUTCOMES = ("placed", "noop", "duplicate", "queued", "rejected", "failed", "unknown")
#: 1 ms (a paper fill) to 5 s (past TradingView's 3 s patience)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_CODE_CHARS = re.compile(r"[^a-z0-9_.-]+")
_HTTP_STATUS = re.compile(r"HTTP (\d{3})")


class Metrics:
    """The bridge's counters and histogram; recording never raises."""

    def __init__(self, *, multiprocess: bool | None = None) -> None:
        self.multiprocess = (MULTIPROC_ENV in os.environ if multiprocess is None
                             else multiprocess)
        folder = os.environ.get(MULTIPROC_ENV)
        if self.multiprocess and folder:
            # A missing folder would fail the first count, deep in the order path.
            os.makedirs(folder, exist_ok=True)
        self.registry = CollectorRegistry()
        # In multiprocess mode values go to files, read back by MultiProcessCollector.
        target = None if self.multiprocess else self.registry
        self.signals = Counter(
            "bridge_signals", "Signals answered, by source and the status in the answer.",
            ["source", "outcome"], registry=target)
        self.broker_latency = Histogram(
            "bridge_signal_to_broker_seconds",
            "Seconds from a signal's arrival to Kotak's answer to its place-order request.",
            buckets=LATENCY_BUCKETS, registry=target)
        self.broker_errors = Counter(
            "bridge_broker_errors", "Failed Kotak requests, by Kotak's error code or the "
            "transport failure (timeout, connection).", ["code"], registry=target)
        for source in SOURCES:
            for outcome in OUTCOMES:
                self.signals.labels(source, outcome)  # present at 0, so rates start at once

    def signal(self, source: str, outcome: str) -> None:
        try:
            self.signals.labels(source, outcome).inc()
        except Exception:
            log.debug("could not count a signal", exc_info=True)

    def broker_answered(self, seconds: float) -> None:
        try:
            self.broker_latency.observe(seconds)
        except Exception:
            log.debug("could not record a broker latency", exc_info=True)

    def broker_error(self, what: str, error: KotakError) -> None:
        try:
            self.broker_errors.labels(error_code(error)).inc()
        except Exception:
            log.debug("could not count a broker error", exc_info=True)

    def exposition(self, *more: Collector) -> bytes:
        """The counts in Prometheus' text format, followed by ``more`` (the gauges read at
        scrape time)."""
        # prometheus_client leaves MultiProcessCollector's constructor unannotated.
        counted: Collector = (MultiProcessCollector(None)  # type: ignore[no-untyped-call]
                              if self.multiprocess else self.registry)
        return generate_latest(_Joined(counted, *more))


def error_code(error: KotakError) -> str:
    """A short, bounded label for a failed Kotak request."""
    cause = error.__cause__
    if isinstance(error, RateLimited):
        return "rate_limited"
    if isinstance(error, ProtocolError):
        return "protocol"
    if isinstance(cause, requests.exceptions.Timeout):
        return "timeout"
    if isinstance(cause, requests.exceptions.RequestException):
        return "connection"
    code = str(getattr(error, "code", "") or "")
    if not code and isinstance(error, OutcomeUnknown):
        code = error.cause
    if not code and isinstance(error, BrokerUnavailable):
        found = _HTTP_STATUS.search(error.message)
        code = f"http_{found.group(1)}" if found else "unavailable"
    if not code:
        code = "login_failed" if isinstance(error, LoginFailed) else _snake(type(error).__name__)
    return _CODE_CHARS.sub("_", code.strip().lower()).strip("_")[:40] or "unknown"


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class _Joined(Collector):
    """Several collectors exposed as one, built per scrape."""

    def __init__(self, *parts: Collector) -> None:
        self._parts = parts

    def collect(self) -> Iterator[Metric]:
        for part in self._parts:
            yield from part.collect()
