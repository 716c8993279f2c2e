"""The services of the app answering the current request.

Views, guards and health checks read them through :func:`current_services` rather than
from :mod:`bridge.app`, which imports every blueprint to register it: importing the
factory from a view would make the web layer depend on itself in a circle.
"""

from __future__ import annotations

from flask import current_app

from bridge.wiring import Services


def current_services() -> Services:
    """The services of the app handling this request (views share them through here)."""
    services: Services = current_app.extensions["bridge"]
    return services
