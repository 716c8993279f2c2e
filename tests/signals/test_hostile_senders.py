"""What an outsider sends may not block, double, flip or leak (issue 12, items 2 to 9): each
test here failed on the bridge before that issue."""

from __future__ import annotations

import json
import os
import re
import stat
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from bridge.clock import SystemClock
from bridge.journal.doors import DoorBook
from bridge.webhooks.auth import FailureBook
from tests.dashboard.conftest import PASSWORD, sign_in
from tests.signals.conftest import SECRET, Bridge
from tests.signals.test_auth import SIGNAL, TV_IP, signed


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- 2. nobody can lock the owner out through TradingView's shared addresses ---------------


def test_wrong_secrets_through_tradingview_cannot_block_the_owner(make_bridge: Any) -> None:
    bridge = make_bridge(AUTH_FAILURE_LIMIT="10", ADMIN_PASSWORD=PASSWORD)
    for _ in range(12):  # someone else's alerts, from TradingView's own address
        code, _ = bridge.post("/webhook/tradingview", {"secret": "guess", **SIGNAL},
                              remote=TV_IP)
        assert code in (401, 429)

    code, answer = bridge.post("/webhook/tradingview",
                               {"secret": SECRET, **SIGNAL, "alert_id": "owner-1"},
                               remote=TV_IP)

    assert (code, answer["status"]) == (200, "placed")
    # The same wrong secret sent again and again is blocked, on its own.
    code, answer = bridge.post("/webhook/tradingview", {"secret": "guess", **SIGNAL},
                               remote=TV_IP)
    assert (code, answer["error"]["code"]) == (429, "address_blocked")
    assert "IST" in answer["error"]["message"]  # the time a trader reads

    client = bridge.app.test_client()
    sign_in(client)
    page = text_of(client.get("/").get_data(as_text=True))
    assert "13 refused alerts from TradingView in the last hour" in page
    assert "wrong secret" in page


def test_every_refused_request_is_journaled_with_its_reason(bridge: Bridge) -> None:
    bridge.post("/webhook/tradingview", {"secret": "nope", **SIGNAL}, remote="203.0.113.5")
    bridge.post("/webhook/tradingview", "{not json", remote="203.0.113.5")
    bridge.post("/webhook/amibroker", json.dumps(SIGNAL), remote="203.0.113.6")

    counted = {(r.source, r.code, r.count) for r in
               bridge.services.doors.refusals_since(SystemClock().now() - timedelta(hours=1))}

    assert counted == {("tradingview", "unauthorized", 1), ("tradingview", "invalid_json", 1),
                       ("amibroker", "unauthorized", 1)}


def test_a_block_made_by_one_process_holds_in_another_at_once(bridge: Bridge) -> None:
    journal = bridge.services.journal
    first = FailureBook(journal, 3, timedelta(minutes=10), timedelta(minutes=15))
    second = FailureBook(journal, 3, timedelta(minutes=10), timedelta(minutes=15))
    first.failed("198.51.100.7")
    assert first.blocked_until("198.51.100.7") is None  # on record, not blocked yet

    second.failed("198.51.100.7")
    second.failed("198.51.100.7")  # the third, in another process: blocked

    assert first.blocked_until("198.51.100.7") is not None  # no extra try for a second


# --- 3. a signed request is good once ------------------------------------------------------


def test_a_signed_request_replayed_after_the_dedup_window_is_refused(
        make_bridge: Any) -> None:
    bridge = make_bridge(DEDUP_WINDOW_S="0")
    body = json.dumps(SIGNAL).encode()
    headers = signed(body)

    first = bridge.post("/webhook/amibroker", body, headers=headers)
    time.sleep(0.05)
    replay = bridge.post("/webhook/amibroker", body, headers=headers)

    assert first[0] == 200 and first[1]["status"] == "placed"
    assert replay[0] == 401 and "already received" in replay[1]["error"]["message"]
    assert len(bridge.placed()) == 1


def test_a_timestamp_that_is_not_a_number_fails_the_signature(bridge: Bridge) -> None:
    import hashlib
    import hmac

    body = json.dumps(SIGNAL).encode()
    for stamp in ("nan", "inf", "-inf"):
        digest = hmac.new(SECRET.encode(), stamp.encode() + b"." + body,
                          hashlib.sha256).hexdigest()
        code, _ = bridge.post("/webhook/amibroker", body,
                              headers={"X-Timestamp": stamp, "X-Signature": f"sha256={digest}"})
        assert code == 401, stamp
    assert bridge.placed() == []


# --- 4. a field given twice is refused, never its last spelling taken ----------------------


@pytest.mark.parametrize(("raw", "field"), [
    ('{"secret":"%s","symbol":"NSE:SBIN","action":"BUY","action":"SELL","quantity":1}',
     "action"),
    ('{"secret":"%s","symbol":"NSE:SBIN","action":"BUY","quantity":1,"quantity":50}',
     "quantity"),
    ('{"secret":"wrong","secret":"%s","symbol":"NSE:SBIN","action":"BUY","quantity":1}',
     "secret"),
])
def test_a_repeated_key_is_refused_naming_it(bridge: Bridge, raw: str, field: str) -> None:
    code, answer = bridge.post("/webhook/tradingview", raw % SECRET, content_type="text/plain")

    assert code == 422 and field in answer["error"]["details"]
    assert "more than once" in answer["error"]["message"]
    assert bridge.placed() == []


def test_nan_and_infinity_are_refused(bridge: Bridge) -> None:
    for word in ("NaN", "Infinity", "-Infinity"):
        raw = ('{"secret":"' + SECRET + '","symbol":"NSE:SBIN","action":"BUY","quantity":1,'
               '"pricetype":"LIMIT","price":' + word + '}')
        code, _ = bridge.post("/webhook/tradingview", raw, content_type="text/plain")
        assert code == 422, word
    assert bridge.placed() == []


# --- 5. what can be checked before sending is checked before sending -----------------------


def test_a_price_that_rounds_to_nothing_is_refused_at_intake(bridge: Bridge) -> None:
    code, answer = bridge.signal(symbol="NSE:SBIN", action="BUY", quantity=1,
                                 pricetype="LIMIT", price="0.001", alert_id="tiny")

    assert code == 422 and "price" in answer["error"]["details"]
    assert "tick" in answer["error"]["message"]
    assert bridge.placed() == []
    assert not bridge.services.journal.signals.signals_by_alert_id("tiny") or \
        bridge.journaled("tiny").status.value == "rejected"


# --- 6. the secret never reaches the journal, whatever its spelling ------------------------


def _escaped(text: str) -> str:
    return "".join(f"\\u{ord(ch):04x}" for ch in text)


def _tv(secret: str, alert_id: str, extra: str = "") -> str:
    return ('{"secret":"' + secret + '","symbol":"NSE:SBIN","action":"BUY","quantity":1,'
            '"alert_id":"' + alert_id + '"' + extra + '}')


@pytest.mark.parametrize(("label", "path", "body", "content_type"), [
    ("json-escaped", "/webhook/tradingview", _tv(_escaped(SECRET), "m1"), "text/plain"),
    ("partly-escaped", "/webhook/tradingview",
     _tv(_escaped(SECRET[:3]) + SECRET[3:], "m2"), "application/json"),
    ("percent-encoded form", "/webhook/amibroker",
     "secret=" + "".join(f"%{b:02X}" for b in SECRET.encode())
     + "&symbol=SBIN&exchange=NSE&action=BUY&quantity=1&alert_id=m3",
     "application/x-www-form-urlencoded"),
    ("in another field", "/webhook/tradingview",
     _tv(SECRET, "m4", ',"comment":"key ' + _escaped(SECRET) + '"'), "text/plain"),
])
def test_the_secret_is_masked_whatever_its_spelling(make_bridge: Any, label: str, path: str,
                                                    body: str, content_type: str) -> None:
    bridge = make_bridge(ADMIN_PASSWORD=PASSWORD)
    code, answer = bridge.post(path, body, content_type=content_type)
    assert code == 200, (label, answer)

    row = bridge.journaled(answer["alert_id"])
    client = bridge.app.test_client()
    sign_in(client)
    page = client.get(f"/signals/{row.id}").get_data(as_text=True)

    for spelling in (SECRET, _escaped(SECRET), quote(SECRET), SECRET[3:]):
        assert spelling not in row.raw_body, (label, row.raw_body)
        assert spelling not in page, label
    assert "***" in row.raw_body


def test_a_secret_sent_in_a_header_is_not_journaled(make_bridge: Any) -> None:
    bridge = make_bridge(ADMIN_PASSWORD=PASSWORD)
    code, _ = bridge.post("/webhook/amibroker", {**SIGNAL, "alert_id": "h1"},
                          headers={"X-Webhook-Secret": SECRET})
    assert code == 200

    row = bridge.journaled("h1")
    client = bridge.app.test_client()
    sign_in(client)

    assert SECRET not in row.raw_body
    assert SECRET not in client.get(f"/signals/{row.id}").get_data(as_text=True)


# --- 7. text that cannot be stored is a 422, not a 500 -------------------------------------


@pytest.mark.parametrize("field", ["strategy", "alert_id", "symbol", "comment"])
def test_a_lone_surrogate_is_refused_naming_the_field(bridge: Bridge, field: str) -> None:
    payload = {"secret": SECRET, "symbol": "NSE:SBIN", "action": "BUY", "quantity": 1,
               field: "ab\\ud800cd"}
    raw = json.dumps(payload).replace("ab\\\\ud800cd", "ab\\ud800cd")

    code, answer = bridge.post("/webhook/tradingview", raw, content_type="text/plain")

    assert code == 422 and field in answer["error"]["details"], answer
    assert bridge.placed() == []


# --- 9. pages and files ---------------------------------------------------------------------


def test_every_answer_carries_the_security_headers(make_bridge: Any) -> None:
    bridge = make_bridge(ADMIN_PASSWORD=PASSWORD)
    client = bridge.app.test_client()
    answers = [client.get("/login"), client.get("/healthz"),
               client.post("/webhook/tradingview", data="{}", content_type="text/plain")]
    sign_in(client)
    answers.append(client.get("/"))

    for answer in answers:
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
        assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_the_journal_and_the_data_folder_are_the_owners_alone(bridge: Bridge) -> None:
    settings = bridge.services.settings
    data_dir = Path(settings.data_dir)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for path in data_dir.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        if not path.is_symlink():
            assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    database = settings.database_url.removeprefix("sqlite:///")
    if settings.database_url.startswith("sqlite") and os.path.exists(database):
        assert stat.S_IMODE(os.stat(database).st_mode) == 0o600


def test_doors_remember_signatures_once(bridge: Bridge) -> None:
    doors: DoorBook = bridge.services.doors
    assert doors.use_signature("a" * 64, timedelta(minutes=2))
    assert not doors.use_signature("a" * 64, timedelta(minutes=2))
