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
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validates_schema
from marshmallow.validate import Length

from bridge.domain import Exchange, OrderType, Product, Side, Signal, SignalSource, Validity

E = TypeVar("E", bound=StrEnum)

MAX_QUANTITY = 10_000_000
MAX_PRICE = Decimal(100_000_000)
SECRET_FIELDS = ("secret", "apikey")
_CASH = (Exchange.NSE, Exchange.BSE)


class WholeNumber(fields.Field[int]):
    """An integral quantity from a number or a numeric string; ``"10.0"`` is 10, 10.5 is not."""

    def __init__(self, *, signed: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.signed = signed

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValidationError("must be a whole number")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise ValidationError(f"must be a whole number, not {str(value)[:20]!r}") from exc
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
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise ValidationError(f"must be a number, not {str(value)[:20]!r}") from exc
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
        text = value.strip().upper()
        text = self.aliases.get(text, text)
        try:
            return self.kind(text)
        except ValueError as exc:
            raise ValidationError(f"{value[:30]!r} is not one of "
                                  f"{', '.join(k.value for k in self.kind)}") from exc


class ExchangeField(Choice[Exchange]):
    """An exchange code; TradingView's delayed-feed suffixes (NSE_DLY) are dropped."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> Exchange:
        if isinstance(value, str):
            value = value.strip().upper().removesuffix("_DLY").removesuffix("_DL")
        return super()._deserialize(value, attr, data, **kwargs)


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


def _text(**kwargs: Any) -> fields.String:
    return fields.String(**kwargs)


class SignalSchema(Schema):
    """TradingView and AmiBroker signals (OpenAlgo's field names, so templates carry over)."""

    class Meta:
        unknown = RAISE

    symbol = _text(required=True, validate=Length(1, 64))
    exchange = ExchangeField(Exchange, load_default=None)
    action = Choice(Side, required=True, aliases={"B": "BUY", "S": "SELL"})
    quantity = WholeNumber(load_default=None)
    pricetype = Choice(OrderType, load_default=OrderType.MARKET,
                       aliases={"MKT": "MARKET", "L": "LIMIT", "LMT": "LIMIT", "SLM": "SL-M",
                                "SL_M": "SL-M"})
    product = Choice(Product, load_default=Product.MIS, aliases={"INTRADAY": "MIS"})
    price = Price(load_default=None)
    trigger_price = Price(load_default=None)
    disclosed_quantity = WholeNumber(load_default=0)
    validity = Choice(Validity, load_default=Validity.DAY)
    amo = Flag(load_default=False)
    position_size = WholeNumber(signed=True, load_default=None)
    strategy = _text(load_default="", validate=Length(max=64))
    alert_id = _text(load_default=None, validate=Length(1, 80))
    comment = _text(load_default="", validate=Length(max=500))

    @validates_schema
    def _cross_field(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        kind: OrderType = data["pricetype"]
        price, trigger = data.get("price"), data.get("trigger_price")
        quantity, target = data.get("quantity"), data.get("position_size")
        if target is None and not quantity:
            errors["quantity"] = ["is required and must be positive (or send position_size)"]
        if kind.needs_price and not price:
            errors["price"] = [f"is required for {kind.value} orders"]
        if kind.needs_trigger and not trigger:
            errors["trigger_price"] = [f"is required for {kind.value} orders"]
        if trigger and not kind.needs_trigger:
            errors["trigger_price"] = [f"applies only to SL and SL-M orders, not {kind.value}"]
        if kind is OrderType.SL and price and trigger:
            side: Side = data["action"]
            wrong = price < trigger if side is Side.BUY else price > trigger
            if wrong:
                errors["price"] = ["of a buy SL must be at or above its trigger (sell: at or "
                                   "below)"]
        disclosed = data.get("disclosed_quantity") or 0
        if disclosed and quantity and disclosed > quantity:
            errors["disclosed_quantity"] = ["must not exceed quantity"]
        exchange: Exchange | None = data.get("exchange")
        product: Product = data["product"]
        if exchange is not None:
            problem = product_problem(product, exchange)
            if problem:
                errors["product"] = [problem]
        if errors:
            raise ValidationError(errors)


def product_problem(product: Product, exchange: Exchange) -> str:
    """Why ``product`` cannot be used on ``exchange`` (empty when it can)."""
    if product in (Product.CNC, Product.MTF) and exchange not in _CASH:
        return f"{product.value} is for NSE/BSE cash; use NRML or MIS on {exchange.value}"
    if product is Product.NRML and exchange in _CASH:
        return f"NRML is for derivatives; use CNC or MIS on {exchange.value}"
    return ""


ACCEPTED_FIELDS = sorted([*SignalSchema().fields, *SECRET_FIELDS])


def load_signal(payload: dict[str, Any], source: SignalSource) -> Signal:
    """Validate a payload (the secret already taken out) into a :class:`Signal`.

    :raises ValidationError: ``normalized_messages()`` names every bad field; unknown fields
        carry the list of accepted ones.
    """
    try:
        data = SignalSchema().load(payload)
    except ValidationError as exc:
        raise ValidationError(_explain_unknown(field_messages(exc))) from exc
    return Signal(
        source=source, symbol=data["symbol"].strip(), side=data["action"],
        exchange=data["exchange"], quantity=data["quantity"] or 0,
        order_type=data["pricetype"], product=data["product"],
        price=data["price"] or None, trigger_price=data["trigger_price"] or None,
        disclosed_quantity=data["disclosed_quantity"], validity=data["validity"],
        amo=data["amo"], position_size=data["position_size"],
        strategy=data["strategy"].strip(), alert_id=(data["alert_id"] or "").strip(),
        comment=data["comment"],
    )


def field_messages(error: ValidationError) -> dict[str, Any]:
    """The messages of a ValidationError, always keyed by field."""
    messages: dict[str, Any] = error.normalized_messages()  # type: ignore[no-untyped-call]
    return messages


def _explain_unknown(messages: dict[str, Any]) -> dict[str, Any]:
    explained: dict[str, Any] = {}
    for name, problems in messages.items():
        if problems == ["Unknown field."]:
            hint = difflib.get_close_matches(name.lower(), ACCEPTED_FIELDS, n=1)
            guess = f" Did you mean {hint[0]!r}?" if hint else ""
            explained[name] = [f"Unknown field.{guess} Accepted fields: "
                               f"{', '.join(ACCEPTED_FIELDS)}"]
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
