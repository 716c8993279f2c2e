"""One schema instance validates every payload (making one per signal cost about a
millisecond): nothing of one payload, valid or not, single or multi-leg, shows in the next,
even with many request threads validating at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from marshmallow import ValidationError

from bridge.domain import SignalSource
from bridge.schemas import field_messages, load_signal


def _outcome(payload: dict[str, Any]) -> tuple[str, Any]:
    try:
        signal = load_signal(payload, SignalSource.TRADINGVIEW)
    except ValidationError as exc:
        return "refused", sorted(field_messages(exc))
    return "loaded", (signal.symbol, signal.side.value, signal.quantity, len(signal.legs))


PAYLOADS: list[dict[str, Any]] = [
    {"symbol": "NSE:SBIN", "action": "BUY", "quantity": 3},
    {"symbol": "NSE:SBIN", "action": "SELL", "quantity": -1},
    {"symbol": "NSE:INFY", "action": "BUY", "quantity": 2, "colour": "red"},
    {"legs": [{"symbol": "NFO:NIFTY26DEC24000CE", "action": "BUY", "quantity": 75},
              {"symbol": "NFO:NIFTY26DEC24500CE", "action": "SELL", "quantity": 0}]},
    {"legs": [{"symbol": "NFO:NIFTY26DEC24000CE", "action": "BUY", "quantity": 75}]},
    {"action": "BUY", "quantity": 1},
]


def test_each_payload_gets_its_own_outcome_whatever_came_before() -> None:
    alone = [_outcome(payload) for payload in PAYLOADS]
    assert [kind for kind, _ in alone] == ["loaded", "refused", "refused", "refused",
                                            "loaded", "refused"]
    mixed = PAYLOADS * 50
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(_outcome, mixed))
    assert together == alone * 50
