"""What a new user trips on in the first hour, said where they look: the refusal's message
(what the dashboard and ``bridge signal`` show, since TradingView never shows the answer)
names the lot size and the quantities to use, quotes an unfilled placeholder whole, and a
limit price moved onto the tick says so; paper mode says its market is a sample and how to
add to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge.app import create_app
from bridge.config import ConfigError, load_settings
from bridge.journal.rows import SignalStatus
from bridge.startup import prepare
from bridge.wiring import Services, build_services
from tests.dashboard.conftest import PASSWORD, sign_in
from tests.signals.conftest import SECRET, Bridge


def test_a_future_off_the_lot_size_names_the_lot_and_the_quantities_to_use(
        make_bridge: Any) -> None:
    bridge: Bridge = make_bridge(ADMIN_PASSWORD=PASSWORD)
    code, answer = bridge.signal(symbol="NIFTY1!", action="BUY", quantity=50, product="NRML",
                                 alert_id="fut-50")
    assert (code, answer["status"]) == (422, "rejected")
    contract = bridge.journaled("fut-50").instrument or ""
    message = answer["error"]["message"]
    assert message.startswith("quantity 50 is not a whole number of lots: NFO:NIFTY")
    assert message.endswith("has a lot size of 65 (use 65 or 130)")
    assert "use 65 or 130" in answer["error"]["details"]["quantity"][0]
    row = bridge.journaled("fut-50")
    assert row.error is not None and row.error.message == message
    client = bridge.app.test_client()
    sign_in(client)
    page = client.get(f"/signals/{row.id}").get_data(as_text=True)
    assert "has a lot size of 65 (use 65 or 130)" in page, contract
    code, answer = bridge.signal(symbol="NIFTY1!", action="SELL", quantity=130,
                                 position_size=-100, product="NRML", alert_id="fut-target")
    assert code == 422
    assert answer["error"]["message"].endswith("has a lot size of 65 (use -65 or -130)")
    assert bridge.placed() == []


def test_an_unfilled_placeholder_is_quoted_whole_and_named(bridge: Bridge) -> None:
    code, answer = bridge.signal(symbol="NSE:SBIN", action="BUY", quantity=1,
                                 pricetype="LIMIT", price="{{strategy.order.price}}",
                                 alert_id="unfilled")
    assert (code, answer["status"]) == (422, "rejected")
    said = answer["error"]["details"]["price"][0]
    assert said.startswith("'{{strategy.order.price}}' is an unfilled TradingView placeholder")
    assert "alert created on a strategy" in said
    assert "'{{strategy.order.price}}' is an unfilled" in answer["error"]["message"]
    code, answer = bridge.signal(symbol="NSE:SBIN", action="BUY", quantity="{{ close }}",
                                 alert_id="unfilled-2")
    assert code == 422
    assert "'{{ close }}' is an unfilled TradingView placeholder" in \
        answer["error"]["details"]["quantity"][0]
    assert bridge.placed() == []


def test_a_limit_off_the_tick_is_rounded_the_safe_way_and_says_so(bridge: Bridge) -> None:
    code, answer = bridge.signal(symbol="NSE:SBIN", action="BUY", quantity=1,
                                 pricetype="LIMIT", price="851.03", alert_id="buy-off-tick")
    assert (code, answer["status"]) == (200, "placed")
    note = ("price 851.03 rounded to 851.00 (tick 0.05; a buy is rounded down, never paying "
            "more than asked)")
    assert answer["notes"] == [note]
    code, answer = bridge.signal(symbol="NSE:SBIN", action="SELL", quantity=1,
                                 pricetype="SL", price="849.02", trigger_price="849.97",
                                 alert_id="sell-off-tick")
    assert (code, answer["status"]) == (200, "placed")
    assert answer["notes"] == [
        "price 849.02 rounded to 849.05 (tick 0.05; a sell is rounded up, never selling for "
        "less than asked)",
        "trigger_price 849.97 rounded to 850.00 (tick 0.05; a sell is rounded up, so the stop "
        "fires no later than asked)"]
    buy, sell = bridge.placed()
    assert (buy["pr"], sell["pr"], sell["tp"]) == ("851", "849.05", "850")
    row = bridge.journaled("buy-off-tick")
    assert row.status is not SignalStatus.REJECTED
    assert note in [event.detail for event in bridge.services.journal.history.events_of(row.id)]


# --- paper mode's market -------------------------------------------------------------------


def _paper(data_dir: Path) -> Services:
    settings = load_settings({"WEBHOOK_SECRET": SECRET, "DATA_DIR": str(data_dir),
                              "DATABASE_URL": f"sqlite:///{data_dir / 'bridge.db'}",
                              "MARKET_HOURS": "ignore"})
    services = build_services(settings)
    prepare(services)
    services.start_background()
    return services


def _send(services: Services, **fields: Any) -> tuple[int, dict[str, Any]]:
    client = create_app(services=services).test_client()
    answer = client.post("/webhook/tradingview", data=json.dumps({"secret": SECRET, **fields}),
                         content_type="application/json")
    return answer.status_code, answer.get_json()


def test_paper_mode_says_its_market_is_a_sample_and_takes_the_users_shares(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    services = _paper(data_dir)
    try:
        code, answer = _send(services, symbol="NSE:IRCTC", action="BUY", quantity=1,
                             alert_id="irctc-1")
        assert (code, answer["status"]) == (422, "rejected")
        said = answer["error"]["details"]["symbol"][0]
        assert said.startswith("unknown symbol 'NSE:IRCTC': not in today's scrip master")
        assert "paper mode trades a built-in sample market" in said
        assert "bridge instruments lookup NAME" in said
        assert str(data_dir / "paper-instruments.csv") in said
        code, answer = _send(services, symbol="RELAINCE", action="BUY", quantity=1,
                             alert_id="typo-1")
        assert "did you mean RELIANCE?" in answer["error"]["message"]
    finally:
        services.close()

    (data_dir / "paper-instruments.csv").write_text(
        "symbol,price,lot,step,name\n"
        "# my additions\n"
        "IRCTC,780\n"
        "POLYCAB,6500,125,100,POLYCAB INDIA LIMITED\n")
    services = _paper(data_dir)
    try:
        code, answer = _send(services, symbol="NSE:IRCTC", action="BUY", quantity=2,
                             alert_id="irctc-2")
        assert (code, answer["status"]) == (200, "placed"), answer
        assert answer["orders"][0]["symbol"] == "IRCTC-EQ"
        index = services.instruments.current()
        future = index.resolve("POLYCAB1!")
        assert (future.exchange.value, future.lot_size) == ("NFO", 125)
        assert index.option_chain(future.exchange, "POLYCAB", "CE") is not None
    finally:
        services.close()


def test_a_bad_line_in_the_users_instruments_stops_the_start_naming_it(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "paper-instruments.csv").write_text("IRCTC,780\nPOLYCAB,lots\n")
    settings = load_settings({"WEBHOOK_SECRET": SECRET, "DATA_DIR": str(data_dir),
                              "DATABASE_URL": f"sqlite:///{data_dir / 'bridge.db'}"})
    with pytest.raises(ConfigError) as refused:
        build_services(settings)
    assert refused.value.problems == [
        f"{data_dir / 'paper-instruments.csv'} line 2: POLYCAB: price 'lots' is not a number"]
