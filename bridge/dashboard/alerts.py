"""Alert messages for TradingView's Message box: one symbol (an indicator's BUY/SELL or a
Pine strategy's orders), one option picked by its strike offset, and the common multi-leg
shapes (straddle, strangle, iron condor).

The bridge picks the contract when the alert arrives (the strike from the underlying's last
price, the expiry from the day's scrip master), so the message names the place in the chain,
not a contract. ``quantity`` is in units, lots times the lot size, which is read from today's
scrip master when it is loaded (else from the exchanges' current sizes below).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bridge.domain import Exchange, Instrument, InstrumentKind, Product
from bridge.kotak.instruments import InstrumentIndex

#: index underlyings: where the index is quoted (OpenAlgo's name), where its options trade,
#: and the lot size the exchanges set (used only when the scrip master is not loaded)
INDICES: dict[str, tuple[str, Exchange, int]] = {
    "NIFTY": ("NSE_INDEX", Exchange.NFO, 65),
    "BANKNIFTY": ("NSE_INDEX", Exchange.NFO, 30),
    "FINNIFTY": ("NSE_INDEX", Exchange.NFO, 60),
    "MIDCPNIFTY": ("NSE_INDEX", Exchange.NFO, 120),
    "SENSEX": ("BSE_INDEX", Exchange.BFO, 20),
    "BANKEX": ("BSE_INDEX", Exchange.BFO, 30),
}
#: the offsets the form offers, in chain order (the bridge accepts up to 50 either side)
OFFSETS = ([f"ITM{n}" for n in range(10, 0, -1)] + ["ATM"]
           + [f"OTM{n}" for n in range(1, 11)])
EXPIRIES = {
    "nearest": "Nearest listed expiry",
    "current_week": "This week",
    "next_week": "Next week",
    "current_month": "This month",
    "next_month": "Next month",
    "date": "A date (DDMMMYY)",
}
ACTIONS = {"BUY": "BUY", "SELL": "SELL", "strategy": "Pine strategy (BUY/SELL from TradingView)"}
OPTION_PRODUCTS = (Product.MIS.value, Product.NRML.value)
SHAPES = {
    "straddle": "Straddle: ATM CE + ATM PE",
    "strangle": "Strangle: OTM CE + OTM PE",
    "iron_condor": "Iron condor: OTM CE/PE, hedged further out",
}
DIRECTIONS = {"SELL": "Sell (short: collect the premium)", "BUY": "Buy (long)"}
#: where a Pine strategy alert's order size comes from
STRATEGY_SIZES = {
    "lots": "Lots below (each alert trades that many lots)",
    "strategy": "The strategy's own size, in units (reversals in one order)",
}
MAX_LOTS = 1000
_NAME = re.compile(r"^[A-Z0-9&_-]{1,30}$")
_DATE = re.compile(r"^(\d{2})([A-Z]{3})(\d{2})$")


class TemplateError(ValueError):
    """A field of the helper's form cannot make a valid alert; the message says which."""


@dataclass(frozen=True)
class LotSize:
    size: int
    from_scrip_master: bool
    #: the underlying as the scrip master spells it (TradingView's M_M is M&M)
    underlying: str


@dataclass(frozen=True)
class Built:
    """An alert message and what the trader should know about it."""

    text: str
    message: dict[str, Any]
    lot: LotSize
    lots: int


def underlying_of(text: str) -> str:
    name = text.strip().upper()
    if not _NAME.match(name):
        raise TemplateError("Underlying: an index (NIFTY, BANKNIFTY, FINNIFTY, MIDCPNIFTY, "
                            "SENSEX, BANKEX) or a stock's NSE symbol such as RELIANCE.")
    return name


def quoted_on(underlying: str) -> str:
    """The ``exchange`` field for the underlying: where the index is quoted, or NSE for a
    stock (its options trade on NFO)."""
    found = INDICES.get(underlying)
    return found[0] if found else Exchange.NSE.value


def lot_size(index: InstrumentIndex | None, underlying: str, on: date) -> LotSize:
    """The underlying's option lot size: its nearest listed future's in today's scrip master
    (futures and options of one underlying share the lot), else the exchanges' size for an
    index.

    :raises TemplateError: a stock with no futures listed today (or no scrip master).
    """
    known = INDICES.get(underlying)
    derivatives = known[1] if known else Exchange.NFO
    if index is not None:
        spellings = (underlying, underlying.replace("_", "&"), underlying.replace("_", "-"))
        for name in dict.fromkeys(spellings):
            chain = [item for item in index.futures(derivatives, name, on)
                     if item.kind is InstrumentKind.FUTURE and item.lot_size > 0]
            if chain:
                return LotSize(chain[0].lot_size, True, name)
    if known:
        return LotSize(known[2], False, underlying)
    if index is None:
        raise TemplateError(f"The scrip master is not loaded yet, so the lot size of "
                            f"{underlying} is unknown: load it (python -m bridge instruments "
                            "refresh) or pick an index.")
    raise TemplateError(f"{underlying} has no futures or options in today's scrip master: "
                        "use the NSE symbol of an F&O stock, such as RELIANCE.")


def expiry_of(kind: str, on_date: str) -> str:
    """The ``expiry_date`` value: a named expiry, a checked DDMMMYY date, or "" (nearest).

    :raises TemplateError: an unknown kind or a date that is not DDMMMYY.
    """
    if kind not in EXPIRIES:
        raise TemplateError("Expiry: pick one from the list.")
    if kind == "nearest":
        return ""
    if kind != "date":
        return kind
    text = on_date.strip().upper()
    found = _DATE.match(text)
    try:
        if found is None:
            raise ValueError(text)
        datetime.strptime(f"{found.group(1)}{found.group(2).title()}{found.group(3)}",
                          "%d%b%y")
    except ValueError as exc:
        raise TemplateError("Expiry date: day, month and year as DDMMMYY, e.g. 30DEC26.") \
            from exc
    return text


def lots_of(text: str) -> int:
    lots = _whole(text)
    if not 1 <= lots <= MAX_LOTS:
        raise TemplateError(f"Lots: a whole number from 1 to {MAX_LOTS}.")
    return lots


def distance_of(text: str) -> int:
    """Strikes away from the ATM strike, for a strangle's or a condor's OTM legs."""
    strikes = _whole(text)
    if not 1 <= strikes <= 10:
        raise TemplateError("OTM distances: 1 to 10 strikes from the ATM strike.")
    return strikes


def _whole(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return 0


def option_alert(*, secret: str, underlying: str, offset: str, option_type: str,
                 expiry: str, action: str, lots: int, lot: LotSize, product: str,
                 strategy: str) -> Built:
    """One option by strike offset.

    :raises TemplateError: a field outside the form's choices.
    """
    if offset not in OFFSETS:
        raise TemplateError("Offset: ATM, ITM1 to ITM10 or OTM1 to OTM10.")
    if option_type not in ("CE", "PE"):
        raise TemplateError("Option type: CE or PE.")
    if action not in ACTIONS:
        raise TemplateError("Action: BUY, SELL or the Pine strategy's.")
    if product not in OPTION_PRODUCTS:
        raise TemplateError("Product: MIS (intraday) or NRML (carry forward).")
    from_strategy = action == "strategy"
    message: dict[str, Any] = {
        "secret": secret, "underlying": lot.underlying, "exchange": quoted_on(underlying),
        "offset": offset, "option_type": option_type}
    if expiry:
        message["expiry_date"] = expiry
    message.update({
        "action": "{{strategy.order.action}}" if from_strategy else action,
        "quantity": lots * lot.size, "product": product, "pricetype": "MARKET",
        "strategy": strategy or "tradingview",
        "alert_id": "{{ticker}}-{{strategy.order.id}}-{{timenow}}" if from_strategy
        else "{{ticker}}-{{timenow}}"})
    return Built(json.dumps(message, indent=2), message, lot, lots)


def legs_alert(*, secret: str, underlying: str, shape: str, direction: str, near: int,
               far: int, expiry: str, lots: int, lot: LotSize, product: str,
               strategy: str) -> Built:
    """A straddle (ATM CE + PE), a strangle (OTM ``near`` CE + PE) or an iron condor (OTM
    ``near`` CE + PE the way of ``direction``, OTM ``far`` CE + PE the other way), as one
    multi-leg signal. Legs that buy are listed first: the bridge sends them first anyway
    (a short option needs the margin the long one frees).

    :raises TemplateError: a field outside the form's choices, or wings inside the body.
    """
    if shape not in SHAPES:
        raise TemplateError("Shape: straddle, strangle or iron condor.")
    if direction not in DIRECTIONS:
        raise TemplateError("Direction: sell or buy.")
    if product not in OPTION_PRODUCTS:
        raise TemplateError("Product: MIS (intraday) or NRML (carry forward).")
    quantity = lots * lot.size
    other = "BUY" if direction == "SELL" else "SELL"
    if shape == "straddle":
        body = [("ATM", direction)]
    elif shape == "strangle":
        body = [(f"OTM{near}", direction)]
    else:
        if far <= near:
            raise TemplateError("Iron condor: the hedge must be further out than the body "
                                f"(OTM{far} is not beyond OTM{near}).")
        body = [(f"OTM{near}", direction), (f"OTM{far}", other)]
    legs = [{"offset": offset, "option_type": kind, "action": side, "quantity": quantity}
            for offset, side in body for kind in ("CE", "PE")]
    legs.sort(key=lambda leg: leg["action"] != "BUY")
    message: dict[str, Any] = {
        "secret": secret, "underlying": lot.underlying, "exchange": quoted_on(underlying)}
    if expiry:
        message["expiry_date"] = expiry
    message.update({"product": product, "strategy": strategy or shape.replace("_", "-"),
                    "alert_id": "{{ticker}}-{{timenow}}", "legs": legs})
    return Built(_one_leg_a_line(message), message, lot, lots)


def symbol_alert(*, secret: str, symbol: str, instrument: Instrument, kind: str, lots: int,
                 product: str, strategy: str, size_from: str = "lots") -> dict[str, Any]:
    """The message for one symbol: an indicator's ``buy``/``sell`` of ``lots`` lots, or a Pine
    ``strategy``'s orders.

    A Pine strategy counts its orders in its own units, which TradingView sends as they are:
    ``{{strategy.order.contracts}}`` is 1 for a strategy sized "1 contract", and the bridge
    wants units (a NIFTY future's 1 lot is 65). So by default (``size_from`` "lots") the
    strategy gives the direction and this form's Lots the size: every alert trades Lots x lot
    size. With ``size_from`` "strategy" the strategy's numbers are sent, with its position,
    so a reversal (long to short in one order) and a repeat come out right: its order size
    must then be set in units, lots x lot size.
    """
    message: dict[str, Any] = {
        "secret": secret,
        # A continuous future stays continuous, so the alert rolls with the contract.
        "symbol": symbol if symbol.endswith("!") else
        f"{instrument.exchange.value}:{instrument.trading_symbol}",
        "exchange": instrument.exchange.value,
    }
    units = max(lots, 1) * max(instrument.lot_size, 1)
    if kind != "strategy":
        message.update({"action": kind.upper(), "quantity": units})
    elif size_from == "strategy":
        message.update({"action": "{{strategy.order.action}}",
                        "quantity": "{{strategy.order.contracts}}",
                        "position_size": "{{strategy.position_size}}"})
    else:
        message.update({"action": "{{strategy.order.action}}", "quantity": units})
    message.update({"pricetype": "MARKET", "product": product,
                    "strategy": strategy or "tradingview",
                    "alert_id": "{{ticker}}-{{strategy.order.id}}-{{timenow}}"
                    if kind == "strategy" else "{{ticker}}-{{timenow}}"})
    return message


def _one_leg_a_line(message: dict[str, Any]) -> str:
    """JSON with each field on its line and each leg on one line, so the legs read as a
    table."""
    lines = [f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in message.items()
             if key != "legs"]
    legs = ",\n".join(f"    {json.dumps(leg)}" for leg in message["legs"])
    lines.append(f'  "legs": [\n{legs}\n  ]')
    return "{\n" + ",\n".join(lines) + "\n}"
