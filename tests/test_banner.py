"""The first-start banner: addresses, secret, dashboard, and a TradingView message and curl
line that can be pasted as they are."""

from __future__ import annotations

import json
import shlex

from bridge.config import Settings, load_settings
from bridge.startup import banner

SECRET = "banner-secret-0123456789abcdef"


def settings(**extra: str) -> Settings:
    return load_settings({"WEBHOOK_SECRET": SECRET, **extra})


def after(lines: list[str], heading: str) -> str:
    return lines[next(i for i, line in enumerate(lines) if line.startswith(heading)) + 1]


def test_local_banner_shows_addresses_secret_and_a_locked_dashboard() -> None:
    text = banner(settings(), show_secret=True)

    assert f"  webhook secret:  {SECRET}" in text.splitlines()
    assert "TradingView:     http://127.0.0.1:5000/webhook/tradingview" in text
    assert f"ChartInk:        http://127.0.0.1:5000/webhook/chartink/{SECRET}" in text
    assert "dashboard:       http://127.0.0.1:5000/  (locked until ADMIN_PASSWORD is set" in text
    assert "Kotak login:     http://127.0.0.1:5000/kotak/callback" in text
    assert "PAPER" in text and "deploy/README.md" in text and "make doctor" in text


def test_the_alert_message_and_curl_line_are_ready_to_paste() -> None:
    lines = banner(settings(), show_secret=True).splitlines()

    message = json.loads(after(lines, "TradingView alert message"))
    assert message == {"secret": SECRET, "symbol": "NSE:SBIN",
                       "action": "{{strategy.order.action}}", "quantity": 1,
                       "alert_id": "{{ticker}}-{{strategy.order.id}}-{{timenow}}"}
    curl = shlex.split(after(lines, "Try it from this machine"))
    assert curl[:4] == ["curl", "-X", "POST", "http://127.0.0.1:5000/webhook/tradingview"]
    sent = json.loads(curl[curl.index("-d") + 1])
    assert sent["secret"] == SECRET and sent["action"] == "buy" and sent["symbol"] == "NSE:SBIN"


def test_public_url_is_used_and_the_dashboard_password_is_shown_to_its_owner() -> None:
    text = banner(settings(PUBLIC_URL="https://bridge.example.com", ADMIN_PASSWORD="hunter2-xyz",
                           BRIDGE_MODE="live", BROKER_API_KEY="k", KOTAK_UCC="AB123",
                           KOTAK_MOBILE="9876543210"), show_secret=True)

    assert "TradingView:     https://bridge.example.com/webhook/tradingview" in text
    assert "dashboard:       https://bridge.example.com/  (password: hunter2-xyz)" in text
    assert "put nginx" not in text
    assert "curl -X POST http://127.0.0.1:5000/webhook/tradingview" in text  # tried locally
    assert "LIVE: this buys 1 SBIN at Kotak for real" in text


def test_without_show_secret_the_secret_appears_nowhere() -> None:
    text = banner(settings(ADMIN_PASSWORD="hunter2-xyz"), show_secret=False)

    assert SECRET not in text and "hunter2-xyz" not in text
    assert "(password: ADMIN_PASSWORD in .env)" in text
    assert "<WEBHOOK_SECRET>" in text and "webhook secret:  (WEBHOOK_SECRET in .env)" in text


API_KEY = "banner-api-key-0123456789abcdef"


def test_the_rest_api_address_and_a_ping_ready_to_run() -> None:
    lines = banner(settings(API_KEY=API_KEY), show_secret=True).splitlines()

    assert "  REST API:        http://127.0.0.1:5000/api/v1/  (OpenAlgo-compatible; key: " \
           "API_KEY in .env)" in lines
    curl = shlex.split(after(lines, "REST API (OpenAlgo's clients"))
    assert curl[:4] == ["curl", "-X", "POST", "http://127.0.0.1:5000/api/v1/ping"]
    assert json.loads(curl[curl.index("-d") + 1]) == {"apikey": API_KEY}
    # The webhook's curl comes first: it is the one `make run`'s smoke test runs.
    assert next(line for line in lines if line.strip().startswith("curl ")).strip() \
        .startswith("curl -X POST http://127.0.0.1:5000/webhook/tradingview")


def test_without_show_secret_the_api_key_appears_nowhere() -> None:
    text = banner(settings(API_KEY=API_KEY), show_secret=False)

    assert API_KEY not in text and '{"apikey":"<API_KEY>"}' in text


def test_an_empty_api_key_says_the_api_is_off_and_how_to_turn_it_on() -> None:
    text = banner(settings(), show_secret=True)

    assert "REST API:        off (set API_KEY in .env to turn it on)" in text
    assert "/api/v1/ping" not in text
