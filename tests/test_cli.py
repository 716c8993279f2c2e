"""The operator commands, run as a person would (paper mode, own data folder)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
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


def _wrong_totp(seed: str) -> str:
    """A 6-digit code the sandbox refuses: none of the codes around now."""
    import pyotp

    totp = pyotp.TOTP(seed)
    near = {totp.at(time.time() + step) for step in (-60, -30, 0, 30, 60)}
    return next(code for code in (f"{n:06d}" for n in range(1000)) if code not in near)


def test_commands_print_only_their_answer_and_logs_with_v(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["login"], env=env, catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [line for line in result.stdout.splitlines()
                                          if line.startswith("logged in")]
    assert " INFO " not in result.output

    verbose = CliRunner().invoke(cli, ["-v", "instruments", "refresh"], env=env,
                                 catch_exceptions=False)
    assert verbose.exit_code == 0 and "instruments for" in verbose.stdout
    assert " INFO " in verbose.stderr and " INFO " not in verbose.stdout


def test_squareoff_dry_run_on_a_fresh_paper_database_needs_no_login(
        env: dict[str, str]) -> None:
    code, output = run(env, "squareoff", "--dry-run")

    assert code == 0, output
    assert "log in" not in output


def test_check_names_an_unreachable_postgresql_database_url_without_its_password(
        env: dict[str, str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://bridge:pa55word-xyz@127.0.0.1:{port}/bridge"

    code, output = run({**env, "DATABASE_URL": url}, "check")

    assert code == 2
    assert output.startswith("the bridge cannot start: DATABASE_URL (PostgreSQL 127.0.0.1:")
    assert "does not answer" in output and "pa55word-xyz" not in output
    assert len(output.strip().splitlines()) == 1


def test_check_warns_of_misspelt_settings_with_the_nearest_name(env: dict[str, str]) -> None:
    code, output = run({**env, "TELEGRAM_TOKEN": "123:abc", "TELEGRAM_CHATID": "42"}, "check")

    assert code == 0
    assert "warning: TELEGRAM_TOKEN is not a setting of the bridge and is ignored; did you " \
           "mean TELEGRAM_BOT_TOKEN?" in output
    assert "did you mean TELEGRAM_CHAT_ID?" in output


def test_a_failed_paper_login_makes_the_doctor_say_a_person_must_log_in(
        env: dict[str, str]) -> None:
    assert run(env, "login")[0] == 0
    code, output = run(env, "login", "--totp", _wrong_totp(PAPER_ACCOUNT.totp_secret))
    assert code == 1 and "login failed" in output

    code, output = run(env, "doctor", "--timeout", "1", "--ip-echo-url",
                       "http://127.0.0.1:9/")

    assert code == 1
    said = " ".join(output.split())
    assert "problem kotak session: account default: valid until" in said
    assert "last login failed" in said and "`make login`" in said


ROOT = Path(__file__).resolve().parents[1]


def test_the_bridge_command_is_installed_beside_python(env: dict[str, str]) -> None:
    command = Path(sys.executable).parent / "bridge"
    if not command.exists():
        pytest.skip("the project is not installed in this environment (make test does it)")

    done = subprocess.run([str(command), "check"], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("settings are valid (mode paper")


def test_python_m_bridge_without_the_packages_hands_over_to_the_venv(
        env: dict[str, str]) -> None:
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("no .venv in the project")
    # -S: no site-packages, as with a system Python that lacks click and pyotp
    done = subprocess.run([sys.executable, "-S", "-m", "bridge", "check"], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("settings are valid")


def test_python_m_bridge_without_packages_or_venv_says_what_to_run(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "bridge", tmp_path / "bridge",
                    ignore=shutil.ignore_patterns("__pycache__"))

    done = subprocess.run([sys.executable, "-S", "-m", "bridge", "doctor"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)

    assert done.returncode == 2 and done.stdout == ""
    assert "Traceback" not in done.stderr
    assert "`make doctor`" in done.stderr and "`.venv/bin/bridge doctor`" in done.stderr
