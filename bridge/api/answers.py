"""What every call of the REST API shares: its refusals, the caller it serves, and numbers in
OpenAlgo's spelling.

A refusal is answered as OpenAlgo's clients read one, ``{"status": "error", "message": ...}``,
with the bridge's ``code`` beside it and the HTTP status of DESIGN.md section 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bridge.errors import BridgeError
from bridge.kotak.client import KotakClient
from bridge.kotak.errors import (
    BrokerRejected,
    BrokerUnavailable,
    KotakError,
    OutcomeUnknown,
    ProtocolError,
    RateLimited,
    RequestInvalid,
    SessionInvalid,
)
from bridge.kotak.instruments import InstrumentIndex, InstrumentsUnavailable
from bridge.webhooks.routes import Gate
from bridge.wiring import Services


class ApiError(BridgeError):
    """A call refused with ``http_status``; ``details`` name the fields at fault."""

    def __init__(self, http_status: int, message: str, code: str = "api_error",
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details, code)
        self.http_status = http_status


def error_body(error: BridgeError) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "message": error.message, "code": error.code}
    if error.details:
        body["details"] = error.details
    return body


def kotak_failure(exc: KotakError, what: str) -> ApiError:
    """A Kotak call that failed, as the call's answer (``what``: "the order book" ...)."""
    if isinstance(exc, SessionInvalid):
        return ApiError(503, f"no valid Kotak session for {what}: {exc.message}",
                        "broker_session")
    if isinstance(exc, RateLimited):
        return ApiError(503, f"Kotak is rate-limiting {what}: {exc.message}",
                        "broker_rate_limited")
    if isinstance(exc, BrokerUnavailable):
        return ApiError(503, f"Kotak did not answer {what}: {exc.message}", "broker_unavailable")
    if isinstance(exc, BrokerRejected):
        return ApiError(502, exc.message, "broker_rejected")
    if isinstance(exc, RequestInvalid):
        return ApiError(422, exc.message, "invalid_request")
    if isinstance(exc, OutcomeUnknown):
        return ApiError(504, f"{what}: sent to Kotak without an answer ({exc.message}); check "
                             "the order book before trying again", "outcome_unknown")
    if isinstance(exc, ProtocolError):
        return ApiError(502, f"Kotak's answer to {what} cannot be read: {exc.message}",
                        "broker_protocol")
    return ApiError(502, f"{what}: {exc.message}", "broker_error")


@dataclass
class Caller:
    """An authenticated call: what it asked and on whose behalf."""

    services: Services
    gate: Gate
    name: str  # placeorder, orderbook ...
    payload: dict[str, Any]  # the body's fields, apikey and account taken out
    text: str  # the body as journaled: the key masked
    address: str
    account: str
    deadline: float  # monotonic time by which a signal's answer is due

    @property
    def broker(self) -> KotakClient:
        return self.services.brokers[self.account]

    def index(self) -> InstrumentIndex:
        """The day's scrip master (503 while none is loaded)."""
        try:
            return self.services.instruments.current()
        except InstrumentsUnavailable as exc:
            raise ApiError(503, str(exc), "instruments_unavailable") from exc

    def index_or_none(self) -> InstrumentIndex | None:
        try:
            return self.services.instruments.current()
        except InstrumentsUnavailable:
            return None

    def text_field(self, name: str, *, required: bool = True, default: str = "") -> str:
        """A field as text (numbers accepted as written); 422 when required and absent."""
        value = self.payload.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise ApiError(422, f"{name} is required", "invalid_request",
                               {name: ["is required"]})
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ApiError(422, f"{name} must be text", "invalid_request",
                           {name: ["must be text"]})
        return str(value).strip()

    def refuse_unknown(self, accepted: tuple[str, ...]) -> None:
        """422 naming fields this call does not take (a misspelt one must not be ignored)."""
        unknown = sorted(set(self.payload) - set(accepted))
        if unknown:
            raise ApiError(422, f"{self.name} does not take {', '.join(unknown)}; it takes "
                                f"{', '.join(sorted({*accepted, 'apikey', 'account'}))}",
                           "invalid_request",
                           {name: ["Unknown field."] for name in unknown})


def number(value: Decimal | None) -> float:
    """A price or amount as a JSON number (OpenAlgo's books give floats)."""
    return float(value) if value is not None else 0.0


def money(value: Decimal) -> str:
    """An amount as OpenAlgo's funds and positions write it: text with two decimals."""
    return f"{value.quantize(Decimal('0.01')):f}"
