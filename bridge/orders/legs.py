"""When a leg of a multi-leg signal fails after other legs were placed.

A straddle with one leg standing is not the position the trader asked for: it is a naked
option. So the first time such a signal turns ``partial`` (one of its legs refused by Kotak,
rejected at the exchange, or never sent while others stand), the operator is told exactly
what stands, once, whichever thread or process saw it first. With ``LEG_FAILURE=unwind``
the bridge also undoes what stands: it cancels the legs still working at Kotak and closes
what filled with opposite market orders, recorded under the same signal as exits.

What ``unwind`` does not do: it never re-sends the failed leg (that would be a blind retry of
something Kotak refused), and it leaves alone a leg whose outcome is unknown until the order
book settles it (closing a position that may not exist could open one the other way).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from bridge.clock import Clock
from bridge.journal.journal import Journal
from bridge.journal.rows import OrderPlan, OrderRow, OrderState, SignalRow, SignalStatus
from bridge.kotak.client import KotakClient
from bridge.kotak.errors import KotakError
from bridge.notify import Notifier

log = logging.getLogger(__name__)


class ExitSender(Protocol):
    """What the order service lends this module: Kotak's latest word on an order, and a way
    to record and send closing orders under a signal."""

    def refresh(self, order: OrderRow) -> OrderRow | None: ...

    def send_exits(self, row: SignalRow, plans: list[OrderPlan]) -> list[OrderRow]: ...

    def exit_plan(self, order: OrderRow, quantity: int) -> OrderPlan: ...


class LegFailures:
    def __init__(self, journal: Journal, brokers: Mapping[str, KotakClient], clock: Clock,
                 mode: str, notifier: Notifier | None) -> None:
        self.journal = journal
        self.brokers = brokers
        self.clock = clock
        self.mode = mode
        self.notifier = notifier

    def check(self, signal_id: int | None, sender: ExitSender) -> None:
        """Act once on a multi-leg signal that has turned ``partial``. Never raises: it runs
        on the order path."""
        if signal_id is None:
            return
        try:
            row, orders = self.journal.signals.signal_with_orders(signal_id)
            if (row is None or row.signal is None or not row.signal.legs
                    or row.status is not SignalStatus.PARTIAL):
                return
            if not self.journal.switches.claim_once(f"legs_failed:{signal_id}",
                                                    self.clock.now().isoformat()):
                return
            self._act(row, orders, sender)
        except Exception:
            log.exception("could not handle the failed leg of signal %s", signal_id)

    def _act(self, row: SignalRow, orders: list[OrderRow], sender: ExitSender) -> None:
        standing = [o for o in orders if o.status.accepted and not o.is_exit]
        failed = [o for o in orders if o.status in (OrderState.REJECTED, OrderState.FAILED,
                                                     OrderState.NOT_PLACED)]
        text = (f"multi-leg signal {row.alert_id} (strategy {row.strategy or '-'}) is "
                f"partial: {_listed(failed)} failed ({_reason(failed)}); standing: "
                f"{_listed(standing) or 'nothing'}.")
        if self.mode != "unwind":
            self._tell("warning" if not standing else "error",
                       text + " The standing legs are left as they are (LEG_FAILURE=report): "
                              "check the position at Kotak and close it if it is not wanted.")
            return
        closing = self._unwind(row, standing, sender)
        if closing:
            sent = sender.send_exits(row, closing)
            done = [o for o in sent if o.status.accepted]
            text += (f" Unwinding (LEG_FAILURE=unwind): sent {_listed(done) or 'nothing'}"
                     + (f"; NOT closed: {_listed([o for o in sent if not o.status.accepted])}"
                        " - close it at Kotak by hand" if len(done) < len(sent) else "") + ".")
        else:
            text += " Unwinding (LEG_FAILURE=unwind): nothing had filled; working legs " \
                    "were cancelled."
        self._tell("error", text)

    def _unwind(self, row: SignalRow, standing: list[OrderRow],
                sender: ExitSender) -> list[OrderPlan]:
        """Cancel what still works, then plan a close for what filled."""
        broker = self.brokers[row.account]
        for order in standing:
            if not order.status.final and order.broker_order_id:
                try:
                    broker.cancel_order(order.broker_order_id,
                                        trading_symbol=order.trading_symbol)
                except KotakError as exc:
                    # Often it filled meanwhile: the fresh read below says what to close.
                    log.info("unwinding: cancel of order %s: %s", order.broker_order_id,
                             exc.message)
        plans: list[OrderPlan] = []
        for order in standing:
            current = sender.refresh(order) or order
            if current.filled_quantity > 0:
                plans.append(sender.exit_plan(current, current.filled_quantity))
        return plans

    def _tell(self, level: str, text: str) -> None:
        if self.notifier is not None:
            self.notifier.send("legs_partial", level, text)
        else:
            log.warning("%s", text)


def _listed(orders: list[OrderRow]) -> str:
    return ", ".join(f"{o.side} {o.quantity} {o.exchange}:{o.trading_symbol}" for o in orders)


def _reason(orders: list[OrderRow]) -> str:
    first = next((o for o in orders if o.reason), None)
    return first.reason or "" if first is not None else "no reason given"

