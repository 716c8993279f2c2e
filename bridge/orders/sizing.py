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


def size(signal: Signal, instrument: Instrument, position: int | None) -> Sizing:
    """Work out the order a signal asks for.

    :param position: net position plus our working orders for this account, instrument and
        product; ``None`` when not read (plain signals).
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
        return _split(side, abs(delta), position)
    if position is None:
        return Sizing(signal.side, 0, signal.quantity, None)
    return _split(signal.side, signal.quantity, position)


def _split(side: Side, quantity: int, position: int) -> Sizing:
    closing = (side is Side.SELL and position > 0) or (side is Side.BUY and position < 0)
    exit_quantity = min(quantity, abs(position)) if closing else 0
    return Sizing(side, exit_quantity, quantity - exit_quantity, position)


def check_lots(signal: Signal, instrument: Instrument) -> None:
    """Quantities must be whole lots of the instrument.

    :raises InvalidSignal: naming the field and the lot size.
    """
    lot = instrument.lot_size
    errors: dict[str, list[str]] = {}
    name = f"{instrument.exchange.value}:{instrument.trading_symbol}"
    if signal.quantity % lot:
        errors["quantity"] = [f"must be a multiple of the lot size {lot} of {name}"]
    if signal.position_size is not None and signal.position_size % lot:
        errors["position_size"] = [f"must be a multiple of the lot size {lot} of {name}"]
    if signal.disclosed_quantity % lot:
        errors["disclosed_quantity"] = [f"must be a multiple of the lot size {lot}"]
    if errors:
        raise InvalidSignal("the quantity does not fit the instrument's lot size", errors)


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
