"""Only the holder of the secret trades: secrets, signatures, addresses, limits, sizes."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from tests.signals.conftest import SECRET, Bridge

SIGNAL = {"symbol": "NSE:SBIN", "action": "BUY", "quantity": 1}
TV_IP = "52.89.214.238"


def signed(body: bytes, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    stamp = str(int(at if at is not None else time.time()))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Timestamp": stamp, "X-Signature": f"sha256={digest}"}


@pytest.mark.parametrize(("payload", "words"), [
    (SIGNAL, "no secret"),
    ({"secret": "guess", **SIGNAL}, "wrong secret"),
    ({"secret": 12345, **SIGNAL}, "wrong secret"),
    ({"secret": SECRET, "apikey": "other", **SIGNAL}, "wrong secret"),
])
def test_tradingview_without_the_right_secret_is_401(bridge: Bridge, payload: dict[str, Any],
                                                     words: str) -> None:
    code, answer = bridge.post("/webhook/tradingview", payload)

    assert (code, answer["status"], answer["error"]["code"]) == (401, "rejected",
                                                                 "unauthorized")
    assert words in answer["error"]["message"]
    assert bridge.placed() == [] and bridge.services.journal.signals.recent_signals() == []


def test_amibroker_secret_in_the_header(bridge: Bridge) -> None:
    code, answer = bridge.post("/webhook/amibroker", SIGNAL,
                               headers={"X-Webhook-Secret": SECRET})
    assert (code, answer["status"]) == (200, "placed")

    code, _ = bridge.post("/webhook/amibroker", SIGNAL, headers={"X-Webhook-Secret": "x"})
    assert code == 401


def test_amibroker_form_body_as_old_amibroker_sends_it(bridge: Bridge) -> None:
    body = f"secret={SECRET}&symbol=SBIN&exchange=NSE&action=SELL&quantity=2"

    code, answer = bridge.post("/webhook/amibroker", body,
                               content_type="application/x-www-form-urlencoded")

    assert (code, answer["status"]) == (200, "placed")
    assert bridge.placed()[0]["tt"] == "S"


def test_amibroker_signature_without_the_secret_in_the_body(bridge: Bridge) -> None:
    body = json.dumps(SIGNAL).encode()

    code, answer = bridge.post("/webhook/amibroker", body, headers=signed(body))

    assert (code, answer["status"]) == (200, "placed")


@pytest.mark.parametrize("headers", [
    lambda body: signed(body, secret="not-the-secret"),
    lambda body: signed(body, at=time.time() - 120),
    lambda body: {**signed(body), "X-Signature": "sha256=" + "0" * 64},
    lambda body: {"X-Signature": signed(body)["X-Signature"]},
])
def test_bad_or_stale_signatures_are_refused(bridge: Bridge, headers: Any) -> None:
    body = json.dumps(SIGNAL).encode()

    code, _ = bridge.post("/webhook/amibroker", body, headers=headers(body))

    assert code == 401 and bridge.placed() == []


def test_repeated_wrong_secrets_block_the_address(make_bridge: Any) -> None:
    bridge = make_bridge(AUTH_FAILURE_LIMIT="3")
    for _ in range(3):
        assert bridge.post("/webhook/tradingview", {"secret": "x", **SIGNAL},
                           remote="203.0.113.9")[0] == 401

    code, answer = bridge.post("/webhook/tradingview", {"secret": SECRET, **SIGNAL},
                               remote="203.0.113.9")

    assert (code, answer["error"]["code"]) == (429, "address_blocked")
    assert bridge.post("/webhook/tradingview", {"secret": SECRET, **SIGNAL},
                       remote="203.0.113.10")[0] == 200


def test_tradingview_allow_list_believes_only_trusted_hops(make_bridge: Any) -> None:
    bridge = make_bridge(TRADINGVIEW_IPS_ONLY="true", TRUSTED_PROXIES="1")
    payload = {"secret": SECRET, **SIGNAL}

    code, _ = bridge.post("/webhook/tradingview", payload, remote="10.0.0.2",
                          headers={"X-Forwarded-For": TV_IP})
    assert code == 200
    spoofed, answer = bridge.post("/webhook/tradingview", {**payload, "quantity": 2},
                                  remote="10.0.0.2",
                                  headers={"X-Forwarded-For": f"{TV_IP}, 198.51.100.7"})
    assert (spoofed, answer["error"]["code"]) == (403, "address_not_allowed")


def test_allow_list_without_proxies_ignores_forwarded_for(make_bridge: Any) -> None:
    bridge = make_bridge(TRADINGVIEW_IPS_ONLY="true")

    code, _ = bridge.post("/webhook/tradingview", {"secret": SECRET, **SIGNAL},
                          remote="198.51.100.7", headers={"X-Forwarded-For": TV_IP})

    assert code == 403


def test_inbound_flood_is_429(make_bridge: Any) -> None:
    bridge = make_bridge(INBOUND_LIMIT_PER_MINUTE="3")
    codes = [bridge.post("/webhook/tradingview", {"secret": SECRET, **SIGNAL,
                                                  "quantity": n + 1})[0] for n in range(4)]

    assert codes == [200, 200, 200, 429]


def test_oversized_body_is_413(bridge: Bridge) -> None:
    body = json.dumps({"secret": SECRET, **SIGNAL, "comment": "x" * 200_000})

    code, answer = bridge.post("/webhook/tradingview", body)

    assert (code, answer["error"]["code"]) == (413, "too_large")


def test_chartink_secret_lives_in_the_path(bridge: Bridge) -> None:
    payload = {"stocks": "SBIN", "trigger_prices": "850", "scan_name": "x"}

    assert bridge.post("/webhook/chartink/not-it", payload)[0] == 401
    assert bridge.post("/webhook/chartink", payload)[0] == 401
