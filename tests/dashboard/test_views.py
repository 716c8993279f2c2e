"""What a trader sees and does on the dashboard: signals with their orders and fate, the
timeline, positions with P&L, the kill switch, square-off (dry run and real), the template
helper and the Kotak login page."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from typing import Any

from tests.dashboard.conftest import PASSWORD, sign_in
from tests.signals.conftest import SECRET, Bridge


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_signal_shows_with_its_order_id_status_and_timeline(board: Bridge) -> None:
    client = board.app.test_client()
    token = sign_in(client)
    code, answer = board.signal(symbol="NSE:SBIN", action="buy", quantity=5,
                                alert_id="tv-1", strategy="breakout")
    assert code == 200
    order_id = answer["orders"][0]["order_id"]

    live = client.get("/live", headers={"X-CSRF-Token": token}).get_json()
    signals = _text(live["signals"])
    assert "tv-1" in signals and order_id in signals and "complete" in signals
    assert "BUY 5 NSE:SBIN MARKET MIS" in signals

    row = board.journaled("tv-1")
    entry = _text(client.get(f"/signals/{row.id}").get_data(as_text=True))
    assert order_id in entry and "breakout" in entry
    for step in ("received", "placed", "complete"):
        assert step in entry
    assert SECRET not in entry  # the body is shown as journaled, secret masked


def test_filters_by_status_and_strategy(board: Bridge) -> None:
    client = board.app.test_client()
    sign_in(client)
    board.signal(symbol="NSE:SBIN", action="BUY", quantity=1, alert_id="a-ok", strategy="s1")
    board.signal(symbol="NSE:NOSUCH", action="BUY", quantity=1, alert_id="a-bad",
                 strategy="s2")
    rejected = _text(client.get("/?status=rejected").get_data(as_text=True))
    assert "a-bad" in rejected and "a-ok" not in rejected
    assert "unknown symbol" in rejected
    by_strategy = _text(client.get("/?strategy=s1").get_data(as_text=True))
    assert "a-ok" in by_strategy and "a-bad" not in by_strategy


def test_positions_show_pnl_at_the_last_price(board: Bridge) -> None:
    client = board.app.test_client()
    token = sign_in(client)
    _, answer = board.signal(symbol="NSE:SBIN", action="BUY", quantity=10, alert_id="p1",
                             strategy="momo")
    filled_at = Decimal(answer["orders"][0]["average_price"])
    board.sandbox.set_price("NSE", "SBIN-EQ", filled_at + Decimal("3.50"))
    # The board reuses broker answers for a few seconds; a new page view after that sees the
    # new price.
    board.app.extensions["bridge.board"].cache.clear()
    positions = _text(client.get("/live", headers={"X-CSRF-Token": token})
                      .get_json()["positions"])
    assert "NSE:SBIN-EQ MIS" in positions
    assert "+35.00" in positions  # 10 x (103.50 - 100), per account and per strategy
    assert "momo" in positions


def test_kill_switch_from_the_dashboard_refuses_the_next_entry(board: Bridge) -> None:
    client = board.app.test_client()
    token = sign_in(client)
    answer = client.post("/actions/killswitch", data={"csrf": token, "state": "on"})
    assert answer.status_code == 302
    code, body = board.signal(symbol="NSE:SBIN", action="BUY", quantity=1, alert_id="k1")
    assert (code, body["error"]["code"]) == (409, "kill_switch")
    page = _text(client.get("/").get_data(as_text=True))
    assert "ON: entries refused" in page
    assert [n.kind for n in board.services.jobs.notices()][:1] == ["kill_switch"]
    client.post("/actions/killswitch", data={"csrf": token, "state": "off"})
    assert board.signal(symbol="NSE:SBIN", action="BUY", quantity=1, alert_id="k2")[0] == 200


def test_squareoff_needs_confirmation_dry_run_sends_nothing(board: Bridge) -> None:
    client = board.app.test_client()
    token = sign_in(client)
    board.seed("SBIN-EQ", 7)
    board.sandbox.requests.clear()
    refused = client.post("/actions/squareoff", data={"csrf": token})
    assert refused.status_code == 400
    dry = _text(client.post("/actions/squareoff", data={"csrf": token, "dry_run": "yes"})
                .get_data(as_text=True))
    assert "would send SELL 7 NSE:SBIN-EQ" in dry
    assert board.sandbox.requests.snapshot("place") == []
    assert board.net("SBIN-EQ") == 7


def test_squareoff_now_closes_and_reports(board: Bridge) -> None:
    client = board.app.test_client()
    token = sign_in(client)
    board.seed("SBIN-EQ", 7)
    board.seed("INFY-EQ", 3, product="CNC")
    answer = client.post("/actions/squareoff", data={"csrf": token, "confirm": "yes"})
    assert answer.status_code == 302
    deadline = time.monotonic() + 20
    while board.services.jobs.last_runs().get("squareoff:manual") is None or \
            board.services.jobs.last_runs()["squareoff:manual"].finished_at is None:
        assert time.monotonic() < deadline, "the square-off did not finish"
        time.sleep(0.1)
    assert board.net("SBIN-EQ") == 0
    assert board.net("INFY-EQ", "CNC") == 3  # delivery is never touched
    report = _text(client.get("/live", headers={"X-CSRF-Token": token})
                   .get_json()["squareoff"])
    assert "succeeded" in report and "FLAT" in report


def test_template_helper_builds_a_message_that_places_an_order(board: Bridge) -> None:
    client = board.app.test_client()
    sign_in(client)
    page = client.get("/helper?symbol=NSE:SBIN&kind=buy&lots=2&product=MIS&strategy=tv")
    found = re.search(r'id="template-text">(.*?)</pre>', page.get_data(as_text=True), re.S)
    assert found
    import html

    message = json.loads(html.unescape(found.group(1)))
    assert message["symbol"] == "NSE:SBIN-EQ" and message["quantity"] == 2
    message["alert_id"] = "from-template"
    code, answer = board.post("/webhook/tradingview", message)
    assert (code, answer["status"]) == (200, "placed")
    future = client.get("/helper?symbol=NIFTY1!&kind=strategy").get_data(as_text=True)
    assert "NIFTY1!" in future and "strategy.position_size" in future
    unknown = client.get("/helper?symbol=NOSUCHTHING").get_data(as_text=True)
    assert 'class="error"' in unknown


def test_kotak_login_page_logs_in_with_a_typed_totp(make_bridge: Any) -> None:
    import pyotp

    board: Bridge = make_bridge(ADMIN_PASSWORD=PASSWORD, KOTAK_TOTP_SECRET="")
    board.sandbox.expire_sessions()
    client = board.app.test_client()
    token = sign_in(client)
    bad = client.post("/kotak/callback", data={"csrf": token, "totp": "12ab"})
    assert bad.status_code == 422 and "digits" in bad.get_data(as_text=True)
    code = pyotp.TOTP(board.account.totp_secret).now()
    good = client.post("/kotak/callback", data={"csrf": token, "totp": code})
    text = _text(good.get_data(as_text=True))
    assert good.status_code == 200 and "Logged in. The Kotak session is valid until" in text
    assert board.services.broker().sessions.status().valid
    assert board.account.mpin not in text


def test_relogin_without_stored_credentials_goes_to_the_login_page(make_bridge: Any) -> None:
    board: Bridge = make_bridge(ADMIN_PASSWORD=PASSWORD, KOTAK_TOTP_SECRET="")
    client = board.app.test_client()
    token = sign_in(client)
    answer = client.post("/actions/relogin", data={"csrf": token})
    assert answer.status_code == 302 and "/kotak/callback" in answer.headers["Location"]


def test_relogin_with_stored_credentials_logs_in_again(board: Bridge) -> None:
    client = board.app.test_client()
    token = sign_in(client)
    board.sandbox.requests.clear()
    answer = client.post("/actions/relogin", data={"csrf": token})
    assert answer.status_code == 302
    assert len(board.sandbox.requests.snapshot("login")) == 1
    assert "Logged in to Kotak" in client.get("/").get_data(as_text=True)
