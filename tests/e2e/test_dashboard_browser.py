"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright.

A trader signs in, sees a signal posted by TradingView appear without reloading (with its
Kotak order id and status), opens its timeline, turns the kill switch on and sees the next
entry refused, previews a square-off, and signs out. Screenshots of the main views go to
``$DASHBOARD_SCREENSHOTS`` (the README's pictures in ``docs/`` are made this way) or to the
test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from tests.dashboard.conftest import PASSWORD
from tests.signals.conftest import SECRET, Bridge, make_bridge

__all__ = ["make_bridge"]

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without these, Chromium reaches for Google's services at start; this machine has no
# route out, and the refused connections only slow it down.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the browser sees the same pages whatever the journal is kept in."""
    return f"sqlite:///{tmp_path / 'journal.db'}"


@pytest.fixture
def served(make_bridge: Any) -> Iterator[tuple[str, Bridge]]:
    bridge: Bridge = make_bridge(ADMIN_PASSWORD=PASSWORD)
    server = make_server("127.0.0.1", 0, bridge.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", bridge
    finally:
        server.shutdown()
        thread.join(10)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_trader_follows_a_signal_and_uses_the_buttons(
        served: tuple[str, Bridge], shots: Path, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import expect, sync_playwright

    base, bridge = served
    bridge.seed("INFY-EQ", 4, price="1540")  # an intraday position to preview closing
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)

        page.goto(f"{base}/")
        expect(page).to_have_url(f"{base}/login?next=/")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("#mode")).to_contain_text("LIVE")
        expect(page.locator("#kill-switch")).to_contain_text("off")

        # TradingView posts while the page is open; no reload follows.
        answer = requests.post(f"{base}/webhook/tradingview", timeout=10, json={
            "secret": SECRET, "symbol": "NSE:SBIN", "action": "buy", "quantity": 5,
            "strategy": "breakout", "alert_id": "tv-browser-1"}).json()
        order_id = answer["orders"][0]["order_id"]
        row = page.locator('tr[data-alert-id="tv-browser-1"]')
        expect(row).to_contain_text(order_id)
        expect(row).to_contain_text("complete")
        page.screenshot(path=str(shots / "dashboard-overview.png"), full_page=True)

        row.locator("a").first.click()
        expect(page.locator("#timeline")).to_contain_text("complete")
        expect(page.locator("#signal-entry")).to_contain_text(order_id)
        page.screenshot(path=str(shots / "dashboard-signal.png"), full_page=True)
        page.go_back()

        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#kill-switch-toggle")
        expect(page.locator("#kill-switch")).to_contain_text("ON: entries refused")
        refused = requests.post(f"{base}/webhook/tradingview", timeout=10, json={
            "secret": SECRET, "symbol": "NSE:SBIN", "action": "buy", "quantity": 1,
            "alert_id": "tv-browser-2"})
        assert refused.status_code == 409
        refused_row = page.locator('tr[data-alert-id="tv-browser-2"]')
        expect(refused_row).to_contain_text("kill_switch")

        page.check("#dry-run")
        page.click("#squareoff")
        expect(page.locator("#squareoff-preview")).to_contain_text(
            "would send SELL 4 NSE:INFY-EQ")
        page.screenshot(path=str(shots / "dashboard-squareoff-dry-run.png"), full_page=True)
        assert bridge.net("INFY-EQ") == 4  # a dry run sends nothing

        page.goto(f"{base}/helper?symbol=NSE:SBIN&kind=strategy")
        expect(page.locator("#template-text")).to_contain_text("strategy.order.action")
        page.screenshot(path=str(shots / "dashboard-template.png"), full_page=True)

        phone = browser.new_context(viewport={"width": 390, "height": 844},
                                    storage_state=context.storage_state())
        small = phone.new_page()
        small.goto(f"{base}/")
        expect(small.locator("#signals")).to_contain_text("tv-browser-1")
        small.screenshot(path=str(shots / "dashboard-phone.png"), full_page=True)
        phone.close()

        page.goto(f"{base}/")
        page.click("#logout")
        expect(page).to_have_url(f"{base}/login")
        page.goto(f"{base}/")
        expect(page).to_have_url(f"{base}/login?next=/")
        context.close()
        browser.close()
