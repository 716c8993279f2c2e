"""The template helper's Lots count for a Pine strategy's alert: by default every alert
trades Lots x lot size in the strategy's direction; sized by the strategy, the page says to
set the strategy's size in units."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from tests.dashboard.conftest import sign_in
from tests.signals.conftest import Bridge


def _message(page: str) -> dict[str, Any]:
    found = re.search(r'id="template-text">(.*?)</pre>', page, re.S)
    assert found, "the page shows no message"
    message: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return message


def _as_tradingview_fills(message: dict[str, Any], action: str) -> dict[str, Any]:
    """What TradingView sends when a strategy's order fires."""
    text = json.dumps(message).replace("{{strategy.order.action}}", action.lower())
    text = text.replace("{{ticker}}-{{strategy.order.id}}-{{timenow}}", f"NIFTY1!-{action}")
    return dict(json.loads(text))


def test_a_strategy_alert_trades_the_lots_of_the_form(board: Bridge) -> None:
    client = board.app.test_client()
    sign_in(client)
    page = client.get("/helper?symbol=NIFTY1!&kind=strategy&lots=2&product=NRML"
                      "&strategy=trend").get_data(as_text=True)
    message = _message(page)
    assert message["quantity"] == 130 and message["action"] == "{{strategy.order.action}}"
    assert "position_size" not in message
    assert "2 lots × 65 = <strong>130</strong> units in every alert" in page

    code, answer = board.post("/webhook/tradingview", _as_tradingview_fills(message, "BUY"))
    assert (code, answer["status"]) == (200, "placed"), answer
    assert [(p["tt"], p["qt"]) for p in board.placed()] == [("B", "130")]


def test_a_strategy_sized_alert_says_to_size_the_strategy_in_units(board: Bridge) -> None:
    client = board.app.test_client()
    sign_in(client)
    page = client.get("/helper?symbol=NIFTY1!&kind=strategy&size=strategy&lots=2"
                      "&product=NRML").get_data(as_text=True)
    message = _message(page)
    assert message["quantity"] == "{{strategy.order.contracts}}"
    assert message["position_size"] == "{{strategy.position_size}}"
    assert "<strong>130</strong> for 2 lots" in page
    assert "default_qty_value=130" in page
    # A strategy sized in lots (1) is refused, and the refusal says what to send instead.
    sent = _as_tradingview_fills(message, "BUY")
    sent.update(quantity="1", position_size="1")
    code, answer = board.post("/webhook/tradingview", sent)
    assert code == 422 and "(use 65 or 130)" in answer["error"]["message"]
