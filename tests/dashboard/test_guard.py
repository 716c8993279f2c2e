"""Who may use the dashboard: a password, a signed session, and a CSRF token on every form.

Each refused request is checked for what a trader would care about: nothing changed (the kill
switch, the broker's book, the session) and the answer says why.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.dashboard.conftest import PASSWORD, csrf_of, sign_in
from tests.signals.conftest import Bridge

#: every form the dashboard has, with a body that would act if it were accepted
FORMS: list[tuple[str, dict[str, str]]] = [
    ("/actions/killswitch", {"state": "on"}),
    ("/actions/squareoff", {"confirm": "yes"}),
    ("/actions/squareoff", {"dry_run": "yes"}),
    ("/actions/relogin", {}),
    ("/kotak/callback", {"totp": "123456", "mpin": "123456"}),
    ("/logout", {}),
]


def _untouched(board: Bridge, places_before: int) -> None:
    assert board.services.journal.switches.kill_switch() is False
    assert len(board.sandbox.requests.snapshot("place")) == places_before
    assert board.sandbox.requests.snapshot("login") == []


def test_pages_need_a_sign_in(board: Bridge) -> None:
    client = board.app.test_client()
    for path in ("/", "/signals/1", "/helper", "/kotak/callback"):
        answer = client.get(path)
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith("/login?next=")
    assert client.get("/live", headers={"X-CSRF-Token": "x"}).status_code == 401
    # The webhooks and health checks stay outside the dashboard's lock.
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(("path", "form"), FORMS)
def test_every_form_refuses_a_missing_or_wrong_csrf_token(board: Bridge, path: str,
                                                          form: dict[str, str]) -> None:
    client = board.app.test_client()
    sign_in(client)
    board.sandbox.requests.clear()
    for token in (None, "forged-token"):
        body = dict(form) if token is None else {**form, "csrf": token}
        answer = client.post(path, data=body)
        assert answer.status_code == 403
        assert "did not come from this dashboard" in answer.get_data(as_text=True)
    _untouched(board, 0)
    assert client.get("/").status_code == 200  # still signed in: logout was refused too


@pytest.mark.parametrize(("path", "form"), FORMS[:-1])
def test_every_form_refuses_a_request_without_a_session(board: Bridge, path: str,
                                                        form: dict[str, str]) -> None:
    client = board.app.test_client()
    token = csrf_of(client.get("/login"))  # a valid token, but nobody signed in
    board.sandbox.requests.clear()
    answer = client.post(path, data={**form, "csrf": token})
    assert answer.status_code == 401
    _untouched(board, 0)


def test_login_needs_the_password_and_the_token(board: Bridge) -> None:
    client = board.app.test_client()
    token = csrf_of(client.get("/login"))
    assert client.post("/login", data={"password": PASSWORD}).status_code == 403
    wrong = client.post("/login", data={"csrf": token, "password": "guess"})
    assert wrong.status_code == 401 and "Wrong password" in wrong.get_data(as_text=True)
    assert client.get("/").status_code == 302
    right = client.post("/login?next=/helper", data={"csrf": token, "password": PASSWORD})
    assert right.status_code == 302 and right.headers["Location"] == "/helper"
    cookie = client.get_cookie("bridge_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    # The token changes at sign-in, so one planted before cannot be reused.
    assert csrf_of(client.get("/")) != token


def test_a_login_link_cannot_send_the_trader_elsewhere(board: Bridge) -> None:
    client = board.app.test_client()
    token = csrf_of(client.get("/login"))
    answer = client.post("/login?next=//evil.example/x",
                         data={"csrf": token, "password": PASSWORD})
    assert answer.headers["Location"] == "/"


def test_logout_ends_the_session(board: Bridge) -> None:
    client = board.app.test_client()
    token = sign_in(client)
    assert client.post("/logout", data={"csrf": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_passwords_block_the_address(make_bridge: Any) -> None:
    board: Bridge = make_bridge(ADMIN_PASSWORD=PASSWORD, AUTH_FAILURE_LIMIT="3")
    client = board.app.test_client()
    token = csrf_of(client.get("/login"))
    for _ in range(3):
        client.post("/login", data={"csrf": token, "password": "guess"})
    blocked = client.post("/login", data={"csrf": token, "password": PASSWORD})
    assert blocked.status_code == 429
    assert "Too many wrong passwords" in blocked.get_data(as_text=True)


def test_without_an_admin_password_the_dashboard_stays_locked(make_bridge: Any) -> None:
    board: Bridge = make_bridge()
    client = board.app.test_client()
    answer = client.get("/")
    assert answer.status_code == 503
    assert "ADMIN_PASSWORD" in answer.get_data(as_text=True)
    assert client.post("/actions/killswitch", data={"state": "on"}).status_code == 503
    assert board.services.journal.switches.kill_switch() is False


def test_changing_the_password_signs_everyone_out(make_bridge: Any) -> None:
    first: Bridge = make_bridge(ADMIN_PASSWORD=PASSWORD)
    client = first.app.test_client()
    sign_in(client)
    cookie = client.get_cookie("bridge_session")
    assert cookie is not None
    second: Bridge = make_bridge(ADMIN_PASSWORD="another-password-777")
    other = second.app.test_client()
    other.set_cookie("bridge_session", cookie.value)
    assert other.get("/").status_code == 302
