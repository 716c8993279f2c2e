"""`make run` gives the REST API a key: in a new .env, and in an older .env without one."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from bridge.config import environment, load_settings

ROOT = Path(__file__).resolve().parents[2]


def make(target: str, env_file: Path) -> str:
    done = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT),
                           f"ENV_FILE={env_file}", f"PYTHON={sys.executable}", target],
                          check=True, capture_output=True, text=True)
    return done.stdout


def values(env_file: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in env_file.read_text().splitlines()
                if line and not line.startswith("#"))


def test_a_new_env_file_gets_its_own_api_key(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"

    make(str(env_file), env_file)
    make("api-key", env_file)

    written = values(env_file)
    assert len(written["API_KEY"]) >= 32
    assert written["API_KEY"] not in (written["WEBHOOK_SECRET"], written["ADMIN_PASSWORD"])
    assert list(written).count("API_KEY") == 1
    assert load_settings(environment(env_file)).api_key.reveal() == written["API_KEY"]


def test_an_older_env_file_without_the_line_gets_one_and_keeps_the_rest(
        tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("WEBHOOK_SECRET=older-webhook-secret-0123\nBRIDGE_MODE=paper")
    env_file.chmod(0o600)

    said = make("api-key", env_file)
    again = make("api-key", env_file)

    text = env_file.read_text()
    assert text.startswith("WEBHOOK_SECRET=older-webhook-secret-0123\nBRIDGE_MODE=paper\n")
    key = values(env_file)["API_KEY"]
    assert len(key) >= 32 and text.count("API_KEY=") == 1
    assert f"added a new API_KEY to {env_file}" in said and again == ""
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert load_settings(environment(env_file)).api_key.reveal() == key


def test_an_api_key_left_empty_on_purpose_stays_empty(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("WEBHOOK_SECRET=older-webhook-secret-0123\nAPI_KEY=\n")

    make("api-key", env_file)

    assert env_file.read_text() == "WEBHOOK_SECRET=older-webhook-secret-0123\nAPI_KEY=\n"
