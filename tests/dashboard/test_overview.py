"""The overview read at a glance: one status line (Kotak session, the last alert and what
became of it, the next square-off, the kill switch) above the latest signals, the actions
near the top, plain words, and a colour per status that says waiting, done or refused."""

from __future__ import annotations

import re
from datetime import datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from bridge.clock import IST
from bridge.dashboard.board import TONES
from bridge.schedule.runner import ROLE
from tests.dashboard.conftest import PASSWORD, sign_in
from tests.signals.conftest import Bridge

CSS = Path(__file__).resolve().parents[2] / "bridge/dashboard/static/dashboard.css"
#: words a trader should never have to decode
JARGON = ("leader alive", "no leader", "kotak default", "headroom", "per s free")


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


def _part(html: str, element_id: str) -> str:
    """The text of the element with this id (up to its closing tag of the same name)."""
    found = re.search(rf'<(\w+)[^>]*id="{element_id}"[^>]*>(.*?)</\1>', html, re.S)
    assert found, f"no #{element_id} on the page"
    return _text(found.group(2)).strip()


def test_the_status_line_comes_first_and_says_the_four_things(board: Bridge) -> None:
    board.signal(symbol="NSE:SBIN", action="buy", quantity=5, alert_id="first",
                 strategy="breakout")
    board.signal(symbol="NSE:NOSUCH", action="buy", quantity=1, alert_id="latest")
    client = board.app.test_client()
    sign_in(client)

    page = client.get("/").get_data(as_text=True)

    assert _part(page, "glance-session").startswith("LIVE Kotak: logged in until 00:00")
    last = _part(page, "glance-last")
    assert re.fullmatch(r"Last alert \d\d:\d\d TradingView: BUY 1 NSE:NOSUCH MARKET MIS "
                        r"\u2192 rejected: unknown symbol 'NSE:NOSUCH'.*", last), last
    # No scheduler runs in this test: the line says so rather than promise a square-off.
    # The next one is the equity and F&O square-off at 15:15, or, between it and 23:25 on a
    # weekday, the commodity one.
    now = datetime.now(IST)
    due = "23:25" if now.weekday() < 5 and time(15, 15) <= now.time() < time(23, 25) \
        else "15:15"
    assert re.fullmatch(rf"Square-off: next .*{due}.*, but it WILL NOT RUN: no scheduler is "
                        r"running", _part(page, "glance-squareoff"))
    assert _part(page, "kill-switch").startswith("Kill switch: off")
    # The status line, then the actions, then the signals (newest first), then the details.
    order = [page.index(mark) for mark in ('id="live-glance"', 'id="kill-switch-toggle"',
                                           'id="squareoff-open"', 'data-alert-id="latest"',
                                           'data-alert-id="first"', 'id="live-strip"',
                                           'id="live-orders"')]
    assert order == sorted(order)


def test_the_last_alert_says_placed_and_filled(board: Bridge) -> None:
    board.signal(symbol="NSE:SBIN", action="buy", quantity=5, alert_id="filled")
    client = board.app.test_client()
    token = sign_in(client)

    live = client.get("/live", headers={"X-CSRF-Token": token}).get_json()

    last = _part(live["glance"], "glance-last")
    assert last.endswith("BUY 5 NSE:SBIN MARKET MIS \u2192 placed, filled"), last


def test_a_missing_kotak_session_says_log_in_with_the_link(make_bridge: Any) -> None:
    board: Bridge = make_bridge(ADMIN_PASSWORD=PASSWORD, KOTAK_TOTP_SECRET="")
    client = board.app.test_client()
    sign_in(client)

    page = client.get("/").get_data(as_text=True)

    assert _part(page, "glance-session") == "LIVE Kotak: needs login: log in now"
    assert 'id="glance-login"' in page and "/kotak/callback?account=default" in page
    assert "No alert yet" in _part(page, "glance-last")


def test_a_running_scheduler_shows_the_next_square_off_plainly(board: Bridge) -> None:
    services = board.services
    services.jobs.beat(ROLE, "scheduler:test", services.clock.now())  # as a leader does
    client = board.app.test_client()
    sign_in(client)

    page = client.get("/").get_data(as_text=True)

    assert re.fullmatch(r"Square-off: next (\d\d:\d\d today|\d\d:\d\d tomorrow|\w{3} \d\d "
                        r"\w{3} \d\d:\d\d)", _part(page, "glance-squareoff"))
    scheduler = _text(page[page.index('id="scheduler"'):page.index("</ul>",
                                                                   page.index('id="scheduler"'))])
    assert re.search(r"running \(last seen \d+ s ago\)", scheduler), scheduler
    assert "check orders against Kotak's book at" in scheduler  # jobs in words


def test_the_overview_speaks_plain_words(board: Bridge) -> None:
    board.signal(symbol="NSE:SBIN", action="buy", quantity=1, alert_id="plain")
    client = board.app.test_client()
    sign_in(client)

    text = _text(client.get("/").get_data(as_text=True)).lower()

    for word in JARGON:
        assert word not in text, word
    assert "login to your kotak account" in text
    assert "scheduler (daily login, square-off)" in text
    assert "daily kotak login at" in text
    # Labels are shown as written: upper-casing turned "Kotak default" into "KOTAK DEFAULT".
    assert "text-transform: uppercase" not in CSS.read_text()


def test_each_order_state_gets_its_own_colour(board: Bridge) -> None:
    board.sandbox.set_price("NSE", "SBIN-EQ", Decimal("800"))
    board.signal(symbol="NSE:SBIN", action="buy", quantity=5, alert_id="waits",
                 pricetype="LIMIT", price="700")
    board.signal(symbol="NSE:SBIN", action="buy", quantity=5, alert_id="fills")
    board.signal(symbol="NSE:NOSUCH", action="buy", quantity=5, alert_id="refused")
    client = board.app.test_client()
    sign_in(client)

    page = client.get("/").get_data(as_text=True)

    def row(alert_id: str) -> str:
        found = re.search(rf'<tr [^>]*data-alert-id="{alert_id}"[^>]*>.*?</tr>', page, re.S)
        assert found, alert_id
        return found.group(0)

    assert 'data-tone="wait"' in row("waits") and 'class="state state-open"' in row("waits")
    assert 'data-tone="ok"' in row("fills") and 'class="state state-complete"' in row("fills")
    assert 'data-tone="bad"' in row("refused")
    assert 'class="state state-rejected"' in row("refused")
    orders = page[page.index('id="live-orders"'):]
    assert 'class="state state-open"' in orders and 'class="state state-complete"' in orders


def test_the_style_sheet_colours_every_status_as_the_board_does() -> None:
    css = CSS.read_text()
    colours = dict(re.findall(r"--(ok|bad|warn|partial|wait|off): (#[0-9a-f]{6})", css))
    # waiting, done, refused, ended, unknown and partial never look alike
    assert len(set(colours.values())) == 6, colours
    rules = re.findall(r"([^{}]+)\{\s*--tone: var\(--(\w+)\);\s*\}", css)
    colour_of = {name: colour for selectors, colour in rules
                 for name in re.findall(r"\.state-(\w+)", selectors)}
    colour_of["partial"] = "partial"  # its own rule, kept from before the tones
    expected = {"wait": "wait", "ok": "ok", "bad": "bad", "off": "off", "warn": "warn",
                "partial": "partial"}
    for status, tone in TONES.items():
        assert colour_of.get(status) == expected[tone], status
    for status in ("open", "trigger_pending", "queued", "received"):
        assert TONES[status] == "wait", status
    assert (TONES["complete"], TONES["rejected"], TONES["failed"]) == ("ok", "bad", "bad")
    assert (TONES["cancelled"], TONES["unknown"]) == ("off", "warn")
