"""The square-off's stop on new intraday entries from the command line and the scheduler
(paper mode, as a person runs it): a manual square-off keeps entries unless asked, the
scheduled one stops them, and ``entries allow`` lifts the stop."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.app import create_app
from bridge.cli import cli
from bridge.config import environment, load_settings
from bridge.domain import Exchange
from bridge.kotak.sandbox.paper import PAPER_ACCOUNT
from bridge.schedule.jobs import JobActions
from bridge.startup import prepare
from bridge.wiring import Services, build_services

SECRET = "entries-test-secret-0123456789"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"WEBHOOK_SECRET": SECRET, "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}", "MARKET_HOURS": "ignore",
            "ENV_FILE": str(tmp_path / "none.env")}


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def services_of(env: dict[str, str]) -> Services:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        return build_services(load_settings(environment()))


def seed(env: dict[str, str], quantity: int) -> None:
    services = services_of(env)
    try:
        assert services.paper is not None
        services.paper.seed_position(PAPER_ACCOUNT.ucc, "NSE", "SBIN-EQ", "MIS", quantity,
                                     Decimal(800))
    finally:
        services.close()


def test_cli_squareoff_keeps_entries_unless_asked_and_entries_allow_lifts(
        env: dict[str, str]) -> None:
    assert run(env, "instruments", "refresh")[0] == 0
    seed(env, 6)
    code, output = run(env, "squareoff", "--exchange", "NSE")
    assert code == 0 and "FLAT (verified" in output, output
    assert "new intraday (MIS) entries on NSE stay allowed" in output
    assert run(env, "entries") == (0, "new intraday (MIS) entries are accepted on every "
                                      "exchange\n")

    seed(env, 2)
    code, output = run(env, "squareoff", "--exchange", "NSE", "--block-entries")
    assert code == 0 and "FLAT (verified" in output, output
    assert "make entries-allow" in output
    code, output = run(env, "entries")
    assert code == 0
    assert "NSE: stopped by the square-off run with `bridge squareoff --block-entries` at" \
        in output
    assert "until the next trading day" in output and "`bridge entries allow`" in output

    code, output = run(env, "entries", "allow")
    assert code == 0 and "allowed again on NSE" in output
    assert "accepted on every exchange" in output
    assert "allowed again by cli on NSE" in run(env, "notices")[1]


def test_the_scheduled_squareoff_still_stops_entries_until_lifted(
        env: dict[str, str]) -> None:
    services = services_of(env)
    try:
        prepare(services)
        services.start_background()
        client = create_app(services=services).test_client()

        def alert(alert_id: str) -> tuple[int, dict[str, object]]:
            answer = client.post("/webhook/tradingview", data=json.dumps({
                "secret": SECRET, "symbol": "NSE:SBIN", "action": "buy", "quantity": 1,
                "alert_id": alert_id}), content_type="application/json")
            return answer.status_code, answer.get_json()

        outcome = JobActions(services).square_off([Exchange.NSE, Exchange.NFO])
        assert "FLAT (verified" in outcome.summary, outcome.summary
        code, answer = alert("s1")
        assert code == 409 and "make entries-allow" in json.dumps(answer)
    finally:
        services.close()

    code, output = run(env, "entries")
    assert "NFO, NSE: stopped by the scheduled square-off at" in output
    code, output = run(env, "entries", "allow", "--exchange", "NSE")
    assert "allowed again on NSE" in output and "NFO: stopped" in output
