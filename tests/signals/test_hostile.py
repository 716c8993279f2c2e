"""Anything thrown at the endpoints: always a clear 4xx, never a 500, never an order."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.signals.conftest import SECRET, Bridge

FIELDS = ["symbol", "exchange", "action", "quantity", "pricetype", "product", "price",
          "trigger_price", "disclosed_quantity", "validity", "amo", "position_size",
          "strategy", "alert_id", "comment"]
scalars = (st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40)
           | st.sampled_from(["SBIN", "NSE:SBIN", "NIFTY1!", "BUY", "sell", "LIMIT", "SL-M",
                              "1e309", "-0", "NaN", "10.5", "", " ", "\u0000", "𝟙𝟘"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
payloads = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=12), values,
                           max_size=8)


def refused_properly(bridge: Bridge, code: int, answer: dict[str, Any]) -> None:
    assert 400 <= code < 500, (code, answer)
    assert answer["status"] == "rejected" and answer["error"]["message"]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=payloads, with_secret=st.booleans(),
       path=st.sampled_from(["/webhook/tradingview", "/webhook/amibroker"]))
def test_random_payloads_never_become_orders_or_500s(bridge: Bridge, payload: dict[str, Any],
                                                     with_secret: bool, path: str) -> None:
    body = {**payload, "secret": SECRET} if with_secret else payload
    payload.pop("quantity", None)  # without a quantity no valid order can result
    body.pop("quantity", None)
    body.pop("position_size", None)

    code, answer = bridge.post(path, json.dumps(body, default=str))

    refused_properly(bridge, code, answer)
    assert bridge.placed() == []


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
       path=st.sampled_from(["/webhook/tradingview", "/webhook/amibroker",
                             f"/webhook/chartink/{SECRET}"]),
       content_type=st.sampled_from(["application/json", "text/plain",
                                     "application/x-www-form-urlencoded"]))
def test_random_bytes_are_refused_cleanly(bridge: Bridge, raw: bytes, path: str,
                                          content_type: str) -> None:
    code, answer = bridge.post(path, raw, content_type=content_type)

    refused_properly(bridge, code, answer)
    assert bridge.placed() == []


def test_deep_nesting_and_huge_numbers(bridge: Bridge) -> None:
    deep = '{"secret": "' + SECRET + '", "symbol": ' + "[" * 5000 + "]" * 5000 + "}"
    huge = '{"secret": "' + SECRET + '", "symbol": "SBIN", "action": "BUY", "quantity": ' + \
        "9" * 5000 + "}"
    for body in (deep, huge, '{"secret": "' + SECRET + '", "symbol": "SBIN", "exchange": '
                 '"NSE", "action": "BUY", "quantity": 1e400}'):
        code, answer = bridge.post("/webhook/tradingview", body)
        refused_properly(bridge, code, answer)
    assert bridge.placed() == []
