"""One signal, many accounts: what each subscribed account trades of it.

An account's copy of a signal is the signal with its quantity (and target position) sized by
the account's :class:`~bridge.accounts.Sizing`, always in whole lots of the instrument, and
with the account as its key. Each copy is then journaled, rate-limited, sent, followed and
squared off as its account's own signal, so accounts never wait on one another; the answer
to the caller lists every account's outcome (see :func:`combined_status`).
"""

from __future__ import annotations

import dataclasses
from decimal import ROUND_DOWN, Decimal

from bridge.accounts import AccountSettings
from bridge.domain import Instrument, Signal
from bridge.errors import RuleRefusal
from bridge.journal.rows import SignalStatus

#: when accounts disagree, the answer carries the status that most needs a person's eyes
_URGENCY = (SignalStatus.UNKNOWN, SignalStatus.FAILED, SignalStatus.EXPIRED,
            SignalStatus.REJECTED, SignalStatus.PARTIAL, SignalStatus.RECEIVED,
            SignalStatus.QUEUED, SignalStatus.DISPATCHING, SignalStatus.PLACED, SignalStatus.NOOP,
            SignalStatus.DUPLICATE)


def for_account(signal: Signal, instrument: Instrument, account: AccountSettings,
                legs: tuple[Instrument, ...] = ()) -> Signal:
    """The account's copy of ``signal``; a multi-leg signal's legs are each sized in whole
    lots of their own contract (``legs``: each leg's, in order), so the copy keeps the
    strategy's shape.

    :raises RuleRefusal: the account's size comes to no whole lot, or is above its
        ``max_quantity``.
    """
    if signal.legs:
        sized = tuple(dataclasses.replace(leg, quantity=for_account(
            dataclasses.replace(signal, legs=(), quantity=leg.quantity), contract,
            account).quantity) for leg, contract in zip(signal.legs, legs, strict=True))
        return dataclasses.replace(signal, account=account.name, legs=sized,
                                   quantity=sized[0].quantity)
    sizing = account.sizing
    lot = max(instrument.lot_size, 1)
    quantity = signal.quantity
    target = signal.position_size
    if sizing.lots is not None:
        if quantity:
            quantity = sizing.lots * lot
        if target:
            target = sizing.lots * lot * (1 if target > 0 else -1)
    elif sizing.multiplier != 1:
        quantity = _whole_lots(quantity, sizing.multiplier, lot)
        if target is not None:
            target = _whole_lots(target, sizing.multiplier, lot)
    if signal.quantity and not quantity and target is None:
        raise RuleRefusal(
            f"account {account.name}: {signal.quantity} x {sizing.multiplier} is less than "
            f"one lot ({lot}); nothing to trade",
            {"quantity": [f"sized to zero lots for account {account.name}"]},
            code="sized_to_zero")
    largest = max(quantity, abs(target or 0))
    if sizing.max_quantity and largest > sizing.max_quantity:
        raise RuleRefusal(
            f"account {account.name}: {largest} is above its max_quantity "
            f"{sizing.max_quantity}",
            {"quantity": [f"above max_quantity {sizing.max_quantity} of account "
                          f"{account.name}"]}, code="above_account_cap")
    return dataclasses.replace(signal, account=account.name, quantity=quantity,
                               position_size=target)


def _whole_lots(units: int, multiplier: Decimal, lot: int) -> int:
    """``units`` x ``multiplier``, rounded toward zero to whole lots."""
    lots = (Decimal(abs(units)) * multiplier / lot).to_integral_value(rounding=ROUND_DOWN)
    return int(lots) * lot * (1 if units >= 0 else -1)


def combined_status(statuses: list[SignalStatus]) -> SignalStatus:
    """One status for the whole signal: the accounts' common one, else the most urgent."""
    if not statuses:
        return SignalStatus.REJECTED
    return min(statuses, key=_URGENCY.index)
