"""The answer to a signal: DESIGN.md section 5's shape and HTTP codes.

``{"alert_id", "status", "orders": [...], "error": {"code", "message", "details"}}``, and for
a signal fanned out to several accounts ``"accounts": [{"account", <the same fields>}]``,
with the top-level status the accounts' common one, else the one most needing attention
(unknown, failed, rejected, queued, placed, noop, duplicate) and "orders" all of them;
200 placed/partial/noop/duplicate, 202 queued, 422 invalid, 409 refused by a rule, 502 refused by
Kotak, 503 no session or Kotak unavailable, 504 outcome unknown. No code invites a re-send
that could double an order: every repeat is answered from the journal, never executed.

Besides the contract's fields: a ``noop`` carries ``"reason"`` (why nothing was sent, e.g.
the position already at the target; its ``error`` stays null, nothing went wrong), and a
signal the bridge adjusted carries ``"notes"`` (a limit price moved onto the tick).
"""

from __future__ import annotations

from typing import Any

from bridge.errors import BridgeError
from bridge.journal.rows import ErrorInfo, OrderRow, SignalStatus
from bridge.orders.desk import Outcome

#: refusals answered 422: the signal cannot be acted on as sent (a missing or stale quote
#: of an option's underlying too: nothing was sent, and the field is named)
INVALID_CODES = frozenset({"invalid_signal", "invalid_json", "quote_unavailable"})
BROKER_REFUSED = frozenset({"broker_rejected"})
BROKER_GARBLED = frozenset({"broker_protocol"})
#: a noop journaled before noops said why
NOOP_REASON = "the position is already where the signal wants it: nothing sent"

_PUBLIC = {
    SignalStatus.RECEIVED: "queued", SignalStatus.QUEUED: "queued",
    SignalStatus.DISPATCHING: "queued", SignalStatus.PLACED: "placed",
    SignalStatus.PARTIAL: "partial",
    SignalStatus.NOOP: "noop", SignalStatus.DUPLICATE: "duplicate",
    SignalStatus.REJECTED: "rejected", SignalStatus.FAILED: "failed",
    SignalStatus.UNKNOWN: "unknown", SignalStatus.EXPIRED: "failed",
}


def public_status(status: SignalStatus) -> str:
    return _PUBLIC[status]


def http_status(status: SignalStatus, error: ErrorInfo | None) -> int:
    public = _PUBLIC[status]
    code = error.code if error is not None else ""
    # partial: some orders stand at Kotak; any code inviting a re-send could double them
    if public in ("placed", "noop", "duplicate", "partial"):
        return 200
    if public == "queued":
        return 202
    if public == "unknown":
        return 504
    if public == "rejected":
        if code in INVALID_CODES:
            return 422
        if code in BROKER_REFUSED:
            return 502
        return 409
    return 502 if code in BROKER_GARBLED else 503


def order_json(order: OrderRow) -> dict[str, Any]:
    return {
        "order_id": order.broker_order_id, "tag": order.tag, "exchange": order.exchange,
        "symbol": order.trading_symbol, "side": order.side, "quantity": order.quantity,
        "product": order.product, "pricetype": order.order_type, "price": order.price,
        "trigger_price": order.trigger_price, "status": order.status.value,
        "filled_quantity": order.filled_quantity, "average_price": order.average_price,
        "reason": order.reason,
    }


def outcome_json(outcome: Outcome) -> tuple[dict[str, Any], int]:
    error = outcome.error
    # A noop's journaled "error" row is its reason, not a failure.
    reason = error.message if error is not None and outcome.status is SignalStatus.NOOP \
        else None
    body: dict[str, Any] = {
        "alert_id": outcome.alert_id, "status": public_status(outcome.status),
        "orders": [order_json(order) for order in outcome.orders],
        "error": ({"code": error.code, "message": error.message, "details": error.details}
                  if error is not None and reason is None else None),
    }
    if outcome.status is SignalStatus.NOOP:
        body["reason"] = reason or NOOP_REASON
    signal = outcome.signal
    if signal is not None and signal.notes:
        body["notes"] = list(signal.notes)
    if signal is not None and signal.resolution is not None:
        body["option"] = signal.resolution.to_dict()
    if signal is not None and signal.legs:
        body["legs"] = [{"symbol": leg.symbol,
                         "exchange": leg.exchange.value if leg.exchange else None,
                         "action": leg.side.value, "quantity": leg.quantity,
                         "option": leg.resolution.to_dict() if leg.resolution else None}
                        for leg in signal.legs]
    if outcome.original is not None:
        body["duplicate_of"] = {"alert_id": outcome.original.alert_id,
                                "status": public_status(outcome.original.status)}
    if outcome.accounts:
        body["accounts"] = [{"account": name, **outcome_json(part)[0]}
                            for name, part in outcome.accounts]
    return body, http_status(outcome.status, error)


def refusal_json(error: BridgeError, alert_id: str | None = None) -> tuple[dict[str, Any], int]:
    """A refusal before anything was journaled (auth, size, rate, unreadable body)."""
    return ({"alert_id": alert_id, "status": "rejected", "orders": [],
             "error": error.payload()}, error.http_status)
