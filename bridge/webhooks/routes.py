"""The three front doors: ``/webhook/tradingview``, ``/webhook/amibroker`` and
``/webhook/chartink/<secret>``.

Order of checks on every request: body size (413), TradingView's address allow-list when
enabled (403), an address blocked after repeated wrong secrets or flooding (429), a readable
body (422 with the JSON error's line and column), the secret (401, counted per address),
then the signal itself (see :mod:`bridge.orders.desk`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from flask import Blueprint, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import ValidationError

from bridge.clock import ist_text
from bridge.config import Settings
from bridge.domain import DEFAULT_ACCOUNT, Side, Signal, SignalSource
from bridge.errors import (
    AddressNotAllowed,
    BridgeError,
    InvalidSignal,
    PayloadTooLarge,
    RuleRefusal,
    TooManyRequests,
    Unauthorized,
)
from bridge.journal.doors import DoorBook
from bridge.metrics import count_refusal, count_signal
from bridge.orders.desk import Intake, Outcome, SignalDesk
from bridge.schemas import ChartinkSchema, field_messages, split_list
from bridge.webhooks import auth, intake
from bridge.webhooks.chartink import ChartinkConfig, ChartinkConfigError
from bridge.webhooks.responses import outcome_json, public_status, refusal_json

bp = Blueprint("webhooks", __name__, url_prefix="/webhook")

FAILURE_WINDOW = timedelta(minutes=10)
BLOCK_FOR = timedelta(minutes=15)


@dataclass
class Gate:
    """What the webhooks need from the application (kept in ``app.extensions``)."""

    settings: Settings
    desk: SignalDesk
    limiter: auth.InboundLimiter
    failures: auth.FailureBook
    chartink: ChartinkConfig
    doors: DoorBook


def _gate() -> Gate:
    gate: Gate = current_app.extensions["bridge.webhooks"]
    return gate


@bp.post("/tradingview")
def tradingview() -> ResponseReturnValue:
    gate = _gate()
    address = _address(gate, tradingview=True)
    _, text, payload = read_body(gate, allow_form=False)
    secret, readable = intake.take_secret(payload)
    who = admit(gate, address, secret if readable else "")
    _check_secret(gate, who, secret if readable else "")
    return _submit(gate, SignalSource.TRADINGVIEW, address, text, payload)


@bp.post("/amibroker")
def amibroker() -> ResponseReturnValue:
    gate = _gate()
    address = _address(gate)
    raw, text, payload = read_body(gate, allow_form=True)
    secret, readable = intake.take_secret(payload)
    header = request.headers.get("X-Webhook-Secret")
    signature = request.headers.get("X-Signature")
    expected = gate.settings.webhook_secret.reveal()
    given = [value for value in (secret, header) if value is not None]
    presented = "signed" if signature is not None else (given[0] if given else None)
    who = admit(gate, address, presented if readable else "")
    if signature is not None:
        stamp = request.headers.get("X-Timestamp", "")
        if not auth.signature_valid(expected, stamp, signature, raw):
            fail_auth(gate, who, "the X-Signature does not match, or X-Timestamp is more "
                                 "than 60 s away or not a number")
    elif not given:
        fail_auth(gate, who, "no secret: send it in the body (secret) or the "
                             "X-Webhook-Secret header")
    if not readable or any(not auth.secret_matches(value, expected) for value in given):
        fail_auth(gate, who, "wrong secret")
    if signature is not None and not gate.doors.use_signature(
            auth.signature_digest(signature), timedelta(seconds=2 * auth.SIGNATURE_WINDOW_S)):
        # A signature is good once: a copy sent again inside its window (after the dedup
        # window, say) would otherwise place a second order.
        fail_auth(gate, who, "this signed request was already received once; sign each "
                             "request anew (X-Timestamp and X-Signature)")
    gate.failures.succeeded(who)
    return _submit(gate, SignalSource.AMIBROKER, address, text, payload)


@bp.post("/chartink")
def chartink_without_secret() -> ResponseReturnValue:
    gate = _gate()
    address = _address(gate)
    who = admit(gate, address, None)
    fail_auth(gate, who, "the ChartInk webhook URL carries the secret: "
                         "/webhook/chartink/<WEBHOOK_SECRET>")


@bp.post("/chartink/<path:secret>")
def chartink(secret: str) -> ResponseReturnValue:
    gate = _gate()
    address = _address(gate)
    who = admit(gate, address, secret)
    if not auth.secret_matches(secret, gate.settings.webhook_secret.reveal()):
        fail_auth(gate, who, "wrong secret in the URL")
    gate.failures.succeeded(who)
    _, text, payload = read_body(gate, allow_form=True)
    return _chartink(gate, address, text, payload)


# --- the steps ----------------------------------------------------------------------------


def _address(gate: Gate, tradingview: bool = False) -> str:
    """The caller's address; with ``TRADINGVIEW_IPS_ONLY``, only TradingView's (403)."""
    settings = gate.settings
    address = auth.client_address(request.remote_addr or "",
                                  request.headers.get("X-Forwarded-For"),
                                  settings.trusted_proxies)
    g.address = address
    if tradingview and settings.tradingview_ips_only and address not in auth.TRADINGVIEW_IPS:
        raise AddressNotAllowed(f"{address} is not one of TradingView's webhook addresses "
                                "(TRADINGVIEW_IPS_ONLY is on)", {"address": address})
    return address


def admit(gate: Gate, address: str, credential: str | None) -> str:
    """Refuse a blocked or flooding caller (429); return whom failures are counted against.

    On a shared address (TradingView's, or a trusted proxy that named no client) the caller
    is the address with the credential presented: wrong secrets from others sharing it must
    not block the owner's alerts, which present the right one.
    """
    shared = address in auth.TRADINGVIEW_IPS or (
        gate.settings.trusted_proxies > 0 and address == (request.remote_addr or ""))
    who = auth.caller(address, credential, shared)
    blocked = gate.failures.blocked_until(who)
    if blocked is not None:
        raise TooManyRequests(f"{address} is blocked until {ist_text(blocked)} after "
                              "repeated wrong secrets", {"address": address},
                              code="address_blocked")
    if not gate.limiter.allow(who):
        raise TooManyRequests(f"more than {gate.limiter.per_minute} signals a minute from "
                              f"{address}", {"address": address})
    return who


def read_body(gate: Gate, *, allow_form: bool) -> tuple[bytes, str, dict[str, Any]]:
    """The body as bytes, as text and parsed (413 when too large, 422 when unreadable)."""
    limit = gate.settings.intake.max_body_bytes
    if (request.content_length or 0) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit // 1024} KiB",
                              {"limit_bytes": limit})
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit // 1024} KiB",
                              {"limit_bytes": limit})
    text = intake.decode(raw)
    return raw, text, intake.parse(text, allow_form=allow_form)


def _check_secret(gate: Gate, address: str, secret: str | None) -> None:
    if secret is None:
        fail_auth(gate, address, "no secret: add \"secret\": \"<WEBHOOK_SECRET>\" to the "
                                 "alert message")
    elif not auth.secret_matches(secret, gate.settings.webhook_secret.reveal()):
        fail_auth(gate, address, "wrong secret")
    gate.failures.succeeded(address)


def fail_auth(gate: Gate, who: str, why: str) -> NoReturn:
    """Count a failed credential against ``who`` and refuse the request (401)."""
    gate.failures.failed(who)
    current_app.logger.warning("refused a signal from %s: %s", who.partition("|")[0], why)
    raise Unauthorized(why)


def deadline_of(gate: Gate) -> float:
    """The monotonic time by which this request must be answered."""
    started: float = g.get("started", time.monotonic())
    return started + gate.settings.intake.response_budget_ms / 1000


def _submit(gate: Gate, source: SignalSource, address: str, text: str,
            payload: dict[str, Any]) -> ResponseReturnValue:
    outcome = gate.desk.submit(Intake(
        source=source, account=_account(), remote_addr=address,
        raw_body=intake.masked(text, gate.settings.webhook_secret.reveal()),
        deadline=deadline_of(gate), payload=payload, dedup_basis=intake.canonical(payload),
        received_at=g.get("arrived")))
    _log(source, outcome)
    body, status = outcome_json(outcome)
    return jsonify(body), status


def _account() -> str:
    """Signals trade the default account until accounts fan out (issue 6)."""
    return DEFAULT_ACCOUNT


def _chartink(gate: Gate, address: str, text: str,
              payload: dict[str, Any]) -> ResponseReturnValue:
    try:
        data = ChartinkSchema().load(payload)
        stocks = split_list(data["stocks"], "stocks")
        prices = split_list(data["trigger_prices"], "trigger_prices")
    except ValidationError as exc:
        raise InvalidSignal("not a ChartInk alert: " + str(field_messages(exc)),
                            field_messages(exc)) from exc
    if not stocks:
        raise InvalidSignal("the ChartInk alert lists no stocks", {"stocks": ["is empty"]})
    try:
        rule = gate.chartink.match(data["scan_name"], data["alert_name"],
                                   data["scan_url"].rstrip("/").rsplit("/", 1)[-1])
    except ChartinkConfigError as exc:
        raise RuleRefusal(str(exc), {}, code="chartink_config") from exc
    if rule is None:
        names = sorted(gate.chartink.rules())
        raise InvalidSignal(f"no scan configured for {data['scan_name']!r}",
                            {"scan_name": [f"not in {gate.chartink.path}; configured: "
                                           f"{', '.join(names)}"]})
    if len(stocks) > rule.max_stocks:
        raise RuleRefusal(f"scan {rule.name!r} listed {len(stocks)} stocks, more than its "
                          f"max_stocks of {rule.max_stocks}; none were traded",
                          {"stocks": len(stocks), "max_stocks": rule.max_stocks},
                          code="too_many_stocks")
    masked = intake.masked(text, gate.settings.webhook_secret.reveal())
    deadline = deadline_of(gate)
    outcomes: list[tuple[str, Outcome]] = []
    for position, stock in enumerate(stocks):
        price = _price(prices[position] if position < len(prices) else "")
        signal = Signal(
            source=SignalSource.CHARTINK, symbol=stock, exchange=rule.exchange,
            side=Side.SELL if rule.action == "SELL" else Side.BUY,
            quantity=rule.quantity_for(price) if rule.action != "EXIT" else 0,
            product=rule.product, price=price,
            position_size=0 if rule.action == "EXIT" else None, strategy=rule.strategy)
        if rule.action == "EXIT":
            signal = replace(signal, side=Side.SELL)
        outcome = gate.desk.submit(Intake(
            source=SignalSource.CHARTINK, account=_account(), remote_addr=address,
            raw_body=masked, deadline=deadline, signal=signal,
            dedup_basis=f"{intake.canonical(payload)}|{stock}", received_at=g.get("arrived")))
        _log(SignalSource.CHARTINK, outcome)
        outcomes.append((stock, outcome))
    return _chartink_answer(outcomes)


def _chartink_answer(outcomes: list[tuple[str, Outcome]]) -> ResponseReturnValue:
    answers = [(stock, *outcome_json(outcome)) for stock, outcome in outcomes]
    statuses = [body["status"] for _, body, _ in answers]
    for wanted in ("placed", "queued", "noop", "duplicate"):
        if wanted in statuses:
            chosen = next(item for item in answers if item[1]["status"] == wanted)
            break
    else:
        chosen = answers[0]
    _, body, status = chosen
    return jsonify({
        "alert_id": ",".join(str(b["alert_id"]) for _, b, _ in answers),
        "status": body["status"],
        "orders": [order for _, b, _ in answers for order in b["orders"]],
        "error": body["error"],
        "signals": [{"symbol": stock, **b} for stock, b, _ in answers],
    }), status


def _price(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() and value > 0 else None


def _log(source: SignalSource, outcome: Outcome) -> None:
    count_signal(source.value, public_status(outcome.status))
    orders = ", ".join(f"{o.side} {o.quantity} {o.trading_symbol} -> "
                       f"{o.broker_order_id or '-'} {o.status.value}" for o in outcome.orders)
    # The signal's one INFO line comes from the orders layer at its final status
    # (bridge.orders.report); what the caller was told is detail.
    current_app.logger.debug(
        "answered %s from %s: %s%s%s", outcome.alert_id, source.value,
        public_status(outcome.status), f" [{orders}]" if orders else "",
        f" ({outcome.error.code}: {outcome.error.message})" if outcome.error else "")


def render_refusal(error: BridgeError) -> ResponseReturnValue:
    body, status = refusal_json(error)
    count_refusal(body["status"])
    _journal_refusal(error)
    return jsonify(body), status


def _journal_refusal(error: BridgeError) -> None:
    """A request refused at the door never became a signal: journal it (counted per minute)
    so the dashboard shows it. Never lets a journal problem change the answer."""
    if request.blueprint != bp.name:
        return
    source = (request.endpoint or "").rpartition(".")[2].replace("_without_secret", "")
    address = g.get("address") or request.remote_addr or ""
    try:
        _gate().doors.refused(source, address, error.code, error.message)
    except Exception:
        current_app.logger.warning("could not journal a refused request", exc_info=True)
