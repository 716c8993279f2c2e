"""The bridge's trading vocabulary: enums and frozen value types.

Pure data, no I/O. Prices are ``Decimal`` rupees, quantities are ``int`` units (shares, or
lot size x lots for derivatives), times are timezone-aware. Every layer speaks these types;
Kotak's wire spelling of them lives only in :mod:`bridge.kotak.wire`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

DEFAULT_ACCOUNT = "default"


class Exchange(StrEnum):
    NSE = "NSE"
    BSE = "BSE"
    NFO = "NFO"
    BFO = "BFO"
    CDS = "CDS"
    MCX = "MCX"

    @property
    def is_derivatives(self) -> bool:
        return self in (Exchange.NFO, Exchange.BFO, Exchange.CDS, Exchange.MCX)


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    SL = "SL"
    SL_M = "SL-M"

    @property
    def needs_price(self) -> bool:
        return self in (OrderType.LIMIT, OrderType.SL)

    @property
    def needs_trigger(self) -> bool:
        return self in (OrderType.SL, OrderType.SL_M)


class Product(StrEnum):
    MIS = "MIS"
    CNC = "CNC"
    NRML = "NRML"
    MTF = "MTF"


class Validity(StrEnum):
    DAY = "DAY"
    IOC = "IOC"


class OrderStatus(StrEnum):
    """An order's state, reduced from Kotak's free-text ``ordSt`` to what a trader acts on."""

    PENDING = "pending"  # accepted by Kotak, not yet confirmed open at the exchange
    OPEN = "open"
    TRIGGER_PENDING = "trigger_pending"
    COMPLETE = "complete"
    REJECTED = "rejected"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (OrderStatus.COMPLETE, OrderStatus.REJECTED, OrderStatus.CANCELLED)

    @property
    def is_working(self) -> bool:
        """True while the order can still fill, be modified or be cancelled."""
        return not self.is_final


class InstrumentKind(StrEnum):
    EQUITY = "equity"
    INDEX = "index"
    FUTURE = "future"
    OPTION = "option"


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable (or, for indices, quotable) contract from Kotak's scrip master."""

    exchange: Exchange
    trading_symbol: str  # Kotak's pTrdSymbol, what orders carry
    symbol: str  # the name or underlying (SBIN, NIFTY, M&M)
    token: str  # exchange token (pSymbol)
    kind: InstrumentKind
    lot_size: int
    tick_size: Decimal  # rupees
    series: str = ""  # EQ, BE, ... for cash; empty for derivatives
    expiry: date | None = None
    strike: Decimal | None = None  # rupees
    option_type: str = ""  # CE / PE for options
    freeze_quantity: int | None = None  # Kotak's lFreezeQty: orders this large are frozen
    precision: int = 2
    isin: str = ""

    @property
    def tradable(self) -> bool:
        return self.kind is not InstrumentKind.INDEX

    @property
    def max_order_quantity(self) -> int | None:
        """The largest whole-lot quantity one order may carry, or None when unlimited.

        The exchange freezes an order of ``freeze_quantity`` units or more (Kotak writes
        NIFTY's 1800-unit limit as 1801), so the cap is the last lot multiple below it.
        """
        if not self.freeze_quantity or self.freeze_quantity <= 1:
            return None
        lots = (self.freeze_quantity - 1) // self.lot_size
        return lots * self.lot_size if lots > 0 else self.lot_size


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order as the bridge means it, before Kotak's wire spelling."""

    instrument: Instrument
    side: Side
    quantity: int
    product: Product
    order_type: OrderType = OrderType.MARKET
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    validity: Validity = Validity.DAY
    disclosed_quantity: int = 0
    amo: bool = False
    tag: str = ""  # our correlation id, echoed back by Kotak on the order and its fills


@dataclass(frozen=True, slots=True)
class ModifyRequest:
    """New terms for a working order; Kotak wants the full set, not a delta."""

    order_id: str
    instrument: Instrument
    side: Side  # unchanged by a modify, but SL-M's protective limit depends on it
    quantity: int
    order_type: OrderType
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    validity: Validity = Validity.DAY
    disclosed_quantity: int = 0
    amo: bool = False
    # The legacy gateway wants the order's product and filled quantity restated (the 1.x
    # client's full modify body); the current API ignores both.
    product: Product | None = None
    filled_quantity: int = 0


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """One row of Kotak's order book or order history."""

    order_id: str
    status: OrderStatus
    broker_status: str  # Kotak's own wording, kept for the journal
    exchange: Exchange
    trading_symbol: str
    side: Side
    product: str
    order_type: str
    quantity: int
    filled_quantity: int
    pending_quantity: int
    cancelled_quantity: int
    price: Decimal
    average_price: Decimal
    trigger_price: Decimal
    validity: str
    tag: str
    rejection_reason: str
    exchange_order_id: str
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill from Kotak's trade book."""

    order_id: str
    fill_id: str
    exchange: Exchange
    trading_symbol: str
    side: Side
    product: str
    quantity: int
    price: Decimal
    filled_at: datetime | None
    tag: str


@dataclass(frozen=True, slots=True)
class Position:
    """A net position as Kotak reports it, with its day (fl) and carried (cf) parts."""

    exchange: Exchange
    trading_symbol: str
    symbol: str
    token: str
    product: str
    day_buy_quantity: int
    day_sell_quantity: int
    carry_buy_quantity: int
    carry_sell_quantity: int
    buy_amount: Decimal  # day + carried, rupees
    sell_amount: Decimal
    lot_size: int
    multiplier: Decimal  # lMultiplier x genNum/genDen x prcNum/prcDen

    @property
    def buy_quantity(self) -> int:
        return self.day_buy_quantity + self.carry_buy_quantity

    @property
    def sell_quantity(self) -> int:
        return self.day_sell_quantity + self.carry_sell_quantity

    @property
    def net_quantity(self) -> int:
        return self.buy_quantity - self.sell_quantity

    @property
    def average_price(self) -> Decimal:
        """Average of the side that is open, per Kotak's position formula; 0 when flat."""
        net = self.net_quantity
        if net > 0 and self.buy_quantity:
            return self.buy_amount / (self.buy_quantity * self.multiplier)
        if net < 0 and self.sell_quantity:
            return self.sell_amount / (self.sell_quantity * self.multiplier)
        return Decimal(0)

    def pnl(self, last_price: Decimal) -> Decimal:
        """Realised plus unrealised P&L at ``last_price``, Kotak's formula."""
        return (self.sell_amount - self.buy_amount) + (
            Decimal(self.net_quantity) * last_price * self.multiplier
        )


@dataclass(frozen=True, slots=True)
class Funds:
    """The parts of Kotak's limits answer a trader looks at."""

    cash: Decimal  # cash and collateral deposited, before margin
    margin_used: Decimal
    available: Decimal  # Kotak's "Net": what new orders may still use
    collateral: Decimal
    realised_pnl: Decimal
    unrealised_pnl: Decimal


@dataclass(frozen=True, slots=True)
class Holding:
    """Shares held in the demat account (delivery), as Kotak's holdings call reports them."""

    exchange: Exchange
    symbol: str
    token: str  # exchange token (Kotak's exchangeIdentifier)
    quantity: int
    sellable_quantity: int
    average_price: Decimal
    last_price: Decimal  # Kotak's closingPrice
    market_value: Decimal


@dataclass(frozen=True, slots=True)
class MarginCheck:
    """What Kotak's check-margin call says one order would need."""

    required: Decimal  # margin this order blocks
    available: Decimal  # margin free before it
    shortfall: Decimal  # 0 when the order fits
    accepted: bool  # Kotak's RMS verdict (rmsVldtd "OK")


def round_to_tick(price: Decimal, tick: Decimal, *, up: bool | None = None) -> Decimal:
    """Round ``price`` onto the tick grid: to the nearest tick, or up/down when asked.

    Exchanges refuse prices off the grid, so every price the bridge sends passes through here.
    """
    if tick <= 0:
        raise ValueError("tick size must be positive")
    steps = price / tick
    if up is None:
        whole = steps.quantize(Decimal(1), rounding="ROUND_HALF_UP")
    elif up:
        whole = steps.quantize(Decimal(1), rounding="ROUND_CEILING")
    else:
        whole = steps.quantize(Decimal(1), rounding="ROUND_FLOOR")
    return (whole * tick).quantize(tick) if tick != tick.to_integral_value() else whole * tick


def price_on_tick(price: Decimal, tick: Decimal, side: Side) -> Decimal:
    """A limit or trigger price of an order on ``side``, rounded onto the tick grid the safe
    way: a buy down and a sell up.

    A limit then never pays more, or sells for less, than asked; a stop's trigger moves
    toward the market (a buy stop sits above it, a sell stop below), so the stop fires no
    later than asked. Rounding is monotonic, so a stop-limit's price stays on the right side
    of its trigger.
    """
    return round_to_tick(price, tick, up=side is Side.SELL)


class SignalSource(StrEnum):
    TRADINGVIEW = "tradingview"
    AMIBROKER = "amibroker"
    CHARTINK = "chartink"
    API = "api"  # the OpenAlgo-compatible REST API (DESIGN.md section 5b)


class OptionType(StrEnum):
    CE = "CE"
    PE = "PE"


class PositionScope(StrEnum):
    """Whose position a signal's ``position_size`` is the target of."""

    ACCOUNT = "account"  # the account's net position in the instrument (and product)
    STRATEGY = "strategy"  # only what the signal's strategy holds, from the bridge's journal


@dataclass(frozen=True, slots=True)
class OptionRequest:
    """An option asked for by its place in the chain, before the bridge picks the contract.

    ``offset`` is ``ATM``, ``ITMn`` or ``OTMn`` (n 1-50); ``expiry`` is ``DDMMMYY``, one of
    ``current_week``, ``next_week``, ``current_month``, ``next_month``, or empty for the
    nearest listed expiry; ``exchange`` is the sender's hint for the underlying (``NSE_INDEX``,
    ``BSE_INDEX``, ``NSE``, ``BSE``, ``NFO``, ``BFO``, ``MCX``) or empty.
    """

    underlying: str
    offset: str
    option_type: OptionType
    expiry: str = ""
    strike_int: Decimal | None = None
    exchange: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"underlying": self.underlying, "offset": self.offset,
                "option_type": self.option_type.value, "expiry": self.expiry,
                "strike_int": str(self.strike_int) if self.strike_int is not None else None,
                "exchange": self.exchange}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> OptionRequest:
        step = data.get("strike_int")
        return cls(underlying=str(data["underlying"]), offset=str(data["offset"]),
                   option_type=OptionType(str(data["option_type"])),
                   expiry=str(data.get("expiry") or ""),
                   strike_int=Decimal(str(step)) if step is not None else None,
                   exchange=str(data.get("exchange") or ""))


@dataclass(frozen=True, slots=True)
class Resolution:
    """The contract the bridge picked for an :class:`OptionRequest`, and why: journaled,
    answered and shown, so a trader can check the pick against the chart."""

    underlying: str  # NIFTY, RELIANCE, NIFTY26DECFUT: as the sender named it, normalised
    quoted: str  # EXCHANGE:trading symbol of what was quoted ("NSE:Nifty 50")
    underlying_price: Decimal  # the last price the strike was picked from
    strike_step: Decimal
    atm_strike: Decimal
    offset: str
    option_type: OptionType
    expiry: date
    strike: Decimal
    exchange: Exchange  # of the option
    trading_symbol: str  # of the option, Kotak's pTrdSymbol

    def to_dict(self) -> dict[str, object]:
        return {"underlying": self.underlying, "quoted": self.quoted,
                "underlying_price": str(self.underlying_price),
                "strike_step": str(self.strike_step), "atm_strike": str(self.atm_strike),
                "offset": self.offset, "option_type": self.option_type.value,
                "expiry": self.expiry.isoformat(), "strike": str(self.strike),
                "exchange": self.exchange.value, "trading_symbol": self.trading_symbol}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Resolution:
        return cls(underlying=str(data["underlying"]), quoted=str(data["quoted"]),
                   underlying_price=Decimal(str(data["underlying_price"])),
                   strike_step=Decimal(str(data["strike_step"])),
                   atm_strike=Decimal(str(data["atm_strike"])), offset=str(data["offset"]),
                   option_type=OptionType(str(data["option_type"])),
                   expiry=date.fromisoformat(str(data["expiry"])),
                   strike=Decimal(str(data["strike"])), exchange=Exchange(str(data["exchange"])),
                   trading_symbol=str(data["trading_symbol"]))


@dataclass(frozen=True, slots=True)
class Leg:
    """One leg of a multi-leg signal: a contract named by ``symbol`` or by ``option``
    (resolved into ``symbol``, ``exchange`` and ``resolution`` before it is journaled)."""

    side: Side
    quantity: int
    symbol: str = ""
    exchange: Exchange | None = None
    option: OptionRequest | None = None
    order_type: OrderType = OrderType.MARKET
    product: Product | None = None  # None: the signal's product
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    resolution: Resolution | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "side": self.side.value, "quantity": self.quantity, "symbol": self.symbol,
            "exchange": self.exchange.value if self.exchange else None,
            "option": self.option.to_dict() if self.option else None,
            "order_type": self.order_type.value,
            "product": self.product.value if self.product else None,
            "price": str(self.price) if self.price is not None else None,
            "trigger_price": str(self.trigger_price) if self.trigger_price is not None
            else None,
            "resolution": self.resolution.to_dict() if self.resolution else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Leg:
        exchange, option, product = data.get("exchange"), data.get("option"), data.get("product")
        resolution, price, trigger = (data.get("resolution"), data.get("price"),
                                      data.get("trigger_price"))
        return cls(
            side=Side(str(data["side"])), quantity=int(str(data["quantity"])),
            symbol=str(data.get("symbol") or ""),
            exchange=Exchange(str(exchange)) if exchange else None,
            option=OptionRequest.from_dict(option) if isinstance(option, dict) else None,
            order_type=OrderType(str(data.get("order_type", "MARKET"))),
            product=Product(str(product)) if product else None,
            price=Decimal(str(price)) if price is not None else None,
            trigger_price=Decimal(str(trigger)) if trigger is not None else None,
            resolution=Resolution.from_dict(resolution) if isinstance(resolution, dict)
            else None)


@dataclass(frozen=True, slots=True)
class Signal:
    """A validated trading signal, whichever door it came through."""

    source: SignalSource
    symbol: str
    side: Side
    exchange: Exchange | None = None
    quantity: int = 0  # units; 0 allowed only with a target position
    order_type: OrderType = OrderType.MARKET
    product: Product = Product.MIS
    price: Decimal | None = None  # limit price, or for a market order the caller's reference
    trigger_price: Decimal | None = None
    disclosed_quantity: int = 0
    validity: Validity = Validity.DAY
    amo: bool = False
    position_size: int | None = None  # signed target net position
    strategy: str = ""
    alert_id: str = ""
    comment: str = ""
    account: str = DEFAULT_ACCOUNT
    #: options by offset: the contract is picked at intake into ``symbol`` and ``resolution``
    option: OptionRequest | None = None
    resolution: Resolution | None = None
    #: multi-leg: one order (or more, when split) per leg; ``symbol`` is then the first leg's
    legs: tuple[Leg, ...] = ()
    splitsize: int = 0  # 0: no split beyond the exchange's freeze limit
    position_scope: PositionScope = PositionScope.ACCOUNT
    #: what the bridge changed in the signal before sending it, in words (a price moved onto
    #: the tick), answered and journaled so the trader sees it
    notes: tuple[str, ...] = ()

    @property
    def is_flatten(self) -> bool:
        return self.position_size == 0

    @property
    def is_multi_leg(self) -> bool:
        return bool(self.legs)

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source.value, "symbol": self.symbol, "side": self.side.value,
            "exchange": self.exchange.value if self.exchange else None,
            "quantity": self.quantity, "order_type": self.order_type.value,
            "product": self.product.value,
            "price": str(self.price) if self.price is not None else None,
            "trigger_price": str(self.trigger_price) if self.trigger_price is not None else None,
            "disclosed_quantity": self.disclosed_quantity, "validity": self.validity.value,
            "amo": self.amo, "position_size": self.position_size, "strategy": self.strategy,
            "alert_id": self.alert_id, "comment": self.comment, "account": self.account,
            "option": self.option.to_dict() if self.option else None,
            "resolution": self.resolution.to_dict() if self.resolution else None,
            "legs": [leg.to_dict() for leg in self.legs], "splitsize": self.splitsize,
            "position_scope": self.position_scope.value, "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Signal:
        def decimal(key: str) -> Decimal | None:
            value = data.get(key)
            return Decimal(str(value)) if value is not None else None

        exchange = data.get("exchange")
        position = data.get("position_size")
        option, resolution, legs = data.get("option"), data.get("resolution"), data.get("legs")
        notes = data.get("notes")
        return cls(
            source=SignalSource(str(data["source"])), symbol=str(data["symbol"]),
            side=Side(str(data["side"])),
            exchange=Exchange(str(exchange)) if exchange else None,
            quantity=int(str(data.get("quantity", 0))),
            order_type=OrderType(str(data.get("order_type", "MARKET"))),
            product=Product(str(data.get("product", "MIS"))), price=decimal("price"),
            trigger_price=decimal("trigger_price"),
            disclosed_quantity=int(str(data.get("disclosed_quantity", 0))),
            validity=Validity(str(data.get("validity", "DAY"))), amo=bool(data.get("amo")),
            position_size=int(str(position)) if position is not None else None,
            strategy=str(data.get("strategy", "")), alert_id=str(data.get("alert_id", "")),
            comment=str(data.get("comment", "")),
            account=str(data.get("account", DEFAULT_ACCOUNT)),
            option=OptionRequest.from_dict(option) if isinstance(option, dict) else None,
            resolution=Resolution.from_dict(resolution) if isinstance(resolution, dict)
            else None,
            legs=tuple(Leg.from_dict(leg) for leg in legs if isinstance(leg, dict))
            if isinstance(legs, list) else (),
            splitsize=int(str(data.get("splitsize") or 0)),
            # Signals journaled before position_scope existed targeted the account.
            position_scope=PositionScope(str(data.get("position_scope") or "account")),
            notes=tuple(str(note) for note in notes) if isinstance(notes, list) else (),
        )
