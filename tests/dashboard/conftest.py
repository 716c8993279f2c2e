"""A live-mode bridge on the loopback sandbox with the dashboard's password set, and a
browser-like client that signs in and carries the CSRF token as the pages do."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.signals.conftest import Bridge, make_bridge

__all__ = ["board", "make_bridge"]

PASSWORD = "dashboard-password-4242"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: TestResponse) -> str:
    found = _CSRF.search(page.get_data(as_text=True))
    assert found, "the page carries no CSRF token"
    return found.group(1)


def sign_in(client: FlaskClient) -> str:
    """Sign in as a person would; return the session's CSRF token."""
    token = csrf_of(client.get("/login"))
    answer = client.post("/login", data={"csrf": token, "password": PASSWORD})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return csrf_of(client.get("/"))


@pytest.fixture
def board(make_bridge: Any) -> Bridge:
    made: Bridge = make_bridge(ADMIN_PASSWORD=PASSWORD)
    return made
