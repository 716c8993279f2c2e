"""Refusals the bridge answers a caller with, each with its code and HTTP status.

The tree::

    BridgeError
    ├── InvalidSignal       422  the payload is not a valid signal (details name the fields)
    ├── Unauthorized        401  wrong or missing secret / signature
    ├── AddressNotAllowed   403  TradingView allow-list
    ├── PayloadTooLarge     413
    ├── TooManyRequests     429  inbound rate limit, or an address blocked after failed secrets
    │                            (also: Kotak's order rate limit full for a cancel or modify)
    ├── RuleRefusal         409  a rule refused the order (trading window, kill switch, caps...)
    └── NoSuchOrder         404  a cancel or modify names an order Kotak does not have today

What happens at the broker is not an exception here: it is the journal's status of the
signal and its orders, mapped to HTTP in :mod:`bridge.webhooks.responses`.
"""

from __future__ import annotations

from typing import Any


class BridgeError(Exception):
    code = "error"
    http_status = 500

    def __init__(self, message: str, details: dict[str, Any] | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code is not None:
            self.code = code

    def payload(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidSignal(BridgeError):
    code = "invalid_signal"
    http_status = 422


class Unauthorized(BridgeError):
    code = "unauthorized"
    http_status = 401


class AddressNotAllowed(BridgeError):
    code = "address_not_allowed"
    http_status = 403


class PayloadTooLarge(BridgeError):
    code = "too_large"
    http_status = 413


class TooManyRequests(BridgeError):
    code = "too_many_requests"
    http_status = 429


class RuleRefusal(BridgeError):
    code = "rule"
    http_status = 409


class NoSuchOrder(BridgeError):
    code = "no_such_order"
    http_status = 404
