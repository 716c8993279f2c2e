"""What the sandbox knows, as plain dataclasses, and their JSON form.

Everything the simulated broker knows (sessions, orders with their history, fills, positions,
last prices, login failures) is one :class:`SandboxState`; :mod:`~bridge.kotak.sandbox.state`
says where it is kept. The codec turns any of these records into JSON-ready values and back,
so a store can keep the state whole or record by record.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any


@dataclass
class HistoryRow:
    status: str
    at: datetime
    price: Decimal
    trigger: Decimal
    quantity: int
    filled: int
    order_type: str
    reason: str = ""


@dataclass
class OrderRecord:
    order_id: str
    ucc: str
    segment: str
    trading_symbol: str
    symbol: str
    token: str
    side: str  # B / S
    product: str
    order_type: str  # L / MKT / SL / SL-M as it now stands (MKT may become a protected L)
    quantity: int
    price: Decimal
    trigger: Decimal
    validity: str
    disclosed: int
    amo: bool
    tag: str
    status: str  # Kotak's ordSt wording
    placed_at: datetime
    updated_at: datetime
    ready_at: datetime  # when the exchange acknowledgement completes (the accept delay)
    filled: int = 0
    average_price: Decimal = Decimal(0)
    cancelled: int = 0
    reason: str = ""
    exchange_order_id: str = "NA"
    triggered: bool = False
    # Set by a rule at placement: what the exchange stage will do to this order.
    fate: str = ""
    fate_reason: str = ""
    history: list[HistoryRow] = field(default_factory=list)


@dataclass
class FillRecord:
    fill_id: str
    order_id: str
    ucc: str
    segment: str
    trading_symbol: str
    symbol: str
    side: str
    product: str
    order_type: str
    quantity: int
    price: Decimal
    at: datetime
    tag: str
    exchange_order_id: str


@dataclass
class PositionRecord:
    segment: str
    trading_symbol: str
    symbol: str
    token: str
    product: str
    day_buy_qty: int = 0
    day_sell_qty: int = 0
    day_buy_amt: Decimal = Decimal(0)
    day_sell_amt: Decimal = Decimal(0)
    cf_buy_qty: int = 0
    cf_sell_qty: int = 0
    cf_buy_amt: Decimal = Decimal(0)
    cf_sell_amt: Decimal = Decimal(0)
    updated_at: datetime | None = None

    @property
    def net(self) -> int:
        return self.day_buy_qty + self.cf_buy_qty - self.day_sell_qty - self.cf_sell_qty


@dataclass
class BookRecord:
    """One account's day: its orders, fills and positions."""

    ucc: str
    day: date
    cash: Decimal
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    working: list[str] = field(default_factory=list)  # ids of orders not yet final
    #: the day's ``ig`` tags, so a repeated tag is found without walking the whole book
    tags: set[str] = field(default_factory=set)
    fills: list[FillRecord] = field(default_factory=list)
    positions: dict[str, PositionRecord] = field(default_factory=dict)


@dataclass
class SessionRecord:
    sid: str
    token: str
    ucc: str
    kind: str  # view / trade
    flow: str  # totp / oauth2
    created_at: datetime
    expires_at: datetime
    ip: str


@dataclass
class BearerRecord:
    token: str
    consumer_key: str
    expires_at: datetime


@dataclass
class SandboxState:
    books: dict[str, BookRecord] = field(default_factory=dict)
    sessions: dict[str, SessionRecord] = field(default_factory=dict)
    bearers: dict[str, BearerRecord] = field(default_factory=dict)
    prices: dict[str, Decimal] = field(default_factory=dict)  # "segment|trading symbol"
    login_failures: dict[str, int] = field(default_factory=dict)  # ucc -> consecutive
    order_seq: int = 0
    fill_seq: int = 0
    exchange_seq: int = 0


# --- a small codec: dataclasses of plain values <-> JSON ----------------------------------


def encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, set):
        return sorted(encode(item) for item in value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


@functools.cache
def _hints(kind: type) -> dict[str, Any]:
    # Resolving a dataclass's annotations is most of what decoding a record costs; they
    # never change, so each class's are resolved once.
    return typing.get_type_hints(kind)


def decode(kind: Any, data: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return None if data is None else decode(options[0], data)
    if origin is list:
        (item,) = typing.get_args(kind)
        return [decode(item, entry) for entry in data]
    if origin is set:
        (item,) = typing.get_args(kind)
        return {decode(item, entry) for entry in data}
    if origin is dict:
        _, item = typing.get_args(kind)
        return {key: decode(item, entry) for key, entry in data.items()}
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        return kind(**{f.name: decode(hints[f.name], data[f.name])
                       for f in dataclasses.fields(kind) if f.name in data})
    if kind is Decimal:
        return Decimal(data)
    if kind is datetime:
        return datetime.fromisoformat(data)
    if kind is date:
        return date.fromisoformat(data)
    return data


def to_json(value: Any) -> str:
    """A record (or plain value) as compact JSON text."""
    return json.dumps(encode(value), separators=(",", ":"))


def from_json(kind: Any, text: str) -> Any:
    """The ``kind`` record that :func:`to_json` wrote as ``text``."""
    return decode(kind, json.loads(text))


def dumps(state: SandboxState) -> str:
    return to_json(state)


def loads(text: str) -> SandboxState:
    result: SandboxState = from_json(SandboxState, text)
    return result
