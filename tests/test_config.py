"""Settings: strict parsing, every problem at once, secrets never shown."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from bridge.config import ConfigError, LogFormat, Mode, environment, load_settings
from bridge.domain import Exchange
from bridge.kotak.auth import AuthFlow

SECRET = "s3cret-webhook-value-0123"


def test_defaults_are_paper_mode_with_the_documented_values() -> None:
    settings = load_settings({"WEBHOOK_SECRET": SECRET})

    assert settings.mode is Mode.PAPER and settings.bind == "127.0.0.1:5000"
    assert settings.database_url == "sqlite:///instance/bridge.db"
    assert settings.kotak.auth is AuthFlow.TOTP and settings.kotak.order_rate == 10
    assert settings.kotak.login_url == "https://mis.kotaksecurities.com"
    assert settings.squareoff_times[Exchange.MCX] == time(23, 25)
    assert settings.session_renew_at == time(8, 30)
    assert settings.dedup_window_s == 10 and settings.trusted_proxies == 0
    assert settings.log_format is LogFormat.TEXT
    assert settings.warnings == ()


def test_every_problem_is_reported_together_without_secret_values() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({
            "BRIDGE_MODE": "papr", "BRIDGE_BIND": "localhost", "KOTAK_MPIN": "12ab56",
            "KOTAK_TOTP_SECRET": "not base32 at all!!", "KOTAK_ORDER_RATE": "fast",
            "DEDUP_WINDOW_S": "-1", "TRADINGVIEW_IPS_ONLY": "maybe",
            "SQUAREOFF_TIMES": "NSE=25:00,XYZ=10:00", "DATABASE_URL": "mysql://u:pw@h/db",
            "KOTAK_LOGIN_URL": "ftp://x", "TELEGRAM_BOT_TOKEN": "123:abc",
            "KOTAK_MOBILE": "12345",
        })

    text = str(refused.value)
    for name in ("WEBHOOK_SECRET", "BRIDGE_MODE", "BRIDGE_BIND", "KOTAK_MPIN",
                 "KOTAK_TOTP_SECRET", "KOTAK_ORDER_RATE", "DEDUP_WINDOW_S",
                 "TRADINGVIEW_IPS_ONLY", "NSE=25:00", "XYZ", "DATABASE_URL",
                 "KOTAK_LOGIN_URL", "TELEGRAM_CHAT_ID", "KOTAK_MOBILE"):
        assert name in text
    for secret in ("12ab56", "not base32 at all!!", "u:pw", "123:abc", "12345"):
        assert secret not in text
    assert len(refused.value.problems) == 14


def test_live_mode_names_the_credentials_it_lacks() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"WEBHOOK_SECRET": SECRET, "BRIDGE_MODE": "live"})
    assert {"BROKER_API_KEY", "KOTAK_UCC", "KOTAK_MOBILE"} <= {
        p.split(" ")[0] for p in refused.value.problems}

    with pytest.raises(ConfigError) as legacy:
        load_settings({"WEBHOOK_SECRET": SECRET, "BRIDGE_MODE": "live", "KOTAK_AUTH": "oauth2",
                       "BROKER_API_KEY": "k"})
    assert "KOTAK_PASSWORD is required in live mode with KOTAK_AUTH=oauth2" in str(legacy.value)


def test_live_totp_settings_parse() -> None:
    settings = load_settings({
        "WEBHOOK_SECRET": SECRET, "BRIDGE_MODE": "LIVE", "BROKER_API_KEY": "token",
        "KOTAK_UCC": "ab123", "KOTAK_MOBILE": "+91 98765 43210", "KOTAK_MPIN": "123456",
        "KOTAK_TOTP_SECRET": "JBSWY3DPEHPK3PXP", "KOTAK_LOGIN_URL": "http://127.0.0.1:8899/",
    })

    assert settings.mode is Mode.LIVE
    assert (settings.kotak.ucc, settings.kotak.mobile) == ("AB123", "9876543210")
    assert settings.kotak.login_url == "http://127.0.0.1:8899"
    assert repr(settings.kotak.mpin) == "Secret('***')"
    assert "123456" not in repr(settings)
    assert set(settings.secrets()) == {SECRET, "token", "123456", "JBSWY3DPEHPK3PXP"}


def test_squareoff_times_override_per_exchange() -> None:
    settings = load_settings({"WEBHOOK_SECRET": SECRET, "SQUAREOFF_TIMES": "NSE=15:10, mcx=23:00"})

    assert settings.squareoff_times[Exchange.NSE] == time(15, 10)
    assert settings.squareoff_times[Exchange.MCX] == time(23, 0)
    assert settings.squareoff_times[Exchange.CDS] == time(16, 45)


def test_short_secret_and_misspelt_names_are_warnings() -> None:
    settings = load_settings({"WEBHOOK_SECRET": "short", "KOTAK_TOTP_SECRT": "x",
                              "PATH": "/usr/bin"})

    assert any("shorter than 16" in w for w in settings.warnings)
    assert any("KOTAK_TOTP_SECRT" in w for w in settings.warnings)
    assert not any("PATH" in w for w in settings.warnings)


def test_environment_wins_over_the_env_file(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("WEBHOOK_SECRET=from-file-secret-value\nBRIDGE_BIND=127.0.0.1:6000\n")
    monkeypatch.setenv("BRIDGE_BIND", "127.0.0.1:7000")

    settings = load_settings(environment(env_file))

    assert settings.webhook_secret.reveal() == "from-file-secret-value"
    assert settings.bind_port == 7000


def test_the_sample_env_file_is_complete_and_valid() -> None:
    sample = Path(__file__).resolve().parents[1] / ".env.sample"
    names = {line.split("=", 1)[0] for line in sample.read_text().splitlines()
             if line and not line.startswith("#")}
    from bridge.config import KNOWN_KEYS

    assert names == KNOWN_KEYS
    values = dict(line.split("=", 1) for line in sample.read_text().splitlines()
                  if line and not line.startswith("#"))
    load_settings({**values, "WEBHOOK_SECRET": SECRET})


def test_api_key_is_off_when_empty_and_a_secret_when_set() -> None:
    off = load_settings({"WEBHOOK_SECRET": SECRET})
    key = "api-key-value-0123456789"
    on = load_settings({"WEBHOOK_SECRET": SECRET, "API_KEY": f"  {key} "})

    assert not off.api_key and off.api_key.reveal() == ""
    assert on.api_key.reveal() == key
    assert key not in repr(on) and key not in str(on.api_key)
    assert key in on.secrets()  # so the log redactor hides it


@pytest.mark.parametrize(("key", "problem"), [
    ("short-key", "at least 16 characters"),
    ("has spaces inside 0123456", "without spaces or quotes"),
    ('quoted"key-0123456789', "without spaces or quotes"),
    (SECRET, "must differ from WEBHOOK_SECRET"),
])
def test_a_weak_api_key_stops_the_start_without_showing_it(key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"WEBHOOK_SECRET": SECRET, "API_KEY": key})

    (text,) = refused.value.problems
    assert text.startswith("API_KEY") and problem in text
    assert key not in text
