"""The Flask application factory."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from bridge.config import Settings, environment, load_settings
from bridge.log import Redactor, configure_logging
from bridge.wiring import Services, build_services

access_log = logging.getLogger("bridge.access")


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    """Create the web application.

    With neither argument (gunicorn's path) settings come from the environment and ``.env``
    and logging is configured first; tests pass ``settings`` or ready-made ``services``.

    :raises ConfigError: the settings are unusable.
    """
    if services is None:
        if settings is None:
            settings = load_settings(environment())
            redactor = Redactor(settings.secrets())
            configure_logging(settings.log_level, settings.log_format.value, redactor)
            services = build_services(settings, redactor=redactor)
        else:
            services = build_services(settings)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    app.extensions["bridge"] = services

    from bridge import health

    app.register_blueprint(health.bp)
    app.register_error_handler(HTTPException, _http_error)
    app.before_request(_start_timer)
    app.after_request(_log_request)
    return app


def _start_timer() -> None:
    g.started = time.monotonic()


def _log_request(response: Response) -> Response:
    # Through the redacting logger: a path may carry the webhook secret (ChartInk).
    elapsed = (time.monotonic() - g.get("started", time.monotonic())) * 1000
    access_log.info("%s %s -> %d in %.0f ms", request.method, request.path,
                    response.status_code, elapsed)
    return response


def _http_error(error: HTTPException) -> ResponseReturnValue:
    """Routing and protocol errors as JSON, in the bridge's error shape."""
    code = error.code or 500
    return jsonify(error={"code": (error.name or "error").lower().replace(" ", "_"),
                          "message": error.description or error.name, "details": {}}), code
