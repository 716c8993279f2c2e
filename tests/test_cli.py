"""The operator commands, run as a person would (paper mode, own data folder)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from bridge.config import environment, load_settings
from bridge.kotak.sandbox.paper import PAPER_ACCOUNT
from bridge.wiring import build_services

SECRET = "cli-test-secret-0123456789"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"WEBHOOK_SECRET": SECRET, "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}",
            "ENV_FILE": str(tmp_path / "none.env")}


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_check_reports_every_problem_and_exits_2(env: dict[str, str]) -> None:
    code, output = run({**env, "BRIDGE_MODE": "papr", "KOTAK_MPIN": "12"}, "check")

    assert code == 2
    assert "BRIDGE_MODE" in output and "KOTAK_MPIN" in output and "12" not in output


def test_banner_shows_the_addresses_and_secret(env: dict[str, str]) -> None:
    code, output = run(env, "banner")

    assert code == 0
    assert "/webhook/tradingview" in output and f"/webhook/chartink/{SECRET}" in output
    assert "PAPER" in output


def test_login_refresh_lookup_killswitch_and_journal(env: dict[str, str]) -> None:
    assert run(env, "login")[0] == 0
    code, output = run(env, "instruments", "refresh")
    assert code == 0 and "instruments for" in output
    code, output = run(env, "instruments", "lookup", "NSE:M_M")
    assert code == 0 and "NSE:M&M-EQ" in output
    code, output = run(env, "instruments", "lookup", "NOPE", "--exchange", "NSE")
    assert code == 1 and "unknown symbol" in output

    assert "ON" in run(env, "killswitch", "on")[1]
    assert "ON" in run(env, "killswitch")[1]
    assert "off" in run(env, "killswitch", "off")[1]

    code, output = run(env, "signals")
    assert code == 0 and output == ""
    code, output = run(env, "signal", "missing")
    assert code == 1 and "no signal" in output


def test_squareoff_dry_run_prints_the_closes_then_the_real_one_flattens(
        env: dict[str, str]) -> None:
    assert run(env, "login")[0] == 0
    assert run(env, "instruments", "refresh")[0] == 0
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        services = build_services(load_settings(environment()))
    try:
        assert services.paper is not None
        services.paper.seed_position(PAPER_ACCOUNT.ucc, "NSE", "SBIN-EQ", "MIS", 12,
                                     Decimal(800))
    finally:
        services.close()

    code, output = run(env, "squareoff", "--exchange", "NSE", "--dry-run")
    assert code == 0, output
    assert "would send SELL 12 NSE:SBIN-EQ MARKET MIS" in output

    code, output = run(env, "squareoff", "--exchange", "NSE")
    assert code == 0, output
    assert "FLAT" in output and "close SELL 12 NSE:SBIN-EQ MARKET MIS: complete" in output

    code, output = run(env, "jobs")
    assert code == 0 and "squareoff:BFO+BSE+NFO+NSE" in output and "next:" in output
    code, output = run(env, "notices")
    assert code == 0 and "squareoff" in output and "FLAT" in output
