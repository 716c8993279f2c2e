"""Who may see the dashboard and press its buttons.

One password (``ADMIN_PASSWORD``) opens a session held in a signed cookie (Flask's, HttpOnly,
SameSite=Lax, Secure when the public address is https) that lasts :data:`SESSION_LIFETIME`.
The signing key is derived from the key that encrypts stored Kotak sessions and from the
password itself, so every worker and host agrees on it and changing the password signs
everyone out. Every POST, the login form's included, must carry the session's CSRF token
(form field ``csrf`` or header ``X-CSRF-Token``); a page from another site therefore cannot
press a button with the trader's cookie. Wrong passwords count against the caller's address
in the journal, like wrong webhook secrets (``AUTH_FAILURE_LIMIT`` in 10 minutes), and
block it for 15 minutes.

With no ``ADMIN_PASSWORD`` the dashboard stays locked (a page says how to set one): a broker
account must never be one unauthenticated URL away.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Flask,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from bridge.clock import ist_text
from bridge.secretbox import SecretBox
from bridge.web_context import current_services
from bridge.webhooks.auth import FailureBook, client_address, secret_matches
from bridge.wiring import Services

SESSION_LIFETIME = timedelta(hours=12)
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
FAILURE_WINDOW = timedelta(minutes=10)
BLOCK_FOR = timedelta(minutes=15)
PUBLIC_ENDPOINTS = frozenset({"dashboard.login", "dashboard.static"})


def install(app: Flask, services: Services) -> None:
    """Configure the signed session cookie and the login-failure book."""
    settings = services.settings
    password = settings.admin_password.reveal()
    box = SecretBox.for_settings(settings.secret_key.reveal(), settings.data_dir)
    app.secret_key = box.derive("dashboard-session:" +
                                hashlib.sha256(password.encode()).hexdigest())
    app.config.update(
        SESSION_COOKIE_NAME="bridge_session", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=urlsplit(settings.public_url).scheme == "https",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME)
    app.extensions["bridge.dashboard.failures"] = FailureBook(
        services.journal, settings.intake.auth_failure_limit, FAILURE_WINDOW, BLOCK_FOR)
    app.jinja_env.globals["csrf_token"] = csrf_token



def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def _csrf_ok() -> bool:
    expected = session.get(CSRF_FIELD)
    given = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
    return isinstance(expected, str) and bool(given) and secret_matches(given, expected)


def _address() -> str:
    return client_address(request.remote_addr or "", request.headers.get("X-Forwarded-For"),
                          current_services().settings.trusted_proxies)


def signed_in() -> bool:
    return session.get("admin") is True


def check() -> ResponseReturnValue | None:
    """Run before every dashboard request: locked, signed out, or a forged form stop here."""
    if not current_services().settings.admin_password:
        return render_template("locked.html"), 503
    if request.method == "POST" and not _csrf_ok():
        return render_template("refused.html", reason=(
            "This form has expired or did not come from this dashboard. Reload the page "
            "and try again.")), 403
    if request.endpoint in PUBLIC_ENDPOINTS or signed_in():
        return None
    if request.method == "GET" and not request.headers.get(CSRF_HEADER):
        return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))
    return render_template("refused.html", reason="Sign in first."), 401


def login() -> ResponseReturnValue:
    failures: FailureBook = current_app.extensions["bridge.dashboard.failures"]
    address = "dashboard:" + _address()
    target = _safe_next(request.args.get("next", ""))
    if request.method == "GET":
        return render_template("login.html", next=target, error="")
    blocked = failures.blocked_until(address)
    if blocked is not None:
        return render_template("login.html", next=target, error=(
            f"Too many wrong passwords from your address: try again after "
            f"{ist_text(blocked)}.")), 429
    password = current_services().settings.admin_password.reveal()
    if not secret_matches(request.form.get("password", ""), password):
        failures.failed(address)
        return render_template("login.html", next=target, error="Wrong password."), 401
    failures.succeeded(address)
    # A fresh session (and CSRF token) at sign-in: a cookie planted before cannot be reused.
    session.clear()
    session.permanent = True
    session["admin"] = True
    csrf_token()
    return redirect(target)


def logout() -> ResponseReturnValue:
    session.clear()
    return redirect(url_for("dashboard.login"))


def _safe_next(target: str) -> str:
    """Only a path on this site: a login link must not send the trader elsewhere."""
    parts = urlsplit(target)
    if not target.startswith("/") or target.startswith("//") or parts.scheme or parts.netloc:
        return "/"
    return target
