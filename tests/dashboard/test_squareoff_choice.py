"""A square-off pressed on the dashboard: one confirmation, and the trader's visible choice
whether new intraday entries stop for the rest of the day; a stop says so on the overview
and is lifted with one button, live and in paper mode alike."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from bridge.app import create_app
from bridge.config import load_settings
from bridge.journal.rows import SignalStatus
from bridge.kotak.sandbox.paper import PAPER_ACCOUNT
from bridge.startup import prepare
from bridge.wiring import Services, build_services
from tests.dashboard.conftest import PASSWORD, sign_in
from tests.signals.conftest import SECRET, Bridge

LIFT_HOW = "make entries-allow"


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _square_off(client: FlaskClient, token: str, services: Services,
                **form: str) -> str:
    """Press "Square off now" once; wait for the run to end; return the flash shown."""
    before = services.jobs.last_runs().get("squareoff:manual")
    answer = client.post("/actions/squareoff",
                         data={"csrf": token, "confirm": "yes", "exchange": "NSE", **form})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    deadline = time.monotonic() + 30
    while True:
        run = services.jobs.last_runs().get("squareoff:manual")
        if run is not None and run.finished_at is not None and \
                (before is None or run.id != before.id):
            assert "FLAT (verified" in run.summary, run.summary
            break
        assert time.monotonic() < deadline, "the square-off did not finish"
        time.sleep(0.05)
    return _text(client.get("/").get_data(as_text=True))


def _alert(client: FlaskClient, alert_id: str, product: str = "MIS") -> tuple[int, Any]:
    answer = client.post("/webhook/tradingview", data=json.dumps({
        "secret": SECRET, "symbol": "NSE:SBIN", "action": "buy", "quantity": 1,
        "product": product, "alert_id": alert_id}), content_type="application/json")
    return answer.status_code, answer.get_json()


def _placed(board: Bridge, alert_id: str, product: str = "MIS") -> None:
    """Send a BUY of SBIN and see it placed (a busy machine may first answer queued)."""
    code, answer = board.signal(symbol="NSE:SBIN", action="BUY", quantity=1, product=product,
                                alert_id=alert_id)
    assert code in (200, 202), answer
    row = board.wait_status(alert_id, SignalStatus.PLACED, SignalStatus.REJECTED,
                            SignalStatus.FAILED, timeout=15)
    assert row.status is SignalStatus.PLACED, row.error


def test_the_overview_form_is_the_one_confirmation_and_keeps_entries_by_default(
        board: Bridge) -> None:
    client = board.app.test_client()
    token = sign_in(client)
    page = client.get("/").get_data(as_text=True)
    form = page[page.index('id="squareoff-form"'):]
    form = form[:form.index("</details>")]
    # One confirm button, no tick box to confirm, no browser dialog; the choice is unticked.
    assert form.count('name="confirm"') == 1 and 'type="checkbox" name="confirm"' not in form
    assert "data-confirm" not in form
    assert "Also stop new intraday entries until tomorrow" in _text(form)
    assert re.search(r'<input type="checkbox" name="block_entries" value="yes" '
                     r'id="block-entries">', form)

    board.seed("SBIN-EQ", 7)
    shown = _square_off(client, token, board.services)  # one post, the box left unticked
    assert board.net("SBIN-EQ") == 0
    assert "New intraday entries stay allowed" in shown
    assert "entries are stopped" not in shown and 'id="allow-entries"' not in shown

    board.sandbox.requests.clear()
    _placed(board, "after")
    assert [json.loads(r.jdata)["ts"] for r in board.sandbox.requests.snapshot("place")] == \
        ["SBIN-EQ"]


def test_stopping_entries_refuses_mis_until_lifted_from_the_dashboard(board: Bridge) -> None:
    client = board.app.test_client()
    token = sign_in(client)
    board.seed("SBIN-EQ", 5)
    shown = _square_off(client, token, board.services, block_entries="yes")
    assert board.net("SBIN-EQ") == 0
    assert "New intraday (MIS) entries are stopped" in shown
    assert "NSE: stopped by the square-off pressed on the dashboard at" in shown
    assert "until the next trading day" in shown and "Allow new entries again" in shown

    code, answer = board.signal(symbol="NSE:SBIN", action="BUY", quantity=1, alert_id="x1")
    assert (code, answer["error"]["code"]) == (409, "after_squareoff")
    message = answer["error"]["message"]
    assert "stopped for today by a square-off" in message
    assert "Allow new entries again" in message and LIFT_HOW in message
    # Delivery still goes; so does the /live part that carries the banner.
    _placed(board, "cnc", product="CNC")
    live = client.get("/live", headers={"X-CSRF-Token": token}).get_json()
    assert 'id="allow-entries"' in live["entries"]

    assert client.post("/actions/entries", data={}).status_code in (400, 403)  # no CSRF
    lifted = client.post("/actions/entries", data={"csrf": token}, follow_redirects=True)
    page = _text(lifted.get_data(as_text=True))
    assert "New intraday entries are allowed again on NSE" in page
    assert "entries are stopped" not in page
    notice = board.services.jobs.notices(kind="entries")[0]
    assert "allowed again by dashboard on NSE" in notice.text

    board.sandbox.requests.clear()
    _placed(board, "x2")
    assert [json.loads(r.jdata)["pc"] for r in board.sandbox.requests.snapshot("place")] == \
        ["MIS"]


def test_a_dry_run_stops_nothing_and_offers_the_same_choice(board: Bridge) -> None:
    client = board.app.test_client()
    token = sign_in(client)
    board.seed("SBIN-EQ", 3)
    board.sandbox.requests.clear()
    page = client.post("/actions/squareoff", data={
        "csrf": token, "dry_run": "yes", "exchange": "NSE", "block_entries": "yes"})
    html = page.get_data(as_text=True)
    assert "would send SELL 3 NSE:SBIN-EQ" in _text(html)
    assert "would also stop new intraday (MIS) entries on NSE" in _text(html)
    # The form is open on the result page, the choice and exchange kept: one press from here.
    assert '<details class="squareoff-form" id="squareoff-form" open>' in html
    assert 'id="block-entries" checked' in html and '<option value="NSE" selected>' in html
    assert board.sandbox.requests.snapshot("place") == []
    _placed(board, "d1")
    bad = client.post("/actions/squareoff", data={"csrf": token, "confirm": "yes",
                                                  "block_entries": "maybe"})
    assert bad.status_code == 400 and "block_entries" in bad.get_data(as_text=True)


def _wait_placed(services: Services, alert_id: str) -> None:
    """A busy machine may answer ``queued`` (202) before the order is sent: wait for it."""
    deadline = time.monotonic() + 15
    while True:
        rows = services.journal.signals.signals_by_alert_id(alert_id)
        if rows and rows[0].status is SignalStatus.PLACED:
            return
        assert time.monotonic() < deadline, f"{alert_id} not placed: {rows}"
        time.sleep(0.05)


@pytest.fixture
def paper(tmp_path: Path) -> Iterator[tuple[Services, FlaskClient]]:
    settings = load_settings({
        "WEBHOOK_SECRET": SECRET, "ADMIN_PASSWORD": PASSWORD, "MARKET_HOURS": "ignore",
        "RESPONSE_BUDGET_MS": "2500",
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}"})
    services = build_services(settings)
    prepare(services)
    services.start_background()
    try:
        yield services, create_app(services=services).test_client()
    finally:
        services.close()


def test_paper_mode_stops_only_when_asked_and_lifts_the_same_way(
        paper: tuple[Services, FlaskClient]) -> None:
    services, client = paper
    assert services.paper is not None
    token = sign_in(client)
    services.paper.seed_position(PAPER_ACCOUNT.ucc, "NSE", "SBIN-EQ", "MIS", 4, Decimal(800))
    _square_off(client, token, services)
    assert _alert(client, "p1")[0] in (200, 202)  # the default keeps entries
    _wait_placed(services, "p1")

    _square_off(client, token, services, block_entries="yes")
    code, answer = _alert(client, "p2")
    assert code == 409 and LIFT_HOW in answer["error"]["message"]

    client.post("/actions/entries", data={"csrf": token})
    services.paper.requests.clear()
    code, answer = _alert(client, "p3")
    assert code in (200, 202), answer
    _wait_placed(services, "p3")
    assert [json.loads(r.jdata)["ts"] for r in services.paper.requests.snapshot("place")] == \
        ["SBIN-EQ"]
