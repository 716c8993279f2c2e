"""The Flask application factory."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from bridge.config import SchedulerPlace, Settings, environment, load_settings
from bridge.errors import BridgeError, PayloadTooLarge
from bridge.kotak.instruments import InstrumentsUnavailable
from bridge.log import Redactor, configure_logging
from bridge.web_context import current_services
from bridge.webhooks.auth import FailureBook, InboundLimiter
from bridge.webhooks.chartink import ChartinkConfig
from bridge.wiring import Services, build_services

log = logging.getLogger(__name__)
access_log = logging.getLogger("bridge.access")


def create_app(settings: Settings | None = None, services: Services | None = None, *,
               background: bool | None = None) -> Flask:
    """Create the web application.

    With neither argument (gunicorn's path) settings come from the environment and ``.env``,
    logging is configured first, and this process's dispatcher starts (``background``), with
    the scheduler when ``SCHEDULER=embedded``;
    tests pass ``settings`` or ready-made ``services`` and start what they need.

    :raises ConfigError: the settings are unusable.
    """
    production = services is None and settings is None
    if services is None:
        if settings is None:
            settings = load_settings(environment())
            redactor = Redactor(settings.secrets())
            configure_logging(settings.log_level, settings.log_format.value, redactor)
            services = build_services(settings, redactor=redactor)
        else:
            services = build_services(settings)
    app = Flask(__name__)
    # Werkzeug refuses bigger bodies with 413 before any of our code reads them.
    app.config["MAX_CONTENT_LENGTH"] = services.settings.intake.max_body_bytes
    app.extensions["bridge"] = services

    from bridge import api, health, metrics
    from bridge.dashboard import views as dashboard
    from bridge.webhooks import routes

    app.extensions["bridge.webhooks"] = routes.Gate(
        settings=services.settings, desk=services.desk,
        limiter=InboundLimiter(services.settings.intake.inbound_limit_per_minute),
        failures=FailureBook(services.journal, services.settings.intake.auth_failure_limit,
                             routes.FAILURE_WINDOW, routes.BLOCK_FOR),
        chartink=ChartinkConfig(services.settings.intake.chartink_config),
        doors=services.doors)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(routes.bp)
    app.register_blueprint(api.bp)
    dashboard.register(app, services)
    app.register_error_handler(BridgeError, routes.render_refusal)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(HTTPException, _http_error)
    if background if background is not None else production:
        services.start_background()
        _load_scrip_master(services)
        if services.settings.schedule.place is SchedulerPlace.EMBEDDED:
            from bridge.schedule.runner import start_scheduler

            start_scheduler(services)
    app.before_request(_start_timer)
    app.after_request(_secure_headers)
    app.after_request(_log_request)
    return app


def _load_scrip_master(services: Services) -> None:
    """Parse the day's scrip master (which the gunicorn master downloaded before forking)
    while the worker boots, so its first signals do not wait for it: after a start, a burst
    of alerts found every worker parsing thousands of rows at once."""
    try:
        services.instruments.current()
    except InstrumentsUnavailable:
        log.warning("no scrip master yet: the first signal loads it")


def _start_timer() -> None:
    g.started = time.monotonic()
    g.arrived = current_services().clock.now()


#: on every answer: pages load only the bridge's own scripts and styles, are never framed
#: (clickjacking the square-off button), and are never sniffed into another content type
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _secure_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _log_request(response: Response) -> Response:
    # Through the redacting logger: a path may carry the webhook secret (ChartInk).
    elapsed = (time.monotonic() - g.get("started", time.monotonic())) * 1000
    access_log.info("%s %s -> %d in %.0f ms", request.method, request.path,
                    response.status_code, elapsed)
    return response


def _too_large(error: RequestEntityTooLarge) -> ResponseReturnValue:
    from bridge.webhooks.routes import render_refusal

    return render_refusal(PayloadTooLarge("the body is too large", {}))


def _http_error(error: HTTPException) -> ResponseReturnValue:
    """Routing and protocol errors as JSON, in the bridge's error shape."""
    code = error.code or 500
    return jsonify(error={"code": (error.name or "error").lower().replace(" ", "_"),
                          "message": error.description or error.name, "details": {}}), code
