"""Gunicorn settings for the bridge (``make run`` and the systemd unit).

The master process reads the settings once and makes sure the journal database answers
(refusing to start, in one line naming the setting, on any problem), then, before forking
workers, logs in to Kotak and loads the scrip master once for all of them
(:func:`bridge.startup.prepare`). Workers build their own database engines and HTTP sessions
after the fork: nothing network- or file-backed is shared across it.

gunicorn's own lines go through the bridge's log handler: one format, India time, secrets
masked. The banner is not printed here: `make run` prints it (with the secret) once the server
answers, and a service's log must not hold the secret; `bridge banner` shows it any time.
"""

import logging
import os
import sys
from pathlib import Path

from gunicorn.glogging import Logger

from bridge.config import ConfigError, environment, load_settings
from bridge.log import Redactor, configure_logging

try:
    _settings = load_settings(environment())
except ConfigError as _error:
    sys.stderr.write(f"{_error}\n")
    sys.exit(2)
_redactor = Redactor(_settings.secrets())
configure_logging(_settings.log_level, _settings.log_format.value, _redactor)


class BridgeLogger(Logger):
    """gunicorn's logger, writing through the bridge's handler (IST, redacted, LOG_FORMAT)
    instead of its own UTC lines."""

    def setup(self, cfg: object) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
            log.propagate = True


logger_class = BridgeLogger

bind = _settings.bind
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gthread, but a thread gets a connection only once its whole request has arrived: slow or
# idle clients cannot hold the threads an alert needs (bridge/frontdoor.py says how).
worker_class = "bridge.frontdoor.FrontDoorWorker"
# Request threads wait (within the time budget) for the broker's answer: keep enough.
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Longer than any broker call (connect + read timeouts), so a slow Kotak yields a recorded
# "outcome unknown" rather than a killed worker.
timeout = 30
graceful_timeout = 20
keepalive = 5
# Requests are logged by the app through its redacting logger: gunicorn's own access log
# would write ChartInk's secret-bearing URL path in clear.
accesslog = None
errorlog = "-"
capture_output = True
# gunicorn's runtime control socket lives at one fixed path per user; two bridges on one
# machine (or a test run beside `make run`) would fight over it, and nothing here uses it.
control_socket_disable = True
# Any worker may answer a scrape of /metrics: each process writes its counts to files here and
# the scrape adds them up. prometheus_client reads this once, when a worker first imports it.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR",
                      str((_settings.data_dir / "prometheus").resolve()))


def _refuse_a_dead_database() -> None:
    # Imported only now: bridge.doctor pulls in prometheus_client, which must see
    # PROMETHEUS_MULTIPROC_DIR set above.
    from bridge.doctor import database_problem

    trouble = database_problem(_settings, timeout_s=10.0)
    if trouble is not None:
        sys.stderr.write(f"the bridge cannot start: {trouble}\n")
        sys.exit(2)


_refuse_a_dead_database()


def worker_exit(server: object, worker: object) -> None:
    """Let a stopping worker finish the orders it is sending and release its claims."""
    app = getattr(worker, "wsgi", None)
    services = getattr(app, "extensions", {}).get("bridge") if app is not None else None
    if services is not None:
        services.close()


def child_exit(server: object, worker: object) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(getattr(worker, "pid", 0))


def _empty_metrics_dir() -> None:
    """The previous run's counts would be added to this run's: start from none."""
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()


def on_starting(server: object) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from bridge.journal.schema import JournalTooNew
    from bridge.startup import prepare
    from bridge.wiring import build_services

    _empty_metrics_dir()
    try:
        services = build_services(_settings, redactor=_redactor)
    except JournalTooNew as exc:
        logging.getLogger("bridge.startup").error("the bridge cannot start: %s", exc)
        sys.exit(2)
    except SQLAlchemyError as exc:
        # Answered the check above, yet cannot hold the journal (rights on the schema ...).
        why = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        logging.getLogger("bridge.startup").error(
            "the bridge cannot start: DATABASE_URL: the journal cannot be set up there (%s)",
            why[0] if why else type(exc).__name__)
        sys.exit(2)
    try:
        prepare(services)
    finally:
        services.close()
