"""The Kotak login page in paper mode asks for nothing, and a failed login (which stops the
unattended one) makes /readyz say a person must log in, even while today's session holds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from flask.testing import FlaskClient

from bridge.app import create_app
from bridge.config import load_settings
from bridge.kotak.errors import KotakError
from bridge.kotak.sandbox.paper import PAPER_ACCOUNT
from bridge.wiring import Services, build_services
from tests.dashboard.conftest import PASSWORD, sign_in


@pytest.fixture
def paper(tmp_path: Path) -> Iterator[tuple[Services, FlaskClient]]:
    settings = load_settings({"WEBHOOK_SECRET": "paper-login-secret-0123456789",
                              "ADMIN_PASSWORD": PASSWORD, "DATA_DIR": str(tmp_path),
                              "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}",
                              "SCHEDULER": "off"})
    services = build_services(settings)
    try:
        yield services, create_app(services=services).test_client()
    finally:
        services.close()


def test_the_paper_login_page_asks_for_no_totp_and_logs_in_with_one_button(
        paper: tuple[Services, FlaskClient]) -> None:
    services, client = paper
    token = sign_in(client)

    page = " ".join(client.get("/kotak/callback").get_data(as_text=True).split())
    assert 'name="totp"' not in page and 'name="mpin"' not in page
    assert "no TOTP or MPIN is needed" in page and "Log in to the paper sandbox" in page

    answer = client.post("/kotak/callback", data={"csrf": token})
    assert answer.status_code == 200
    assert "Logged in. The Kotak session is valid until" in answer.get_data(as_text=True)
    assert services.broker().sessions.status().valid


def test_a_failed_login_makes_readyz_say_a_person_must_log_in(
        paper: tuple[Services, FlaskClient]) -> None:
    services, client = paper
    sessions = services.broker().sessions
    sessions.login()
    totp = pyotp.TOTP(PAPER_ACCOUNT.totp_secret)
    near = {totp.at(time.time() + step) for step in (-60, -30, 0, 30, 60)}
    wrong = next(code for code in (f"{n:06d}" for n in range(1000)) if code not in near)
    with pytest.raises(KotakError):
        sessions.login(attended=True, totp=wrong)

    answer = client.get("/readyz")

    assert answer.status_code == 503
    (reason,) = [r for r in answer.get_json()["reasons"] if "account default" in r]
    assert "last login failed" in reason and "does not log in by itself" in reason
    assert "/kotak/callback" in reason and "make login" in reason
