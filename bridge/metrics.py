"""Prometheus metrics at ``/metrics``.

Counters and the latency histogram live in a :class:`Metrics` made with each set of services
(so two apps in one test run never share counts). Under gunicorn, where any worker may answer
a scrape, ``deploy/gunicorn.conf.py`` sets ``PROMETHEUS_MULTIPROC_DIR``: every process then
writes its counts to files there and the scrape adds them up. Gauges are read from the shared
journal at scrape time, so they are right whichever process answers.

``/metrics`` carries no secrets and no alert text (labels are sources, statuses, accounts and
Kotak error codes), but it is unauthenticated: keep it on loopback or behind the proxy's
allow-list (``deploy/`` restricts it).
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import requests
from flask import Blueprint, Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from bridge.config import SchedulerPlace
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

    from bridge.wiring import Services

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SOURCES = ("tradingview", "amibroker", "chartink")
OUTCOMES = ("placed", "noop", "duplicate", "queued", "rejected", "failed", "unknown")
#: 1 ms (a paper fill) to 5 s (past TradingView's 3 s patience)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_CODE_CHARS = re.compile(r"[^a-z0-9_.-]+")
_HTTP_STATUS = re.compile(r"HTTP (\d{3})")

bp = Blueprint("metrics", __name__)


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

    def exposition(self, services: Services) -> bytes:
        # prometheus_client leaves MultiProcessCollector's constructor unannotated.
        counted: Collector = (MultiProcessCollector(None)  # type: ignore[no-untyped-call]
                              if self.multiprocess else self.registry)
        return generate_latest(_Joined(counted, StateCollector(services)))


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


class StateCollector(Collector):
    """Gauges read from the shared journal and session store at scrape time.

    Each is read on its own: one that cannot be read (the database busy, say) is left out of
    this scrape rather than failing it.
    """

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        for read in (self._queue, self._sessions, self._squareoff, self._scheduler,
                     self._kill_switch):
            try:
                yield from read()
            except Exception as exc:
                log.warning("metrics: could not read %s: %s", read.__name__.strip("_"), exc)

    def _queue(self) -> Iterator[Metric]:
        depth, oldest = self.services.journal.queue_depth()
        yield GaugeMetricFamily("bridge_queue_depth", "Signals queued, waiting to be sent.",
                                value=depth)
        age = (self.services.clock.now() - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily("bridge_queue_oldest_age_seconds",
                                "Seconds the oldest queued signal has waited (0: none).",
                                value=max(age, 0.0))

    def _sessions(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("bridge_session_seconds_to_expiry",
                                   "Seconds until the account's Kotak session expires "
                                   "(0: no valid session).", labels=["account"])
        now = self.services.clock.now()
        for account, client in self.services.brokers.items():
            status = client.sessions.status()
            left = ((status.expires_at - now).total_seconds()
                    if status.valid and status.expires_at is not None else 0.0)
            family.add_metric([account], max(left, 0.0))
        yield family

    def _squareoff(self) -> Iterator[Metric]:
        # Every square-off, scheduled or by hand, leaves one notice: info when the book was
        # proved flat, error when it was not.
        found = self.services.jobs.notices(limit=1, kind="squareoff")
        if not found:
            return
        notice = found[0]
        yield GaugeMetricFamily("bridge_last_squareoff_result",
                                "1 when the last square-off left the book flat, else 0.",
                                value=1.0 if notice.level == "info" else 0.0)
        yield GaugeMetricFamily("bridge_last_squareoff_timestamp_seconds",
                                "When the last square-off finished (Unix time).",
                                value=notice.at.timestamp())

    def _scheduler(self) -> Iterator[Metric]:
        if self.services.settings.schedule.place is SchedulerPlace.OFF:
            return
        from bridge.schedule.runner import ROLE  # the runner imports the wiring, which imports us

        leader = self.services.jobs.leader(ROLE)
        age = ((self.services.clock.now() - leader.heartbeat_at).total_seconds()
               if leader is not None else math.inf)
        yield GaugeMetricFamily("bridge_scheduler_heartbeat_age_seconds",
                                "Seconds since the scheduler leader's heartbeat (+Inf: no "
                                "leader).", value=max(age, 0.0))

    def _kill_switch(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("bridge_kill_switch", "1 while the kill switch refuses entries.",
                                value=1.0 if self.services.journal.kill_switch() else 0.0)


def count_signal(source: str, outcome: str) -> None:
    """Count one answered signal of this app (in a request)."""
    services: Services | None = current_app.extensions.get("bridge")
    if services is not None:
        services.metrics.signal(source, outcome)


def count_refusal(outcome: str) -> None:
    """Count a webhook request refused before it became a signal (wrong secret, too large,
    unreadable, flooding): the source is the webhook it came to."""
    blueprint, _, endpoint = (request.endpoint or "").partition(".")
    source = endpoint.split("_", 1)[0]
    if blueprint == "webhooks" and source in SOURCES:
        count_signal(source, outcome)


@bp.get("/metrics")
def metrics() -> Response:
    services: Services = current_app.extensions["bridge"]
    return Response(services.metrics.exposition(services), content_type=CONTENT_TYPE_LATEST)
