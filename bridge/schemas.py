"""The signal contract (DESIGN.md section 5) as marshmallow schemas.

A payload either becomes a :class:`bridge.domain.Signal` or is refused with every problem
named by field. Rules that need no instrument live here: enums in any case, whole quantities
from numbers or numeric strings (``10``, ``"10"``, ``"10.0"``), Decimal prices, what each
price type needs, products that suit the exchange, and unknown fields refused with the list
of accepted ones (a misspelt ``pricetype`` must never silently become a market order). Rules
that need the instrument (lot size, tick size) are applied once it is resolved.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validates_schema
from marshmallow.validate import Length

from bridge.domain import (
    Exchange,
    Leg,
    OptionRequest,
    OptionType,
    OrderType,
    PositionScope,
    Product,
    Side,
    Signal,
    SignalSource,
    Validity,
)

E = TypeVar("E", bound=StrEnum)

MAX_QUANTITY = 10_000_000
#: legs of one multi-leg signal: an iron butterfly with hedges is 6; more is a typo or abuse
MAX_LEGS = 10
#: how OpenAlgo names the exchange of an index underlying; the option trades on NFO/BFO
INDEX_EXCHANGES = ("NSE_INDEX", "BSE_INDEX")
MAX_PRICE = Decimal(100_000_000)
SECRET_FIELDS = ("secret", "apikey")
_CASH = (Exchange.NSE, Exchange.BSE)
#: a TradingView placeholder such as {{close}} or {{strategy.order.price}}
_PLACEHOLDER = re.compile(r"\{\{\s*[^{}]*\}\}")
#: how much of a wrong value an error message quotes
_SHOWN = 60


def placeholder_problem(value: Any) -> str:
    """Why a value is an unfilled TradingView placeholder ("" when it is not one).

    TradingView replaces ``{{close}}`` when the alert fires, and ``{{strategy.*}}`` only in
    an alert made from a strategy; left in place, the value reached us as written, and the
    whole of it is quoted, so the trader recognises it.
    """
    if not isinstance(value, str) or not _PLACEHOLDER.search(value):
        return ""
    text = value.strip()[:_SHOWN * 2]
    if "strategy." in text:
        return (f"{text!r} is an unfilled TradingView placeholder: TradingView fills "
                "{{strategy.*}} only in an alert created on a strategy; create the alert "
                "from the strategy, or write the value itself")
    return (f"{text!r} is an unfilled TradingView placeholder: TradingView leaves one it does "
            "not know as written (check the spelling, e.g. {{close}}), and nothing fills it "
            "when the message is sent from elsewhere; write the value itself")


def _shown(value: Any) -> str:
    """A wrong value as quoted in an error: whole, up to a sane length."""
    text = str(value)
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


class WholeNumber(fields.Field[int]):
    """An integral quantity from a number or a numeric string; ``"10.0"`` is 10, 10.5 is not."""

    def __init__(self, *, signed: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.signed = signed

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValidationError("must be a whole number")
        unfilled = placeholder_problem(value)
        if unfilled:
            raise ValidationError(unfilled)
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise ValidationError(f"must be a whole number, not {_shown(value)}") from exc
        if not number.is_finite() or number != number.to_integral_value():
            raise ValidationError("must be a whole number (no fractions)")
        if not self.signed and number < 0:
            raise ValidationError("must not be negative")
        if abs(number) > MAX_QUANTITY:
            raise ValidationError(f"must be at most {MAX_QUANTITY:,}")
        return int(number)


class Price(fields.Field[Decimal]):
    """A price in rupees as a Decimal; zero means "none" (templates often send "0")."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValidationError("must be a number")
        unfilled = placeholder_problem(value)
        if unfilled:
            raise ValidationError(unfilled)
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise ValidationError(f"must be a number, not {_shown(value)}") from exc
        if not number.is_finite():
            raise ValidationError("must be a finite number")
        if number < 0:
            raise ValidationError("must not be negative")
        if number >= MAX_PRICE:
            raise ValidationError("is not a plausible price")
        return number


class Choice(fields.Field[E]):
    """A value of an enum, in any case, surrounding spaces ignored."""

    def __init__(self, kind: type[E], *, aliases: Mapping[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind
        self.aliases = dict(aliases or {})

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> E:
        if not isinstance(value, str):
            raise ValidationError(f"must be one of {', '.join(k.value for k in self.kind)}")
        unfilled = placeholder_problem(value)
        if unfilled:
            raise ValidationError(unfilled)
        text = value.strip().upper()
        text = self.aliases.get(text, text)
        try:
            return self.kind(text)
        except ValueError as exc:
            raise ValidationError(f"{_shown(value)} is not one of "
                                  f"{', '.join(k.value for k in self.kind)}") from exc


class ExchangeField(Choice[Exchange]):
    """An exchange code; TradingView's delayed-feed suffixes (NSE_DLY) are dropped."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> Exchange:
        if isinstance(value, str):
            value = value.strip().upper().removesuffix("_DLY").removesuffix("_DL")
        return super()._deserialize(value, attr, data, **kwargs)


class ExchangeOrIndex(ExchangeField):
    """An exchange, or for the underlying of an option by offset also ``NSE_INDEX`` /
    ``BSE_INDEX`` (OpenAlgo's names for where an index is quoted), kept as text."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> Any:
        if isinstance(value, str) and value.strip().upper() in INDEX_EXCHANGES:
            return value.strip().upper()
        return super()._deserialize(value, attr, data, **kwargs)


class Offset(fields.Field[str]):
    """``ATM``, ``ITM1``..``ITM50`` or ``OTM1``..``OTM50``, any case."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> str:
        unfilled = placeholder_problem(value)
        if unfilled:
            raise ValidationError(unfilled)
        text = value.strip().upper() if isinstance(value, str) else ""
        if text == "ATM":
            return text
        if text[:3] in ("ITM", "OTM") and text[3:].isdigit() and 1 <= int(text[3:]) <= 50:
            return f"{text[:3]}{int(text[3:])}"
        raise ValidationError(f"{_shown(value)} is not an offset: use ATM, ITM1 to ITM50 "
                              "or OTM1 to OTM50")


class Flag(fields.Field[bool]):
    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower() if isinstance(value, (str, int)) else ""
        if text in ("true", "1", "yes", "y"):
            return True
        if text in ("false", "0", "no", "n", ""):
            return False
        raise ValidationError("must be true or false")


class Name(fields.String):
    """A symbol or an underlying: text, but never a TradingView placeholder left unfilled."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> Any:
        unfilled = placeholder_problem(value)
        if unfilled:
            raise ValidationError(unfilled)
        return super()._deserialize(value, attr, data, **kwargs)


def _text(**kwargs: Any) -> fields.String:
    return fields.String(**kwargs)


def _price_type() -> Choice[OrderType]:
    return Choice(OrderType, load_default=OrderType.MARKET,
                  aliases={"MKT": "MARKET", "L": "LIMIT", "LMT": "LIMIT", "SLM": "SL-M",
                           "SL_M": "SL-M"})


class SignalSchema(Schema):
    """TradingView and AmiBroker signals (OpenAlgo's field names, so templates carry over)."""

    class Meta:
        unknown = RAISE

    symbol = Name(load_default=None, validate=Length(1, 64))
    exchange = ExchangeOrIndex(Exchange, load_default=None)
    action = Choice(Side, load_default=None, aliases={"B": "BUY", "S": "SELL"})
    quantity = WholeNumber(load_default=None)
    pricetype = _price_type()
    product = Choice(Product, load_default=Product.MIS, aliases={"INTRADAY": "MIS"})
    price = Price(load_default=None)
    trigger_price = Price(load_default=None)
    disclosed_quantity = WholeNumber(load_default=0)
    validity = Choice(Validity, load_default=Validity.DAY)
    amo = Flag(load_default=False)
    position_size = WholeNumber(signed=True, load_default=None)
    position_scope = Choice(PositionScope, load_default=None,
                            aliases={scope.value.upper(): scope.value for scope in PositionScope})
    strategy = _text(load_default="", validate=Length(max=64))
    alert_id = _text(load_default=None, validate=Length(1, 80))
    comment = _text(load_default="", validate=Length(max=500))
    underlying = Name(load_default=None, validate=Length(1, 64))
    offset = Offset(load_default=None)
    option_type = Choice(OptionType, load_default=None, aliases={"CALL": "CE", "PUT": "PE",
                                                                  "C": "CE", "P": "PE"})
    expiry_date = _text(load_default="", validate=Length(max=20))
    strike_int = Price(load_default=None)
    legs = fields.List(fields.Dict(), load_default=None)
    splitsize = WholeNumber(load_default=0)

    @validates_schema
    def _cross_field(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        legs, underlying = data.get("legs"), data.get("underlying")
        if legs is not None:
            _multi_leg_errors(data, errors)
        else:
            if underlying is None and not data.get("symbol"):
                errors["symbol"] = ["is required (or send underlying with offset and "
                                    "option_type for an option by strike offset, or legs)"]
            if data.get("action") is None:
                errors["action"] = ["is required: BUY or SELL"]
            _option_errors(data, errors, where="")
            _order_errors(data, errors, "")
            quantity, target = data.get("quantity"), data.get("position_size")
            if target is None and not quantity:
                errors["quantity"] = ["is required and must be positive (or send "
                                      "position_size)"]
            disclosed = data.get("disclosed_quantity") or 0
            if disclosed and quantity and disclosed > quantity:
                errors["disclosed_quantity"] = ["must not exceed quantity"]
        exchange = data.get("exchange")
        product: Product = data["product"]
        if isinstance(exchange, Exchange) and underlying is None:
            problem = product_problem(product, exchange)
            if problem:
                errors["product"] = [problem]
        _scope_errors(data, errors)
        if data.get("splitsize") and data.get("position_size") is not None:
            errors["splitsize"] = ["cannot be combined with position_size: the bridge already "
                                   "sends a target's difference as one order per freeze limit"]
        if errors:
            raise ValidationError(errors)


def _scope_errors(data: dict[str, Any], errors: dict[str, list[str]]) -> None:
    """``position_scope`` says whose position ``position_size`` targets: it needs both a
    target and, for a strategy's own position, the strategy's name."""
    scope = data.get("position_scope")
    if scope is None:
        return
    if data.get("position_size") is None:
        errors.setdefault("position_scope", ["applies only with position_size (the target "
                                             "position it scopes)"])
    elif scope is PositionScope.STRATEGY and not data.get("strategy", "").strip():
        errors["strategy"] = ["is required with position_scope strategy: the position is "
                              "the one this strategy's orders built"]


def _order_errors(data: dict[str, Any], errors: dict[str, list[str]], where: str) -> None:
    """Price-type rules of one order (the signal, or a leg: ``where`` is ``legs.<n>.``)."""
    kind: OrderType = data["pricetype"]
    price, trigger = data.get("price"), data.get("trigger_price")
    if kind.needs_price and not price:
        errors[f"{where}price"] = [f"is required for {kind.value} orders"]
    if kind.needs_trigger and not trigger:
        errors[f"{where}trigger_price"] = [f"is required for {kind.value} orders"]
    if trigger and not kind.needs_trigger:
        errors[f"{where}trigger_price"] = [f"applies only to SL and SL-M orders, not "
                                           f"{kind.value}"]
    side: Side | None = data.get("action")
    if kind is OrderType.SL and price and trigger and side is not None:
        wrong = price < trigger if side is Side.BUY else price > trigger
        if wrong:
            errors[f"{where}price"] = ["of a buy SL must be at or above its trigger (sell: at "
                                       "or below)"]


def _option_errors(data: dict[str, Any], errors: dict[str, list[str]], where: str) -> None:
    """An option by offset needs the underlying, the offset and the type together."""
    underlying = data.get("underlying")
    asked = [name for name in ("offset", "option_type") if data.get(name) is not None]
    if underlying is None:
        for name in asked:
            errors[f"{where}{name}"] = ["applies to an option by strike offset: send "
                                        "underlying too (e.g. NIFTY)"]
        if data.get("strike_int") is not None:
            errors["strike_int"] = ["applies to an option by strike offset: send underlying"]
        return
    if data.get("symbol"):
        errors["symbol"] = ["give either symbol (one contract) or underlying with offset and "
                            "option_type, not both"]
    for name in ("offset", "option_type"):
        if data.get(name) is None:
            example = "ATM, ITM2 or OTM1" if name == "offset" else "CE or PE"
            errors[f"{where}{name}"] = [f"is required with underlying: {example}"]
    if data.get("position_size") is not None:
        errors["position_size"] = ["cannot be used with an option by strike offset: the strike "
                                   "moves with the price, so a target position has no fixed "
                                   "contract; send quantity"]


class LegSchema(Schema):
    """One leg of a multi-leg signal."""

    class Meta:
        unknown = RAISE

    symbol = Name(load_default=None, validate=Length(1, 64))
    exchange = ExchangeField(Exchange, load_default=None)
    offset = Offset(load_default=None)
    option_type = Choice(OptionType, load_default=None, aliases={"CALL": "CE", "PUT": "PE",
                                                                  "C": "CE", "P": "PE"})
    expiry_date = _text(load_default=None, validate=Length(max=20))
    action = Choice(Side, required=True, aliases={"B": "BUY", "S": "SELL"})
    quantity = WholeNumber(required=True)
    pricetype = _price_type()
    product = Choice(Product, load_default=None, aliases={"INTRADAY": "MIS"})
    price = Price(load_default=None)
    trigger_price = Price(load_default=None)


# One instance loads every payload: marshmallow 4 keeps nothing of a load on the schema,
# while making an instance per signal deep-copies every declared field (about 1 ms of CPU a
# signal, before it is even journaled).
_LEGS = LegSchema()
LEG_FIELDS = sorted(_LEGS.fields)


def _multi_leg_errors(data: dict[str, Any], errors: dict[str, list[str]]) -> None:
    """Check the signal-level fields of a multi-leg signal and load each leg in place."""
    raw: list[dict[str, Any]] = data["legs"]
    for name in ("symbol", "action", "quantity", "position_size", "position_scope", "offset",
                 "option_type", "price", "trigger_price"):
        if data.get(name) not in (None, 0, ""):
            errors[name] = ["give it in each leg, not beside legs"]
    if not raw:
        errors["legs"] = ["must hold at least one leg"]
        return
    if len(raw) > MAX_LEGS:
        errors["legs"] = [f"at most {MAX_LEGS} legs in one signal, not {len(raw)}"]
        return
    loaded: list[dict[str, Any]] = []
    for number, leg in enumerate(raw):
        where = f"legs.{number}."
        try:
            item = _LEGS.load(leg)
        except ValidationError as exc:
            for name, problems in _explain_unknown(field_messages(exc), LEG_FIELDS).items():
                errors[f"{where}{name}"] = problems
            continue
        has_option = item.get("offset") is not None or item.get("option_type") is not None
        if item.get("symbol") and has_option:
            errors[f"{where}symbol"] = ["give either symbol or offset with option_type"]
        elif not item.get("symbol"):
            if data.get("underlying") is None:
                errors[f"{where}symbol"] = ["is required (or give the signal an underlying and "
                                            "the leg offset and option_type)"]
            for name in ("offset", "option_type"):
                if item.get(name) is None:
                    errors[f"{where}{name}"] = ["is required in an option leg"]
        if not item["quantity"]:
            errors[f"{where}quantity"] = ["must be positive"]
        _order_errors(item, errors, where)
        loaded.append(item)
    data["legs"] = loaded


def product_problem(product: Product, exchange: Exchange) -> str:
    """Why ``product`` cannot be used on ``exchange`` (empty when it can)."""
    if product in (Product.CNC, Product.MTF) and exchange not in _CASH:
        return f"{product.value} is for NSE/BSE cash; use NRML or MIS on {exchange.value}"
    if product is Product.NRML and exchange in _CASH:
        return f"NRML is for derivatives; use CNC or MIS on {exchange.value}"
    return ""


_SIGNALS = SignalSchema()
ACCEPTED_FIELDS = sorted([*_SIGNALS.fields, *SECRET_FIELDS])
_EXPIRY_NAMES = ("current_week", "next_week", "current_month", "next_month")


def load_signal(payload: dict[str, Any], source: SignalSource) -> Signal:
    """Validate a payload (the secret already taken out) into a :class:`Signal`.

    :raises ValidationError: ``normalized_messages()`` names every bad field; unknown fields
        carry the list of accepted ones.
    """
    try:
        data = _SIGNALS.load(payload)
    except ValidationError as exc:
        raise ValidationError(_explain_unknown(field_messages(exc))) from exc
    exchange = data["exchange"]
    index_hint = exchange if exchange in INDEX_EXCHANGES else ""
    if index_hint and data["underlying"] is None:
        raise ValidationError({"exchange": [f"{index_hint} is where an index is quoted; it "
                                            "applies to underlying (options by offset)"]})
    underlying = (data["underlying"] or "").strip().upper()
    hint = index_hint or (exchange.value if isinstance(exchange, Exchange) else "")
    option = None
    if data["legs"] is None and underlying:
        option = OptionRequest(underlying=underlying, offset=data["offset"],
                               option_type=data["option_type"],
                               expiry=_expiry(data["expiry_date"]),
                               strike_int=data["strike_int"] or None, exchange=hint)
    legs: tuple[Leg, ...] = ()
    for item in data["legs"] or ():
        leg_option = None
        if not item.get("symbol"):
            leg_option = OptionRequest(
                underlying=underlying, offset=item["offset"], option_type=item["option_type"],
                expiry=_expiry(item["expiry_date"] if item["expiry_date"] is not None
                               else data["expiry_date"]),
                strike_int=data["strike_int"] or None, exchange=hint)
        legs += (Leg(side=item["action"], quantity=item["quantity"],
                     symbol=(item.get("symbol") or "").strip(), exchange=item["exchange"],
                     option=leg_option, order_type=item["pricetype"], product=item["product"],
                     price=item["price"] or None,
                     trigger_price=item["trigger_price"] or None),)
    first = legs[0] if legs else None
    return Signal(
        source=source, symbol=(data["symbol"] or (first.symbol if first else "") or underlying
                               ).strip(),
        side=first.side if first is not None else data["action"],
        exchange=exchange if isinstance(exchange, Exchange) and not option else None,
        quantity=first.quantity if first is not None else data["quantity"] or 0,
        order_type=data["pricetype"], product=data["product"],
        price=data["price"] or None, trigger_price=data["trigger_price"] or None,
        disclosed_quantity=data["disclosed_quantity"], validity=data["validity"],
        amo=data["amo"], position_size=data["position_size"],
        position_scope=data["position_scope"] or PositionScope.ACCOUNT,
        strategy=data["strategy"].strip(), alert_id=(data["alert_id"] or "").strip(),
        comment=data["comment"], option=option, legs=legs, splitsize=data["splitsize"],
    )


def _expiry(text: str) -> str:
    """An expiry as the sender wrote it, names in lower case and dates in upper case; the
    option picker checks it against the listed expiries."""
    cleaned = text.strip()
    return cleaned.lower() if cleaned.lower() in _EXPIRY_NAMES else cleaned.upper()


def field_messages(error: ValidationError) -> dict[str, Any]:
    """The messages of a ValidationError, always keyed by field."""
    messages: dict[str, Any] = error.normalized_messages()  # type: ignore[no-untyped-call]
    return messages


def _explain_unknown(messages: dict[str, Any],
                     accepted: list[str] | None = None) -> dict[str, Any]:
    known = accepted if accepted is not None else ACCEPTED_FIELDS
    explained: dict[str, Any] = {}
    for name, problems in messages.items():
        if problems == ["Unknown field."]:
            hint = difflib.get_close_matches(name.lower(), known, n=1)
            guess = f" Did you mean {hint[0]!r}?" if hint else ""
            explained[name] = [f"Unknown field.{guess} Accepted fields: "
                               f"{', '.join(known)}"]
        else:
            explained[name] = problems
    return explained


class ChartinkSchema(Schema):
    """ChartInk's fixed payload; the user cannot template it, so extra fields are ignored."""

    class Meta:
        unknown = EXCLUDE

    stocks = fields.Raw(required=True)
    trigger_prices = fields.Raw(load_default="")
    scan_name = _text(load_default="", validate=Length(max=200))
    scan_url = _text(load_default="", validate=Length(max=200))
    alert_name = _text(load_default="", validate=Length(max=300))
    triggered_at = _text(load_default="", validate=Length(max=40))


def split_list(value: Any, field: str) -> list[str]:
    """ChartInk sends lists as one comma-separated string; accept a JSON list too."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(item, (str, int, float)) for item in value):
        return [str(item).strip() for item in value if str(item).strip()]
    raise ValidationError({field: ["must be a comma-separated string"]})
