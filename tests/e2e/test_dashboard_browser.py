"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright.

On a desk (1366x900) a trader signs in, sees a signal posted by TradingView appear without
reloading (with its Kotak order id and status), opens its timeline, turns the kill switch on
and sees the next entry refused, previews a square-off, and signs out. On a phone (360x740)
the status line and the latest signal fill the first screen, and a square-off takes one
confirmation. No page is wider than either screen.

Screenshots of the main views go to ``$DASHBOARD_SCREENSHOTS`` (the README's pictures in
``docs/`` are made this way) or to the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from decimal import Decimal
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
DESK = {"width": 1366, "height": 900}
PHONE = {"width": 360, "height": 740}
API_KEY = "api-key-for-the-browser-test-5d1e"
#: the signed-in pages reached by a link (the dry run's page is reached through its form)
PAGES = ["/", "/signals/{signal}", "/api-access", "/kotak/callback", "/helper?mode=option",
         "/helper?mode=legs", "/helper", "/helper?symbol=NSE:SBIN&kind=strategy"]
#: the longest alert id a source may send, without a space to break at
LONG_ALERT_ID = "tv-" + "NIFTY26DEC26000CE-breakout-v2-" * 2 + "x" * 17

_TOO_WIDE = """() => {
  const limit = window.innerWidth;
  return [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > limit + 0.5)
    .slice(-5)
    .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' ' +
         Math.round(e.getBoundingClientRect().right) + 'px: ' +
         (e.textContent || '').trim().slice(0, 40));
}"""


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the browser sees the same pages whatever the journal is kept in."""
    return f"sqlite:///{tmp_path / 'journal.db'}"


@pytest.fixture
def served(make_bridge: Any) -> Iterator[tuple[str, Bridge]]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    bridge: Bridge = make_bridge(ADMIN_PASSWORD=PASSWORD, API_KEY=API_KEY)
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module: each test opens its own context (cookies, viewport)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def fits(page: Any) -> None:
    """Nothing on the page is wider than the window: no sideways scrolling."""
    wide, window = page.evaluate(
        "() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert wide <= window, (f"{page.url} is {wide} px wide in a {window} px window; too wide: "
                            f"{page.evaluate(_TOO_WIDE)}")


def sign_in(page: Any, base: str) -> None:
    """Sign in as a person would; the login page must fit the window too."""
    from playwright.sync_api import expect

    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/login?next=/")
    fits(page)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#live-glance")).to_be_visible()


def every_page_fits(page: Any, base: str, signal_id: int) -> None:
    from playwright.sync_api import expect

    for path in PAGES:
        page.goto(base + path.format(signal=signal_id))
        expect(page.locator("main")).to_be_visible()
        fits(page)


def dry_run(page: Any, base: str) -> None:
    """Preview a square-off from the overview; the preview page must fit too."""
    from playwright.sync_api import expect

    page.goto(f"{base}/")
    page.click("#squareoff-open")
    page.click("#dry-run")
    expect(page.locator("#squareoff-preview")).to_contain_text("would send SELL 4 NSE:INFY-EQ")
    fits(page)


def post(base: str, **fields: Any) -> requests.Response:
    return requests.post(f"{base}/webhook/tradingview", timeout=10,
                         json={"secret": SECRET, **fields})


def test_a_trader_follows_a_signal_and_uses_the_buttons(
        served: tuple[str, Bridge], browser: Any, shots: Path) -> None:
    from playwright.sync_api import expect

    base, bridge = served
    bridge.seed("INFY-EQ", 4, price="1540")  # an intraday position to preview closing
    context = browser.new_context(viewport=DESK)
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, base)
    expect(page.locator("#glance-session")).to_contain_text("LIVE")
    expect(page.locator("#kill-switch")).to_contain_text("off")

    # TradingView posts while the page is open; no reload follows.
    answer = post(base, symbol="NSE:SBIN", action="buy", quantity=5, strategy="breakout",
                  alert_id="tv-browser-1").json()
    order_id = answer["orders"][0]["order_id"]
    row = page.locator('tr[data-alert-id="tv-browser-1"]')
    expect(row).to_contain_text(order_id)
    expect(row).to_contain_text("complete")
    expect(page.locator("#glance-last")).to_contain_text("BUY 5 NSE:SBIN")
    fits(page)
    page.screenshot(path=str(shots / "dashboard-overview.png"), full_page=True)

    row.locator("a").first.click()
    expect(page.locator("#timeline")).to_contain_text("complete")
    expect(page.locator("#signal-entry")).to_contain_text(order_id)
    page.screenshot(path=str(shots / "dashboard-signal.png"), full_page=True)
    page.go_back()

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#kill-switch-toggle")
    expect(page.locator("#kill-switch")).to_contain_text("ON: entries refused")
    assert post(base, symbol="NSE:SBIN", action="buy", quantity=1,
                alert_id="tv-browser-2").status_code == 409
    page.reload()
    expect(page.locator('tr[data-alert-id="tv-browser-2"]')).to_contain_text("kill_switch")

    dry_run(page, base)
    page.screenshot(path=str(shots / "dashboard-squareoff-dry-run.png"), full_page=True)
    assert bridge.net("INFY-EQ") == 4  # a dry run sends nothing

    every_page_fits(page, base, bridge.journaled("tv-browser-1").id)  # ends on the helper
    expect(page.locator("#template-text")).to_contain_text("strategy.order.action")
    page.screenshot(path=str(shots / "dashboard-template.png"), full_page=True)

    page.goto(f"{base}/")
    page.click("#logout")
    expect(page).to_have_url(f"{base}/login")
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/login?next=/")
    context.close()


def test_on_a_phone_the_first_screen_answers_and_a_square_off_takes_one_confirmation(
        served: tuple[str, Bridge], browser: Any, shots: Path) -> None:
    from playwright.sync_api import expect

    base, bridge = served
    bridge.seed("INFY-EQ", 4, price="1540")
    bridge.sandbox.set_price("NSE", "SBIN-EQ", Decimal("800"))
    for n in range(6):  # a day's worth of rows below the first screen
        post(base, symbol="NSE:SBIN", action="buy" if n % 2 else "sell", quantity=1,
             strategy="scalper", alert_id=f"tv-phone-{n}")
    # Long ids and reasons must wrap, and an order still open must not look filled.
    post(base, symbol="NSE:THISSYMBOLISNOTLISTEDANYWHERE", action="buy", quantity=1,
         alert_id=LONG_ALERT_ID)
    post(base, symbol="NSE:SBIN", action="buy", quantity=5, pricetype="LIMIT", price="700",
         strategy="dip-buyer", alert_id="tv-phone-open")
    post(base, symbol="NSE:SBIN", action="buy", quantity=5, strategy="breakout",
         alert_id="tv-phone-last")

    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = phone.new_page()
    page.set_default_timeout(15_000)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    sign_in(page, base)

    # The first screen: the status line and the latest signal, with no scrolling.
    last = page.locator('tr[data-alert-id="tv-phone-last"]')
    expect(last).to_contain_text("complete")
    assert page.evaluate("() => window.scrollY") == 0
    for shown in (page.locator("#live-glance"), last, page.locator("#kill-switch-toggle"),
                  page.locator("#squareoff-open")):
        box = shown.bounding_box()
        assert box is not None and box["y"] >= 0, shown
        assert box["y"] + box["height"] <= PHONE["height"], (shown, box)
    for item in ("#glance-session", "#glance-last", "#glance-squareoff", "#kill-switch"):
        expect(page.locator(item)).to_be_visible()
    expect(page.locator("#glance-last")).to_contain_text("BUY 5 NSE:SBIN")
    open_state = page.locator('tr[data-alert-id="tv-phone-open"] .state-open')
    filled = last.locator(".state-complete")
    assert open_state.evaluate("e => getComputedStyle(e).color") != \
        filled.evaluate("e => getComputedStyle(e).color")
    fits(page)
    page.screenshot(path=str(shots / "dashboard-phone.png"))

    dry_run(page, base)
    every_page_fits(page, base, bridge.journaled(LONG_ALERT_ID).id)

    # Square off from the overview: one button opens the form, one press does it.
    page.goto(f"{base}/")
    page.click("#squareoff-open")
    expect(page.locator("#squareoff")).to_be_visible()
    fits(page)
    page.screenshot(path=str(shots / "dashboard-phone-squareoff.png"))
    page.click("#squareoff")
    expect(page.locator(".flash")).to_contain_text("Square-off started")
    expect(page.locator("#glance-squareoff")).to_contain_text("done", timeout=20_000)
    assert bridge.net("INFY-EQ") == 0
    assert dialogs == []  # the form was the one confirmation
    fits(page)
    phone.close()
