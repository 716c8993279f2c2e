"""One log line per signal, when it reaches its final status (logger ``bridge.signals``).

Final means nothing about the signal will change any more: refused, a duplicate, nothing to
do, expired, or, for a signal that sent orders, every order final at Kotak (``complete``,
``rejected``, ``cancelled``) or proved never to have arrived. The orders layer calls
:meth:`SignalReport.settled` wherever it may have made a signal final; the line is written
once, and carries its fields on the record (``extra``) for the JSON log format.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

from bridge.clock import Clock
from bridge.journal.journal import Journal
from bridge.journal.rows import OrderRow, SignalRow

log = logging.getLogger("bridge.signals")

#: signals already reported by this process, so two threads finishing one signal log it once
_REMEMBER = 4096


class SignalReport:
    def __init__(self, journal: Journal, clock: Clock) -> None:
        self._journal = journal
        self._clock = clock
        self._reported: OrderedDict[int, None] = OrderedDict()
        self._lock = threading.Lock()

    def settled(self, signal_id: int | None) -> None:
        """Log the signal if it is final now. Never raises: it runs on the order path."""
        if signal_id is None or not log.isEnabledFor(logging.INFO):
            return
        try:
            row, orders = self._journal.signals.signal_with_orders(signal_id)
            if row is None or row.status.pending or not all(o.status.final for o in orders):
                return
            with self._lock:
                if signal_id in self._reported:
                    return
                self._reported[signal_id] = None
                if len(self._reported) > _REMEMBER:
                    self._reported.popitem(last=False)
            self._write(row, orders)
        except Exception:
            log.warning("could not report the final status of signal %s", signal_id,
                        exc_info=True)

    def _write(self, row: SignalRow, orders: list[OrderRow]) -> None:
        fields = signal_fields(row, orders)
        fields["latency_ms"] = max(
            round((self._clock.now() - row.received_at).total_seconds() * 1000), 0)
        log.info("%s", describe(fields), extra=fields)


def signal_fields(row: SignalRow, orders: list[OrderRow]) -> dict[str, Any]:
    """The record's fields: what came in, what became of it, and Kotak's word on each order."""
    signal = row.signal
    exchange, _, trading_symbol = row.instrument.partition(":")
    if not trading_symbol:
        exchange = signal.exchange.value if signal is not None and signal.exchange else ""
        trading_symbol = row.symbol
    error = row.error
    reasons = [o.reason for o in orders if o.reason]
    return {
        "alert_id": row.alert_id, "signal_id": row.id, "account": row.account,
        "source": row.source, "strategy": row.strategy, "symbol": trading_symbol,
        "exchange": exchange, "action": signal.side.value if signal is not None else None,
        "quantity": signal.quantity if signal is not None else None,
        "position_size": signal.position_size if signal is not None else None,
        "status": row.status.value,
        "order_ids": [o.broker_order_id for o in orders],
        "order_statuses": [o.status.value for o in orders],
        "broker_statuses": [o.broker_status or "" for o in orders],
        "filled_quantity": sum(o.filled_quantity for o in orders),
        "error_code": error.code if error is not None else None,
        "reason": error.message if error is not None else (reasons[0] if reasons else None),
        "duplicate_of": row.duplicate_of,
    }


def describe(fields: dict[str, Any]) -> str:
    """``signal a1 tradingview BUY 10 NSE:SBIN-EQ -> placed, order 2611: complete in 12 ms``"""
    what = [fields["action"], fields["quantity"] if fields["action"] else None,
            f"{fields['exchange']}:{fields['symbol']}" if fields["exchange"]
            else fields["symbol"]]
    if fields["position_size"] is not None:
        what.append(f"(target {fields['position_size']})")
    text = " ".join(_clean(part) for part in ["signal", fields["alert_id"], fields["source"],
                                              *what] if part not in (None, ""))
    text += f" -> {fields['status']}"
    ids, states = fields["order_ids"], fields["order_statuses"]
    if ids:
        # An order Kotak never numbered (refused at once, never sent) shows its state alone.
        each = [f"{order_id}: {state}" if order_id else state
                for order_id, state in zip(ids, states, strict=True)]
        text += f", {'order' if len(ids) == 1 else 'orders'} {', '.join(each)}"
    if fields["duplicate_of"] is not None:
        text += f" (repeat of signal {fields['duplicate_of']})"
    if fields["reason"]:
        code = f"{fields['error_code']}: " if fields["error_code"] else ""
        text += f" ({code}{_clean(fields['reason'], 300)})"
    return f"{text} in {fields['latency_ms']} ms"


def _clean(value: object, limit: int = 100) -> str:
    """Text from outside, on one line: a newline in an alert id must not forge a log line."""
    return " ".join(str(value).split())[:limit]
