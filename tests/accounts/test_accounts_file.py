"""The accounts file is read strictly at start: every problem named, secrets kept out."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bridge.accounts import Sizing, load_accounts
from bridge.config import ConfigError, load_settings
from bridge.domain import Exchange, Instrument, InstrumentKind, Side, Signal, SignalSource
from bridge.errors import RuleRefusal
from bridge.journal.rows import SignalStatus
from bridge.orders.fanout import combined_status, for_account

BASE = {"WEBHOOK_SECRET": "w" * 24}


def _load(tmp_path: Path, content: Any, **env: str) -> Any:
    path = tmp_path / "accounts.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return load_accounts(load_settings({**BASE, "ACCOUNTS_FILE": str(path), **env}))


def test_no_file_means_the_default_account_alone(tmp_path: Path) -> None:
    book = load_accounts(load_settings({**BASE, "DATA_DIR": str(tmp_path)}))
    assert list(book.accounts) == ["default"] and not book.fans_out


def test_a_paper_fleet_with_subscriptions(tmp_path: Path) -> None:
    book = _load(tmp_path, {"accounts": {"asha": {"multiplier": 0.5},
                                         "ravi": {"lots": 2, "enabled": False}},
                            "strategies": {"breakout": ["default", "asha", "ravi"],
                                           "*": ["asha"]}})
    assert list(book.accounts) == ["default", "asha"] and book.disabled == ("ravi",)
    assert [a.name for a in book.for_strategy("breakout")] == ["default", "asha"]
    assert [a.name for a in book.for_strategy("other")] == ["asha"]
    assert book.accounts["asha"].sizing == Sizing(Decimal("0.5"))


def test_every_problem_is_named_and_no_secret_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, {"accounts": {
            "Bad Name": {},
            "asha": {"mpin": "123456", "colour": "red", "multiplier": -1},
            "ravi": {"mode": "live", "ucc": "XY1", "lots": 0},
        }, "strategies": {"s": ["nobody"]}})
    text = "\n".join(caught.value.problems)
    assert "123456" not in text
    assert "ACCOUNT_ASHA_MPIN" in text and "must not be in this file" in text
    assert "unknown field 'colour'" in text and "multiplier must be a number above 0" in text
    assert "account name 'Bad Name'" in text
    assert "a live account needs BRIDGE_MODE=live" in text
    assert "lots must be a whole number" in text
    assert "no account named nobody" in text


def test_live_accounts_take_their_secrets_from_the_environment(tmp_path: Path) -> None:
    live = {"BRIDGE_MODE": "live", "BROKER_API_KEY": "k" * 10, "KOTAK_UCC": "AB123",
            "KOTAK_MOBILE": "9876543210"}
    content = {"accounts": {"asha": {"mode": "live", "ucc": "xy987", "mobile": "9812345678"}}}
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, content, **live)
    assert "ACCOUNT_ASHA_BROKER_API_KEY is not set" in "\n".join(caught.value.problems)
    book = _load(tmp_path, content, **live, ACCOUNT_ASHA_BROKER_API_KEY="token-asha",
                 ACCOUNT_ASHA_MPIN="654321")
    kotak = book.accounts["asha"].kotak
    assert kotak.ucc == "XY987" and kotak.api_key.reveal() == "token-asha"
    assert "token-asha" in load_settings({**BASE, **live,
                                          "ACCOUNT_ASHA_BROKER_API_KEY": "token-asha"}).secrets()


def test_unreadable_json_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not readable JSON"):
        _load(tmp_path, "{not json")


NIFTY = Instrument(Exchange.NFO, "NIFTY26DECFUT", "NIFTY", "1", InstrumentKind.FUTURE, 75,
                   Decimal("0.1"))


def _signal(**fields: Any) -> Signal:
    return Signal(source=SignalSource.TRADINGVIEW, symbol="NIFTY1!", side=Side.BUY, **fields)


def test_sizing_rounds_down_to_whole_lots(tmp_path: Path) -> None:
    book = _load(tmp_path, {"accounts": {"half": {"multiplier": 0.5},
                                         "two": {"lots": 2}, "cap": {"max_quantity": 150}}})
    half, two, cap = (book.accounts[n] for n in ("half", "two", "cap"))
    assert for_account(_signal(quantity=300), NIFTY, half).quantity == 150
    assert for_account(_signal(quantity=225), NIFTY, half).quantity == 75
    assert for_account(_signal(quantity=75), NIFTY, two).quantity == 150
    assert for_account(_signal(position_size=-225), NIFTY, half).position_size == -75
    assert for_account(_signal(position_size=0), NIFTY, two).position_size == 0
    with pytest.raises(RuleRefusal, match="less than one lot"):
        for_account(_signal(quantity=75), NIFTY, half)
    with pytest.raises(RuleRefusal, match="max_quantity"):
        for_account(_signal(quantity=225), NIFTY, cap)


def test_the_combined_status_is_the_one_needing_attention() -> None:
    placed, rejected, unknown = SignalStatus.PLACED, SignalStatus.REJECTED, SignalStatus.UNKNOWN
    assert combined_status([placed, placed]) is placed
    assert combined_status([placed, rejected]) is rejected
    assert combined_status([rejected, unknown, placed]) is unknown
    assert combined_status([SignalStatus.DUPLICATE, placed]) is placed
