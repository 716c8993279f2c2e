"""The read calls: Kotak's books in OpenAlgo's field names, symbols in OpenAlgo's format.

``orderbook``, ``orderstatus``, ``tradebook``, ``positionbook``, ``openposition``,
``holdings`` and ``funds`` read the account's books at Kotak (the ``account`` field picks one
of ``ACCOUNTS_FILE``, else the default account); ``quotes`` Kotak's last price; ``expiry`` and
``optionsymbol`` the day's scrip master; ``ping`` only proves the key.

Numbers follow OpenAlgo's documented samples: order quantities and position figures as text,
prices as numbers, funds as text with two decimals. Timestamps are IST, ``DD-Mon-YYYY
HH:MM:SS``.
"""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError

from bridge.api import symbols
from bridge.api.answers import ApiError, Caller, kotak_failure, money, number
from bridge.clock import IST
from bridge.domain import (
    BrokerOrder,
    Exchange,
    Instrument,
    OrderStatus,
    Position,
    SignalSource,
)
from bridge.errors import InvalidSignal
from bridge.kotak.errors import KotakError
from bridge.kotak.instruments import InstrumentIndex, UnknownInstrument
from bridge.orders.service import BOOK_WAIT_S, QUOTE_WAIT_S
from bridge.schemas import field_messages, load_signal
from bridge.webhooks.responses import public_status

#: OpenAlgo's order_status words
_STATUS = {OrderStatus.PENDING: "open", OrderStatus.OPEN: "open",
           OrderStatus.TRIGGER_PENDING: "trigger pending", OrderStatus.COMPLETE: "complete",
           OrderStatus.REJECTED: "rejected", OrderStatus.CANCELLED: "cancelled"}
#: Kotak's price-type codes in OpenAlgo's words
_PRICE_TYPE = {"MKT": "MARKET", "L": "LIMIT", "SL": "SL", "SL-M": "SL-M"}
_OPTION_SYMBOL_FIELDS = ("underlying", "exchange", "expiry_date", "offset", "option_type",
                         "strike_int", "strategy")


def ping(caller: Caller) -> tuple[dict[str, Any], int]:
    return {"status": "success", "data": {
        "broker": "kotak", "message": "pong", "mode": caller.services.settings.mode.value,
        "account": caller.account}}, 200


def funds(caller: Caller) -> tuple[dict[str, Any], int]:
    try:
        held = caller.broker.funds()
    except KotakError as exc:
        raise kotak_failure(exc, "the funds") from exc
    return {"status": "success", "data": {
        "availablecash": money(held.available), "collateral": money(held.collateral),
        "m2mrealized": money(held.realised_pnl), "m2munrealized": money(held.unrealised_pnl),
        "utiliseddebits": money(held.margin_used)}}, 200


def orderbook(caller: Caller) -> tuple[dict[str, Any], int]:
    try:
        book = caller.broker.order_book(deadline=time.monotonic() + BOOK_WAIT_S)
    except KotakError as exc:
        raise kotak_failure(exc, "the order book") from exc
    index = caller.index_or_none()
    orders = [_order(index, order) for order in book]
    return {"status": "success", "data": {"orders": orders, "statistics": {
        "total_buy_orders": sum(1 for o in orders if o["action"] == "BUY"),
        "total_sell_orders": sum(1 for o in orders if o["action"] == "SELL"),
        "total_completed_orders": sum(1 for o in orders if o["order_status"] == "complete"),
        "total_open_orders": sum(1 for o in orders
                                 if o["order_status"] in ("open", "trigger pending")),
        "total_rejected_orders": sum(1 for o in orders if o["order_status"] == "rejected"),
    }}}, 200


def orderstatus(caller: Caller) -> tuple[dict[str, Any], int]:
    """One order by Kotak's order number; also by the ``alert_id`` an order call answered
    (how a queued order is followed until Kotak numbers it)."""
    order_id = caller.text_field("orderid")
    index = caller.index_or_none()
    found = _kotak_order(caller, order_id)
    if found is not None:
        return {"status": "success", "data": _order(index, found)}, 200
    journal = caller.services.journal
    rows = [r for r in journal.signals.signals_by_alert_id(order_id) if r.account == caller.account]
    if not rows:
        raise ApiError(404, f"order {order_id} is not in today's order book, and no signal "
                            "has that alert_id", "no_such_order",
                       {"orderid": ["not in today's order book"]})
    row = rows[0]
    numbered = [o for o in journal.orders.orders_of(row.id) if o.broker_order_id]
    if numbered:
        booked = _kotak_order(caller, numbered[0].broker_order_id or "")
        if booked is not None:
            return {"status": "success", "data": {**_order(index, booked),
                                                  "alert_id": row.alert_id}}, 200
    signal = row.signal
    data: dict[str, Any] = {
        "orderid": None, "alert_id": row.alert_id, "order_status": public_status(row.status),
        "symbol": row.symbol, "exchange": signal.exchange.value
        if signal is not None and signal.exchange else None,
        "action": signal.side.value if signal is not None else None,
        "quantity": str(signal.quantity) if signal is not None else None,
        "timestamp": _when(row.received_at)}
    if row.error is not None:
        data["message"] = row.error.message
    return {"status": "success", "data": data}, 200


def tradebook(caller: Caller) -> tuple[dict[str, Any], int]:
    try:
        trades = caller.broker.trade_book()
    except KotakError as exc:
        raise kotak_failure(exc, "the trade book") from exc
    index = caller.index_or_none()
    return {"status": "success", "data": [{
        "action": trade.side.value,
        "symbol": symbols.openalgo_name(index, trade.exchange, trade.trading_symbol),
        "exchange": trade.exchange.value, "orderid": trade.order_id,
        "product": trade.product, "quantity": trade.quantity,
        "average_price": number(trade.price),
        "timestamp": _when(trade.filled_at),
        "trade_value": number(trade.price * trade.quantity),
    } for trade in trades]}, 200


def positionbook(caller: Caller) -> tuple[dict[str, Any], int]:
    positions = _positions(caller)
    index = caller.index_or_none()
    prices = _last_prices(caller, index, [p for p in positions if p.net_quantity])
    rows = []
    for position in positions:
        last = prices.get((position.exchange, position.trading_symbol))
        if not position.net_quantity:
            pnl = position.sell_amount - position.buy_amount
        else:
            pnl = position.pnl(last) if last is not None else Decimal(0)
        rows.append({
            "symbol": symbols.openalgo_name(index, position.exchange, position.trading_symbol),
            "exchange": position.exchange.value, "product": position.product,
            "quantity": str(position.net_quantity),
            "average_price": money(position.average_price),
            "ltp": money(last) if last is not None else "0.00", "pnl": money(pnl)})
    return {"status": "success", "data": rows}, 200


def openposition(caller: Caller) -> tuple[dict[str, Any], int]:
    symbol = caller.text_field("symbol")
    exchange = caller.text_field("exchange")
    product = caller.text_field("product").upper()
    instrument = _instrument(caller, symbol, exchange)
    net = sum(p.net_quantity for p in _positions(caller)
              if p.exchange is instrument.exchange
              and p.trading_symbol == instrument.trading_symbol and p.product == product)
    return {"status": "success", "quantity": str(net)}, 200


def holdings(caller: Caller) -> tuple[dict[str, Any], int]:
    try:
        held = caller.broker.holdings()
    except KotakError as exc:
        raise kotak_failure(exc, "the holdings") from exc
    rows = []
    invested_total = value_total = Decimal(0)
    for holding in held:
        invested = holding.average_price * holding.quantity
        value = holding.market_value or holding.last_price * holding.quantity
        pnl = value - invested
        invested_total += invested
        value_total += value
        rows.append({"symbol": holding.symbol, "exchange": holding.exchange.value,
                     "product": "CNC", "quantity": holding.quantity,
                     "pnl": round(float(pnl), 2),
                     "pnlpercent": round(float(pnl / invested * 100), 2) if invested else 0.0})
    total_pnl = value_total - invested_total
    return {"status": "success", "data": {"holdings": rows, "statistics": {
        "totalholdingvalue": round(float(value_total), 2),
        "totalinvvalue": round(float(invested_total), 2),
        "totalprofitandloss": round(float(total_pnl), 2),
        "totalpnlpercentage": round(float(total_pnl / invested_total * 100), 2)
        if invested_total else 0.0}}}, 200


def quotes(caller: Caller) -> tuple[dict[str, Any], int]:
    """The last traded price. Kotak's quotes call is read for its last price only: the other
    fields of OpenAlgo's answer are ``null``, never a made-up 0."""
    symbol = caller.text_field("symbol")
    exchange = caller.text_field("exchange")
    instrument = _instrument(caller, symbol, exchange)
    try:
        prices = caller.broker.last_prices([instrument])
    except KotakError as exc:
        raise kotak_failure(exc, "the quote") from exc
    last = prices.get((instrument.exchange, instrument.trading_symbol))
    if last is None:
        raise ApiError(502, f"Kotak sent no last price for {symbol} on {exchange}",
                       "no_price")
    return {"status": "success", "data": {
        "ltp": float(last), "open": None, "high": None, "low": None, "bid": None, "ask": None,
        "prev_close": None, "volume": None}}, 200


def expiry(caller: Caller) -> tuple[dict[str, Any], int]:
    symbol = caller.text_field("symbol")
    exchange = caller.text_field("exchange")
    kind = caller.text_field("instrumenttype").lower()
    if kind not in ("options", "futures"):
        raise ApiError(422, "instrumenttype must be options or futures", "invalid_request",
                       {"instrumenttype": ["must be options or futures"]})
    venue = symbols.derivatives_exchange(exchange)
    if venue is None:
        raise ApiError(422, f"{exchange!r} lists no futures or options (NFO, BFO, CDS, MCX)",
                       "invalid_request", {"exchange": ["must be NFO, BFO, CDS or MCX"]})
    days = symbols.expiries(caller.index(), symbol, venue, kind == "options")
    if not days:
        raise ApiError(404, f"no unexpired {kind} of {symbol.upper()} on {venue.value} in "
                            "today's scrip master", "no_expiries",
                       {"symbol": [f"has no {kind} on {venue.value}"]})
    return {"status": "success", "data": [symbols.listed_expiry_text(d) for d in days],
            "message": f"Found {len(days)} expiry dates for {symbol.upper()} {kind} in "
                       f"{venue.value}"}, 200


def optionsymbol(caller: Caller) -> tuple[dict[str, Any], int]:
    """The contract an options order with these fields would trade now (nothing is placed):
    the same pick, from the same quote, as the order calls make."""
    caller.refuse_unknown(_OPTION_SYMBOL_FIELDS)
    payload: dict[str, Any] = {key: value for key, value in caller.payload.items()
                               if key != "strategy"}
    index = caller.index()
    underlying, exchange = payload.get("underlying"), payload.get("exchange")
    venue = symbols.derivatives_exchange(exchange) if isinstance(exchange, str) else None
    if isinstance(underlying, str) and venue is not None:
        future = symbols.derivative(index, underlying, venue)
        if future is not None:
            payload["underlying"] = future.trading_symbol
    try:
        request = load_signal({**payload, "action": "BUY", "quantity": 1}, SignalSource.API)
    except ValidationError as exc:
        messages = field_messages(exc)
        raise ApiError(422, "optionsymbol: " + "; ".join(
            f"{name}: {problems[0] if isinstance(problems, list) else problems}"
            for name, problems in messages.items()), "invalid_request", messages) from exc
    pick = caller.services.orders.pick_option
    if request.option is None or pick is None:
        raise ApiError(422, "options by strike offset are not available here",
                       "invalid_request", {"underlying": ["options by offset are not set up"]})
    try:
        option, resolution = pick(index, request.option, False,
                                  time.monotonic() + QUOTE_WAIT_S, {})
    except InvalidSignal as exc:
        raise ApiError(exc.http_status, exc.message, exc.code, exc.details) from exc
    freeze = option.freeze_quantity
    return {"status": "success", "symbol": symbols.openalgo_symbol(option),
            "exchange": option.exchange.value, "lotsize": option.lot_size,
            "tick_size": float(option.tick_size),
            "freeze_qty": freeze - 1 if freeze and freeze > 1 else None,
            "underlying_ltp": float(resolution.underlying_price)}, 200


# --- helpers ------------------------------------------------------------------------------


def _order(index: InstrumentIndex | None, order: BrokerOrder) -> dict[str, Any]:
    kind = _PRICE_TYPE.get(order.order_type.upper(), order.order_type)
    # OpenAlgo shows a limit order's own price until it fills, else the average fill price.
    shown = order.price if kind in ("LIMIT", "SL") and order.status is not \
        OrderStatus.COMPLETE else order.average_price
    return {
        "action": order.side.value,
        "symbol": symbols.openalgo_name(index, order.exchange, order.trading_symbol),
        "exchange": order.exchange.value, "orderid": order.order_id,
        "product": order.product, "quantity": str(order.quantity), "price": number(shown),
        "pricetype": kind, "order_status": _STATUS[order.status],
        "trigger_price": number(order.trigger_price),
        "average_price": number(order.average_price),
        "filled_quantity": order.filled_quantity,
        "timestamp": _when(order.updated_at),
        **({"rejection_reason": order.rejection_reason} if order.rejection_reason else {}),
    }


def _kotak_order(caller: Caller, order_id: str) -> BrokerOrder | None:
    try:
        return caller.broker.order(order_id, deadline=time.monotonic() + BOOK_WAIT_S)
    except KotakError as exc:
        raise kotak_failure(exc, f"order {order_id}") from exc


def _positions(caller: Caller) -> list[Position]:
    try:
        return caller.broker.positions()
    except KotakError as exc:
        raise kotak_failure(exc, "the position book") from exc


def _last_prices(caller: Caller, index: InstrumentIndex | None,
                 positions: list[Position]) -> dict[tuple[Exchange, str], Decimal]:
    """Last prices to mark open positions at; none when Kotak has no quote to give (the
    position book is still worth answering)."""
    if index is None or not positions:
        return {}
    wanted = [i for p in positions if (i := index.get(p.exchange, p.trading_symbol))]
    try:
        return caller.broker.last_prices(wanted)
    except KotakError:
        return {}


def _instrument(caller: Caller, symbol: str, exchange: str) -> Instrument:
    try:
        return symbols.find(caller.index(), symbol, exchange)
    except UnknownInstrument as exc:
        raise ApiError(422, str(exc), "invalid_request", {"symbol": [str(exc)]}) from exc


def _when(moment: datetime | None) -> str:
    return moment.astimezone(IST).strftime("%d-%b-%Y %H:%M:%S") if moment else ""
