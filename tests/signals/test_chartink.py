"""ChartInk: each configured scan's stocks become one order each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.signals.conftest import SECRET, Bridge

SCANS = {"scans": {
    "Breakout buy": {"action": "BUY", "quantity": 5, "product": "MIS"},
    "momentum": {"action": "BUY", "amount": 10000, "max_stocks": 2, "strategy": "mom"},
    "Exit all": {"action": "EXIT"},
}}


@pytest.fixture
def chartink(make_bridge: Any, tmp_path: Path) -> Bridge:
    config = tmp_path / "chartink.json"
    config.write_text(json.dumps(SCANS))
    bridge: Bridge = make_bridge(CHARTINK_CONFIG=str(config))
    return bridge


def alert(bridge: Bridge, **fields: Any) -> tuple[int, dict[str, Any]]:
    payload = {"stocks": "SBIN,ITC", "trigger_prices": "850.5,450.25",
               "triggered_at": "2:34 pm", "scan_name": "Breakout buy",
               "scan_url": "breakout-buy", "alert_name": "Alert for Breakout buy",
               "webhook_url": f"https://bridge.example/webhook/chartink/{SECRET}", **fields}
    return bridge.post(f"/webhook/chartink/{SECRET}", payload)


def test_one_order_per_stock(chartink: Bridge) -> None:
    code, answer = alert(chartink)

    assert (code, answer["status"]) == (200, "placed")
    assert [(d["ts"], d["qt"], d["tt"]) for d in chartink.placed()] == [
        ("SBIN-EQ", "5", "B"), ("ITC-EQ", "5", "B")]
    assert [s["symbol"] for s in answer["signals"]] == ["SBIN", "ITC"]
    row = chartink.journaled(answer["signals"][0]["alert_id"])
    assert SECRET not in row.raw_body and "***" in row.raw_body


def test_scan_matched_by_url_slug_and_sized_by_amount(chartink: Bridge) -> None:
    code, _ = alert(chartink, scan_name="Something else", alert_name="",
                    scan_url="momentum")

    assert code == 200
    assert [(d["ts"], d["qt"]) for d in chartink.placed()] == [("SBIN-EQ", "11"),
                                                               ("ITC-EQ", "22")]


def test_exit_scan_flattens_and_never_opens(chartink: Bridge) -> None:
    chartink.seed("SBIN-EQ", 7)

    code, answer = alert(chartink, scan_name="Exit all")

    assert code == 200
    assert [(d["ts"], d["qt"], d["tt"]) for d in chartink.placed()] == [("SBIN-EQ", "7", "S")]
    assert [s["status"] for s in answer["signals"]] == ["placed", "noop"]


def test_the_same_alert_again_is_answered_not_executed(chartink: Bridge) -> None:
    alert(chartink)
    code, answer = alert(chartink)

    assert (code, answer["status"]) == (200, "duplicate")
    assert len(chartink.placed()) == 2


def test_unconfigured_scan_is_refused_naming_the_scans(chartink: Bridge) -> None:
    code, answer = alert(chartink, scan_name="Nope", alert_name="Nope", scan_url="nope")

    assert code == 422
    assert "breakout buy" in json.dumps(answer["error"]["details"])
    assert chartink.placed() == []


def test_too_many_stocks_are_refused_whole(chartink: Bridge) -> None:
    code, answer = alert(chartink, scan_name="momentum", stocks="SBIN,ITC,INFY",
                         trigger_prices="850,450,1500")

    assert (code, answer["error"]["code"]) == (409, "too_many_stocks")
    assert chartink.placed() == []


def test_missing_or_broken_configuration_is_explained(make_bridge: Any, tmp_path: Path) -> None:
    missing = make_bridge(CHARTINK_CONFIG=str(tmp_path / "absent.json"))
    code, answer = alert(missing)
    assert (code, answer["error"]["code"]) == (409, "chartink_config")
    assert "absent.json" in answer["error"]["message"]

    broken = tmp_path / "broken.json"
    broken.write_text('{"scans": {"x": {"action": "HOLD"}}}')
    misconfigured = make_bridge(CHARTINK_CONFIG=str(broken))
    code, answer = alert(misconfigured)
    assert code == 409 and "action must be one of" in answer["error"]["message"]
