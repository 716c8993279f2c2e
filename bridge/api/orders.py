"""The order calls: each is a signal from source ``api``, answered in OpenAlgo's shape.

``placeorder``, ``placesmartorder``, ``splitorder``, ``optionsorder``, ``optionsmultiorder``,
``basketorder`` and ``closeposition`` become signals of DESIGN.md section 5 (one signal each;
``closeposition`` one per open position) and go to the same desk as the webhooks: journaled,
checked by the same rules, rate-limited, followed to Kotak's answer, fanned out to the
strategy's accounts and shown on the dashboard. ``cancelorder``, ``cancelallorder`` and
``modifyorder`` change orders already at Kotak through :mod:`bridge.orders.changes`: each
change is journaled as a signal of its own (shown on the dashboard), sent in a slot of the
account's Kotak rate limit like any order.

What ``status`` means, and what a trader's script should do with it:

``"success"`` (HTTP 200)
    Kotak accepted the order (``orderid`` is Kotak's order number), or a repeat of an accepted
    one was answered with its first outcome, or a ``position_size`` was already reached
    (nothing sent; ``message`` says so). Acceptance is not a fill: follow ``orderstatus``.
``"error"``
    Nothing stands at Kotak for it: refused as invalid (422), by a rule (409: trading
    window, kill switch, caps), by Kotak (502, with Kotak's reason), or no Kotak session
    (503). Fix what ``message`` names before sending again. One exception, HTTP 200: a
    multi-order call (basket, legs, split) of which some orders stand at Kotak and some do
    not; ``results`` says which. Never send such a call again whole: that would double the
    orders that stand.
``"queued"`` (HTTP 202)
    The bridge holds the order (Kotak's rate limit is busy) and sends it within
    ``SIGNAL_TTL_S`` seconds, or lets it expire rather than trade late. It is not placed yet
    and it is not lost: do not send it again; follow it with ``orderstatus``, passing the
    answer's ``alert_id`` as ``orderid``. The API waits a few seconds for a queued signal to
    reach Kotak before answering this, so a script sending orders one at a time rarely sees it.
``"unknown"`` (HTTP 504)
    The order went to Kotak and no answer came back; the bridge settles it from Kotak's order
    book by its tag and never sends it twice. Do not send it again: follow ``orderstatus``.

OpenAlgo's clients read any HTTP status but 200 as a failure with ``message``
``"HTTP <code>: <body>"``; a script that must tell "queued" from "refused" checks ``code``.

Repeats: a call carrying ``alert_id`` (or an ``Idempotency-Key`` header) is executed once; a
repeat is answered with the first outcome. Without one every call is a new order, as with
OpenAlgo (scripts send the same order twice on purpose), so a script that retries after a
timeout should send a key.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request
from marshmallow import RAISE, Schema, ValidationError, fields
from marshmallow.validate import Length

from bridge.api import symbols
from bridge.api.answers import ApiError, Caller, kotak_failure
from bridge.domain import (
    DEFAULT_ACCOUNT,
    Exchange,
    Instrument,
    Leg,
    OrderType,
    Product,
    Side,
    Signal,
    SignalSource,
)
from bridge.errors import InvalidSignal
from bridge.journal.rows import OrderRow, OrderState, SignalStatus
from bridge.kotak.errors import KotakError
from bridge.kotak.instruments import InstrumentError, InstrumentIndex
from bridge.metrics import count_signal
from bridge.orders.changes import ChangeCall, NewTerms, OrderChanges
from bridge.orders.desk import Intake, Outcome
from bridge.schemas import Choice, Price, WholeNumber, field_messages
from bridge.webhooks.responses import http_status, public_status

#: how long an answer waits, beyond the desk's time budget, for a queued signal to be sent
QUEUE_WAIT_S = 3.0
_EXTRA = ("validity", "amo", "alert_id", "comment")
_PLAIN = ("strategy", "symbol", "exchange", "action", "quantity", "pricetype", "product",
          "price", "trigger_price", "disclosed_quantity", *_EXTRA)
_OPTION = ("strategy", "underlying", "exchange", "expiry_date", "strike_int", "offset",
           "option_type", "action", "quantity", "pricetype", "product", "price",
           "trigger_price", "disclosed_quantity", "splitsize", *_EXTRA)
FIELDS: dict[str, tuple[str, ...]] = {
    "placeorder": _PLAIN,
    "placesmartorder": (*_PLAIN, "position_size", "position_scope"),
    "splitorder": (*_PLAIN, "splitsize"),
    "optionsorder": _OPTION,
    "optionsmultiorder": ("strategy", "underlying", "exchange", "expiry_date", "strike_int",
                          "legs", "product", "splitsize", *_EXTRA),
    "basketorder": ("strategy", "orders", "product", *_EXTRA),
    "closeposition": ("strategy", "alert_id", "comment"),
    "cancelallorder": ("strategy",),
    "cancelorder": ("orderid", "strategy"),
}
#: fields OpenAlgo's clients send at zero when unused, which a leg does not take
_ZERO_IN_LEGS = ("disclosed_quantity", "splitsize")


# --- the calls ----------------------------------------------------------------------------


def placeorder(caller: Caller) -> tuple[dict[str, Any], int]:
    payload = _signal_payload(caller)
    return _single(_submit(caller, payload))


def placesmartorder(caller: Caller) -> tuple[dict[str, Any], int]:
    payload = _signal_payload(caller)
    if payload.get("position_size") in (None, ""):
        raise ApiError(422, "position_size is required: the net position to reach",
                       "invalid_request", {"position_size": ["is required"]})
    return _single(_submit(caller, payload))


def splitorder(caller: Caller) -> tuple[dict[str, Any], int]:
    payload = _signal_payload(caller)
    if payload.get("splitsize") in (None, "", 0, "0"):
        raise ApiError(422, "splitsize is required: the largest quantity of one order",
                       "invalid_request", {"splitsize": ["is required"]})
    outcome = _submit(caller, payload)
    body, status = _single(outcome)
    signal = outcome.signal
    body["split_size"] = signal.splitsize if signal is not None else payload["splitsize"]
    body["total_quantity"] = signal.quantity if signal is not None else payload.get("quantity")
    body["results"] = [{"order_num": number, **_order_result(order),
                        "quantity": order.quantity}
                       for number, order in enumerate(_orders(outcome), start=1)]
    return body, status


def optionsorder(caller: Caller) -> tuple[dict[str, Any], int]:
    payload = _option_payload(caller)
    outcome = _submit(caller, payload)
    body, status = _single(outcome)
    signal = outcome.signal
    resolution = signal.resolution if signal is not None else None
    if resolution is not None:
        index = caller.index_or_none()
        body.update({
            "symbol": symbols.openalgo_name(index, resolution.exchange,
                                            resolution.trading_symbol),
            "exchange": resolution.exchange.value,
            "underlying": _underlying_name(caller, resolution.underlying),
            "underlying_ltp": float(resolution.underlying_price),
            "offset": resolution.offset, "option_type": resolution.option_type.value,
        })
    orders = _orders(outcome)
    if len(orders) > 1:
        body["results"] = [{"order_num": n, **_order_result(o), "quantity": o.quantity}
                           for n, o in enumerate(orders, start=1)]
    return body, status


def optionsmultiorder(caller: Caller) -> tuple[dict[str, Any], int]:
    caller.refuse_unknown(FIELDS[caller.name])
    payload = dict(caller.payload)
    legs = payload.get("legs")
    if not isinstance(legs, list) or not legs or not all(isinstance(x, dict) for x in legs):
        raise ApiError(422, "legs must be a list of legs (offset, option_type, action, "
                            "quantity)", "invalid_request", {"legs": ["must be a list"]})
    payload["legs"] = [_without_zeros(leg) for leg in legs]
    payload["underlying"] = _kotak_underlying(caller, payload)
    _idempotency(payload)
    outcome = _submit(caller, payload)
    body, status = _multi(caller, outcome, legs, option_legs=True)
    first = next((leg.resolution for leg in _legs(outcome) if leg.resolution), None)
    body["underlying"] = (_underlying_name(caller, first.underlying) if first is not None
                          else str(caller.payload.get("underlying", "")))
    if first is not None:
        body["underlying_ltp"] = float(first.underlying_price)
    return body, status


def basketorder(caller: Caller) -> tuple[dict[str, Any], int]:
    caller.refuse_unknown(FIELDS[caller.name])
    orders = caller.payload.get("orders")
    if not isinstance(orders, list) or not orders or not all(isinstance(o, dict)
                                                            for o in orders):
        raise ApiError(422, "orders must be a list of orders (symbol, exchange, action, "
                            "quantity)", "invalid_request", {"orders": ["must be a list"]})
    index = caller.index_or_none()
    legs: list[dict[str, Any]] = []
    for order in orders:
        leg = _without_zeros(order)
        if isinstance(leg.get("symbol"), str) and isinstance(leg.get("exchange"), str):
            leg["symbol"] = symbols.kotak_symbol(index, leg["symbol"], leg["exchange"])
        legs.append(leg)
    payload = {key: value for key, value in caller.payload.items() if key != "orders"}
    payload["legs"] = legs
    _idempotency(payload)
    outcome = _submit(caller, payload)
    return _multi(caller, outcome, orders, option_legs=False)


def closeposition(caller: Caller) -> tuple[dict[str, Any], int]:
    """Flatten every open position of the account: one signal per position, each with
    ``position_size`` 0, so each reads the live position and our working orders first."""
    caller.refuse_unknown(FIELDS[caller.name])
    key = _key(caller.payload)
    try:
        positions = [p for p in caller.broker.positions() if p.net_quantity != 0]
    except KotakError as exc:
        raise kotak_failure(exc, "the position book") from exc
    if not positions:
        return {"status": "success", "message": "No open positions to close"}, 200
    index = caller.index_or_none()
    results: list[dict[str, Any]] = []
    outcomes: list[Outcome] = []
    for position in positions:
        payload: dict[str, Any] = {
            "symbol": position.trading_symbol, "exchange": position.exchange.value,
            "action": "SELL" if position.net_quantity > 0 else "BUY", "position_size": 0,
            "product": position.product,
            "strategy": caller.payload.get("strategy") or "",
            "comment": caller.payload.get("comment") or "closeposition",
        }
        if key:
            payload["alert_id"] = _derived_key(
                key, f"{position.exchange.value}:{position.trading_symbol}:{position.product}")
        outcome = _submit(caller, payload)
        outcomes.append(outcome)
        status, message, _ = _verdict(outcome)
        results.append({
            "symbol": symbols.openalgo_name(index, position.exchange, position.trading_symbol),
            "exchange": position.exchange.value, "product": position.product,
            "quantity": position.net_quantity, "status": status,
            "orderid": _first_id(_orders(outcome)), "alert_id": outcome.alert_id,
            **({"message": message} if message else {})})
    failed = [r for r in results if r["status"] != "success"]
    if not failed:
        return {"status": "success", "message": "All Open Positions Squared Off",
                "results": results}, 200
    http = max(_verdict(o)[2] for o in outcomes)
    return {"status": "error", "results": results,
            "message": f"{len(failed)} of {len(results)} positions not closed: "
                       + "; ".join(f"{r['symbol']}: {r.get('message', r['status'])}"
                                   for r in failed)}, http


def cancelorder(caller: Caller) -> tuple[dict[str, Any], int]:
    caller.refuse_unknown(FIELDS[caller.name])
    order_id = caller.text_field("orderid")
    changed = _change(caller, f"the cancel of order {order_id}",
                      lambda changes, call: changes.cancel(call, order_id))
    if changed.status is SignalStatus.NOOP:
        return {"status": "success", "orderid": order_id,
                "message": f"order {order_id} was already cancelled"}, 200
    return {"status": "success", "orderid": order_id}, 200


def cancelallorder(caller: Caller) -> tuple[dict[str, Any], int]:
    """Cancel every working order of the account (OpenAlgo's meaning: the trader's own
    orders too, whatever their strategy; ``strategy`` is only recorded)."""
    caller.refuse_unknown(FIELDS[caller.name])
    done = _change(caller, "the order book", lambda changes, call: changes.cancel_all(call))
    cancelled = [c.order_id for c in done if c.status is SignalStatus.PLACED]
    failed = [{"orderid": c.order_id, "reason": c.error.message if c.error else c.status.value}
              for c in done if c.status is not SignalStatus.PLACED]
    message = f"Canceled {len(cancelled)} orders. Failed to cancel {len(failed)} orders."
    body = {"status": "error" if failed else "success", "message": message,
            "canceled_orders": cancelled, "failed_cancellations": failed}
    return body, 200


# --- building the signal ------------------------------------------------------------------


def _signal_payload(caller: Caller) -> dict[str, Any]:
    """The call's fields as a signal of DESIGN.md section 5, the symbol in Kotak's spelling."""
    caller.refuse_unknown(FIELDS[caller.name])
    payload = dict(caller.payload)
    symbol, exchange = payload.get("symbol"), payload.get("exchange")
    if isinstance(symbol, str) and isinstance(exchange, str):
        payload["symbol"] = symbols.kotak_symbol(caller.index_or_none(), symbol, exchange)
    _idempotency(payload)
    return payload


def _option_payload(caller: Caller) -> dict[str, Any]:
    caller.refuse_unknown(FIELDS[caller.name])
    payload = dict(caller.payload)
    payload["underlying"] = _kotak_underlying(caller, payload)
    _idempotency(payload)
    return payload


def _kotak_underlying(caller: Caller, payload: dict[str, Any]) -> Any:
    """An underlying named as OpenAlgo names a future (``NIFTY29DEC26FUT``) in Kotak's
    spelling, which the option picker reads; any other underlying as given."""
    underlying, exchange = payload.get("underlying"), payload.get("exchange")
    if not isinstance(underlying, str) or not isinstance(exchange, str):
        return underlying
    venue = symbols.derivatives_exchange(exchange)
    index = caller.index_or_none()
    if venue is None or index is None:
        return underlying
    future = symbols.derivative(index, underlying, venue)
    return future.trading_symbol if future is not None else underlying


def _underlying_name(caller: Caller, underlying: str) -> str:
    """The underlying of an answer in OpenAlgo's spelling (a future as ``NIFTY29DEC26FUT``)."""
    index = caller.index_or_none()
    venue = symbols.derivatives_exchange(str(caller.payload.get("exchange", "")))
    found = index.get(venue, underlying) if index is not None and venue is not None else None
    return symbols.openalgo_symbol(found) if found is not None else underlying


def _without_zeros(leg: dict[str, Any]) -> dict[str, Any]:
    """A leg without the fields OpenAlgo's clients send at zero by default."""
    return {key: value for key, value in leg.items()
            if not (key in _ZERO_IN_LEGS and str(value).strip() in ("0", "0.0", ""))}


def _idempotency(payload: dict[str, Any]) -> None:
    """Take the ``Idempotency-Key`` header as the signal's ``alert_id``."""
    key = _key(payload)
    if key:
        payload["alert_id"] = key


def _key(payload: dict[str, Any]) -> str:
    """The call's idempotency key: the ``Idempotency-Key`` header, else ``alert_id``."""
    header = request.headers.get("Idempotency-Key")
    given = payload.get("alert_id")
    if header is not None and given not in (None, "") and given != header:
        raise ApiError(422, "alert_id and the Idempotency-Key header differ: give one key",
                       "invalid_request", {"alert_id": ["differs from Idempotency-Key"]})
    return header or (given if isinstance(given, str) else "")


def _derived_key(key: str, part: str) -> str:
    """A key per position of one call, within the 80 characters an alert_id may have."""
    whole = f"{key}:{part}"
    if len(whole) <= 80:
        return whole
    return f"{key[:40]}:{hashlib.sha256(whole.encode()).hexdigest()[:32]}"


def _submit(caller: Caller, payload: dict[str, Any]) -> Outcome:
    """Hand the signal to the desk, and wait a little longer than the webhooks' time budget
    for one queued behind the rate limit: a script is better answered "placed" than
    "queued"."""
    if caller.services.accounts.fans_out and caller.account != DEFAULT_ACCOUNT:
        raise ApiError(422, "orders follow the strategy's accounts (ACCOUNTS_FILE); account "
                            "applies to reads, modifyorder and cancelorder", "invalid_request",
                       {"account": ["not for order calls when strategies fan out"]})
    outcome = caller.services.desk.submit(Intake(
        source=SignalSource.API, account=caller.account, remote_addr=caller.address,
        raw_body=caller.text, deadline=caller.deadline, payload=payload,
        received_at=g.get("arrived")))
    if outcome.signal_id is not None:
        until = time.monotonic() + QUEUE_WAIT_S
        while outcome.status.pending and time.monotonic() < until:
            time.sleep(0.05)
            outcome = caller.services.desk.outcome(outcome.signal_id)
    count_signal(SignalSource.API.value, public_status(outcome.status))
    current_app.logger.debug("answered %s from api %s: %s%s", outcome.alert_id, caller.name,
                             public_status(outcome.status),
                             f" ({outcome.error.code}: {outcome.error.message})"
                             if outcome.error else "")
    return outcome


# --- answering ----------------------------------------------------------------------------


def _verdict(outcome: Outcome) -> tuple[str, str, int]:
    """OpenAlgo's ``status``, the ``message`` and the HTTP status of a signal's outcome."""
    status = outcome.status
    error = outcome.error
    if status is SignalStatus.DUPLICATE:
        original = outcome.original
        if original is None:
            return "error", "a repeat of a signal no longer in the journal", 200
        first = Outcome(signal_id=original.id, alert_id=original.alert_id,
                        status=original.status, error=original.error, orders=outcome.orders)
        verdict, message, _ = _verdict(first)
        said = f"a repeat of {original.alert_id}, answered with its outcome (nothing sent)"
        return verdict, f"{said}: {message}" if message else said, 200
    public = public_status(status)
    http = http_status(status, error)
    if public == "placed":
        return "success", "", http
    if public == "noop":
        return "success", (error.message if error is not None else
                           "nothing sent: the position is already where position_size wants "
                           "it"), http
    if public == "partial":
        return "error", (f"partial: {error.message if error else 'some orders failed'}. The "
                         "placed orders stand at Kotak: do not send this call again"), http
    if public == "queued":
        return "queued", ("accepted by the bridge, not yet by Kotak (queued behind its rate "
                          "limit, or on its way): it is placed soon or expires, never late. "
                          "Do not send it again: follow it with orderstatus, orderid "
                          f"{outcome.alert_id}"), http
    if public == "unknown":
        return "unknown", ((error.message + ". " if error else "")
                           + "Sent to Kotak without an answer; the bridge settles it from "
                             "the order book. Do not send it again"), http
    return "error", error.message if error else public, http


def _single(outcome: Outcome) -> tuple[dict[str, Any], int]:
    status, message, http = _verdict(outcome)
    orders = _orders(outcome)
    body: dict[str, Any] = {"status": status, "alert_id": outcome.alert_id}
    order_id = _first_id(orders)
    if order_id is not None:
        body["orderid"] = order_id
    ids = [o.broker_order_id for o in orders if o.broker_order_id]
    if len(ids) > 1:
        body["orderids"] = ids
    if message:
        body["message"] = message
    if outcome.error is not None and status != "success":
        body["code"] = outcome.error.code
        if outcome.error.details:
            body["details"] = outcome.error.details
    if outcome.accounts:
        body["accounts"] = [{"account": name, **_single(part)[0]}
                            for name, part in outcome.accounts]
    return body, http


def _multi(caller: Caller, outcome: Outcome, asked: list[dict[str, Any]], *,
           option_legs: bool) -> tuple[dict[str, Any], int]:
    """A multi-leg call's answer, ``results`` in the order the legs were asked."""
    body, http = _single(outcome)
    body.pop("orderid", None)
    body.pop("orderids", None)
    legs = _legs(outcome)
    sent = _by_leg(legs, _orders(outcome))
    # The bridge sends BUY legs first, each side in the order given: undo that order.
    order = ([n for n, leg in enumerate(asked) if _side(leg) == "BUY"]
             + [n for n, leg in enumerate(asked) if _side(leg) != "BUY"])
    placed: dict[int, tuple[Leg, list[OrderRow]]] = {}
    if len(legs) == len(asked):
        placed = {order[k]: (legs[k], sent[k]) for k in range(len(legs))}
    index = caller.index_or_none()
    results: list[dict[str, Any]] = []
    for number, leg_asked in enumerate(asked):
        result: dict[str, Any] = {"leg": number + 1,
                                  "action": str(leg_asked.get("action", "")).upper()}
        if option_legs:
            result["offset"] = str(leg_asked.get("offset", "")).upper()
            result["option_type"] = str(leg_asked.get("option_type", "")).upper()
        else:
            result["exchange"] = str(leg_asked.get("exchange", "")).upper()
            result["quantity"] = leg_asked.get("quantity")
        result["symbol"] = str(leg_asked.get("symbol", ""))
        if number in placed:
            leg, rows = placed[number]
            if leg.exchange is not None:
                result["symbol"] = symbols.openalgo_name(index, leg.exchange, leg.symbol)
                result["exchange"] = leg.exchange.value
            result.update(_leg_result(rows, body))
        else:
            result["status"] = "error" if body["status"] != "success" else body["status"]
            if body.get("message"):
                result["message"] = body["message"]
        results.append(result)
    body["results"] = results
    return body, http


def _leg_result(rows: list[OrderRow], body: dict[str, Any]) -> dict[str, Any]:
    if not rows:
        status = body["status"] if body["status"] in ("queued", "unknown") else "error"
        return {"status": status, "message": body.get("message") or "not sent"}
    results = [_order_result(row) for row in rows]
    first = results[0]
    worst = next((r for r in results if r["status"] != "success"), first)
    answer = {"status": worst["status"], "orderid": first.get("orderid")}
    if "message" in worst:
        answer["message"] = worst["message"]
    if len(rows) > 1:
        answer["orderids"] = [r.get("orderid") for r in results]
    return answer


def _order_result(order: OrderRow) -> dict[str, Any]:
    """One order of an answer: ``success`` once Kotak accepted it."""
    if order.status.accepted:
        return {"status": "success", "orderid": order.broker_order_id}
    if order.status in (OrderState.CREATED, OrderState.SENDING):
        return {"status": "queued", "orderid": None}
    if order.status is OrderState.UNKNOWN:
        return {"status": "unknown", "orderid": None,
                "message": order.reason or "sent to Kotak without an answer"}
    return {"status": "error", "orderid": order.broker_order_id,
            "message": order.reason or order.status.value}


def _orders(outcome: Outcome) -> list[OrderRow]:
    return list(outcome.orders)


def _legs(outcome: Outcome) -> tuple[Leg, ...]:
    signal: Signal | None = outcome.signal
    return signal.legs if signal is not None else ()


def _by_leg(legs: tuple[Leg, ...], orders: list[OrderRow]) -> list[list[OrderRow]]:
    """Each leg's orders (one, or its slices), taken from the signal's orders in send order."""
    pool = list(orders)
    out: list[list[OrderRow]] = []
    for leg in legs:
        mine: list[OrderRow] = []
        need = leg.quantity
        for order in list(pool):
            if need <= 0:
                break
            if (leg.exchange is not None and order.exchange == leg.exchange.value
                    and order.trading_symbol == leg.symbol and order.side == leg.side.value):
                mine.append(order)
                pool.remove(order)
                need -= order.quantity
        out.append(mine)
    return out


def _side(leg: dict[str, Any]) -> str:
    text = str(leg.get("action", "")).strip().upper()
    return "BUY" if text in ("BUY", "B") else "SELL"


def _first_id(orders: list[OrderRow]) -> str | None:
    return next((o.broker_order_id for o in orders if o.broker_order_id), None)


# --- orders at Kotak ----------------------------------------------------------------------


_Done = TypeVar("_Done")


def _change(caller: Caller, what: str,
            act: Callable[[OrderChanges, ChangeCall], _Done]) -> _Done:
    """Hand a cancel or modify to the bridge's order changes, which look the order up, send
    the change and journal it; answer what they raise as OpenAlgo's clients read a refusal
    (``what``: "the cancel of order 2612..." in Kotak's failures)."""
    # From here on the call is a journaled signal of its own: a refusal is answered, and
    # not counted again among the requests refused at the door.
    g.api_order_call = False
    call = ChangeCall(source=SignalSource.API, account=caller.account,
                      remote_addr=caller.address, raw_body=caller.text,
                      received_at=g.get("arrived"))
    try:
        return act(caller.services.changes, call)
    except KotakError as exc:
        raise kotak_failure(exc, what) from exc
    except InstrumentError as exc:
        raise ApiError(503, str(exc), "instruments_unavailable") from exc
    except InvalidSignal as exc:
        raise ApiError(422, exc.message, "invalid_request", exc.details) from exc


class ModifySchema(Schema):
    """modifyorder's fields (OpenAlgo's client sends every one of them)."""

    class Meta:
        unknown = RAISE

    orderid = fields.String(required=True, validate=Length(1, 40))
    strategy = fields.String(load_default="")
    symbol = fields.String(load_default=None)
    exchange = fields.String(load_default=None)
    action = Choice(Side, load_default=None, aliases={"B": "BUY", "S": "SELL"})
    pricetype = Choice(OrderType, required=True,
                       aliases={"MKT": "MARKET", "L": "LIMIT", "LMT": "LIMIT", "SLM": "SL-M",
                                "SL_M": "SL-M"})
    product = Choice(Product, load_default=None, aliases={"INTRADAY": "MIS"})
    quantity = WholeNumber(required=True)
    price = Price(load_default=None)
    trigger_price = Price(load_default=None)
    disclosed_quantity = WholeNumber(load_default=0)


def modifyorder(caller: Caller) -> tuple[dict[str, Any], int]:
    """New terms for a working order; its contract, side and product stay (Kotak's rule)."""
    try:
        data = ModifySchema().load(caller.payload)
    except ValidationError as exc:
        messages = field_messages(exc)
        raise ApiError(422, "modifyorder: " + "; ".join(
            f"{name}: {problems[0] if isinstance(problems, list) else problems}"
            for name, problems in messages.items()), "invalid_request", messages) from exc
    order_id = data["orderid"].strip()
    symbol: str | None = data["symbol"]
    terms = NewTerms(
        order_type=data["pricetype"], quantity=data["quantity"], price=data["price"],
        trigger_price=data["trigger_price"], disclosed_quantity=data["disclosed_quantity"],
        side=data["action"], product=data["product"], symbol=symbol or "",
        contract=_contract(symbol, data["exchange"]) if symbol else None)
    changed = _change(caller, f"the change of order {order_id}",
                      lambda changes, call: changes.modify(call, order_id, terms))
    return {"status": "success", "orderid": changed.order_id}, 200


def _contract(symbol: str, exchange: str | None) -> Callable[[InstrumentIndex, Exchange],
                                                              Instrument]:
    """How to read a modify's ``symbol`` (OpenAlgo's spelling or the bridge's), on its
    ``exchange`` or else on the order's."""

    def read(index: InstrumentIndex, venue: Exchange) -> Instrument:
        return symbols.find(index, symbol, exchange or venue.value)

    return read
