"""Prometheus metrics at ``/metrics``.

Counters and the latency histogram live in a :class:`~bridge.counters.Metrics` made with each
set of services (so two apps in one test run never share counts). Under gunicorn, where any
worker may answer a scrape, ``deploy/gunicorn.conf.py`` sets ``PROMETHEUS_MULTIPROC_DIR``:
every process then writes its counts to files there and the scrape adds them up. Gauges are
read from the shared journal at scrape time, so they are right whichever process answers.

``/metrics`` carries no secrets and no alert text (labels are sources, statuses, accounts and
Kotak error codes), but it is unauthenticated: keep it on loopback or behind the proxy's
allow-list (``deploy/`` restricts it).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bridge.config import SchedulerPlace
from bridge.counters import SOURCES
from bridge.schedule.runner import ROLE

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from bridge.wiring import Services

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)


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
        depth, oldest = self.services.journal.queue.queue_depth()
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
        leader = self.services.jobs.leader(ROLE)
        age = ((self.services.clock.now() - leader.heartbeat_at).total_seconds()
               if leader is not None else math.inf)
        yield GaugeMetricFamily("bridge_scheduler_heartbeat_age_seconds",
                                "Seconds since the scheduler leader's heartbeat (+Inf: no "
                                "leader).", value=max(age, 0.0))

    def _kill_switch(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("bridge_kill_switch", "1 while the kill switch refuses entries.",
                                value=1.0 if self.services.journal.switches.kill_switch() else 0.0)


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
    return Response(services.metrics.exposition(StateCollector(services)),
                    content_type=CONTENT_TYPE_LATEST)
