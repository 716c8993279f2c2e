"""From a signal and the account's position to the order to send, split into its exit part
and its entry part.

* A target position (``position_size``) trades the difference to the net position plus our
  orders still working, and nothing when already there. Orders sent but not yet filled count
  as done, so two signals can never both act on the same stale position: at worst the bridge
  trades too little, never twice.
* The part of an order that reduces the position toward zero is an exit; anything beyond
  zero is an entry. Rules may refuse entries; an exit is never turned into a new position
  the other way.
* A plain signal (no target) trades its quantity; without a known position it counts as an
  entry, and its exit part is found only when a rule needs to know.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.domain import Instrument, Side, Signal
from bridge.errors import InvalidSignal, RuleRefusal


@dataclass(frozen=True)
class Sizing:
    side: Side
    exit_quantity: int
    entry_quantity: int
    position: int | None  # the effective position it was computed against (None: unread)

    @property
    def total(self) -> int:
        return self.exit_quantity + self.entry_quantity


def size(signal: Signal, instrument: Instrument, position: int | None,
         account: int | None = None) -> Sizing:
    """Work out the order a signal asks for.

    :param position: net position plus our working orders for this account, instrument and
        product (for ``position_scope: strategy``, the strategy's own); ``None`` when not
        read (plain signals).
    :param account: with a strategy's position, the account's: only what reduces both is an
        exit (selling a strategy's long while the account is short adds to the short).
    :raises RuleRefusal: a target that would need a trade against the signal's direction.
    """
    if signal.position_size is not None:
        if position is None:
            raise ValueError("a target position needs the current position")
        delta = signal.position_size - position
        if delta == 0:
            return Sizing(signal.side, 0, 0, position)
        side = Side.BUY if delta > 0 else Side.SELL
        if side is not signal.side:
            raise RuleRefusal(
                f"the signal says {signal.side.value} but reaching position "
                f"{signal.position_size} from {position} needs a {side.value} of {abs(delta)}; "
                "nothing sent (check the position, or send position_size alone)",
                {"position_size": signal.position_size, "current_position": position},
                code="position_conflict")
        return _split(side, abs(delta), position, account)
    if position is None:
        return Sizing(signal.side, 0, signal.quantity, None)
    return _split(signal.side, signal.quantity, position)


def _split(side: Side, quantity: int, position: int, account: int | None = None) -> Sizing:
    exit_quantity = _closing(side, quantity, position)
    if account is not None:
        exit_quantity = min(exit_quantity, _closing(side, quantity, account))
    return Sizing(side, exit_quantity, quantity - exit_quantity, position)


def _closing(side: Side, quantity: int, position: int) -> int:
    """How much of ``quantity`` on ``side`` reduces ``position`` toward zero."""
    closing = (side is Side.SELL and position > 0) or (side is Side.BUY and position < 0)
    return min(quantity, abs(position)) if closing else 0


def check_lots(signal: Signal, instrument: Instrument) -> None:
    """Quantities must be whole lots of the instrument.

    The message itself names the lot size and the nearest valid quantities: it is what the
    dashboard and ``bridge signal`` show, and TradingView never shows the HTTP answer.

    :raises InvalidSignal: naming the field, the lot size and what to send instead.
    """
    lot = instrument.lot_size
    name = f"{instrument.exchange.value}:{instrument.trading_symbol}"
    errors: dict[str, list[str]] = {}
    for field, value, signed in (("quantity", signal.quantity, False),
                                 ("position_size", signal.position_size, True),
                                 ("disclosed_quantity", signal.disclosed_quantity, False)):
        if value is None or value % lot == 0:
            continue
        near = " or ".join(str(q) for q in nearest_lots(value, lot, signed=signed))
        errors[field] = [f"{value} is not a whole number of lots: {name} has a lot size of "
                         f"{lot} (use {near})"]
    if errors:
        raise InvalidSignal("; ".join(f"{field} {problems[0]}"
                                      for field, problems in errors.items()), errors)


def nearest_lots(quantity: int, lot: int, *, signed: bool = False) -> tuple[int, ...]:
    """The whole-lot quantities either side of ``quantity`` (a target may be 0, an order
    not: then the first two lots), keeping its sign."""
    sign = -1 if quantity < 0 else 1
    below = abs(quantity) // lot * lot
    if below == 0 and not signed:
        return (lot, 2 * lot)
    return (sign * below, sign * (below + lot))


def by_size(quantity: int, size: int, max_slices: int = 20) -> list[int]:
    """``quantity`` as orders of at most ``size`` (the last one smaller), as a trader's
    ``splitsize`` asks.

    :raises RuleRefusal: it would take more than ``max_slices`` orders.
    """
    count = -(-quantity // size)
    if count > max_slices:
        raise RuleRefusal(f"{quantity} in orders of {size} would be {count} orders; at most "
                          f"{max_slices} are sent for one signal: give a larger splitsize",
                          {"splitsize": size, "quantity": quantity}, code="too_many_slices")
    full, rest = divmod(quantity, size)
    return [size] * full + ([rest] if rest else [])


def slices(quantity: int, instrument: Instrument, split: bool, max_slices: int = 20) -> list[int]:
    """Split ``quantity`` at the freeze quantity into whole-lot orders.

    :raises RuleRefusal: the quantity is above the freeze limit and splitting is off, or it
        would take more than ``max_slices`` orders.
    """
    cap = instrument.max_order_quantity
    if cap is None or quantity <= cap:
        return [quantity]
    if not split:
        raise RuleRefusal(f"{quantity} is above the freeze limit of "
                          f"{instrument.trading_symbol} ({cap} per order) and FREEZE_SPLIT is off",
                          {"quantity": quantity, "max_per_order": cap}, code="freeze_quantity")
    count = -(-quantity // cap)
    if count > max_slices:
        raise RuleRefusal(f"{quantity} would need {count} orders at the freeze limit of {cap}; "
                          f"at most {max_slices} are sent for one signal",
                          {"quantity": quantity, "max_per_order": cap}, code="freeze_quantity")
    return by_size(quantity, cap, max_slices)
