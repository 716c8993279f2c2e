"""Read-only questions the dashboard asks the journal: which signals, filtered how, with their
orders; the day's orders; the strategies seen; how many orders went out lately.

Kept apart from the stores of :mod:`bridge.journal.journal` (the write path) so that nothing
here can take a lock or change a row; every query is bounded by a limit or a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, func, select

from bridge.journal.orders import orders_by_signal
from bridge.journal.rows import OrderRow, SignalRow, order_row, signal_row
from bridge.journal.tables import orders, signals


class JournalReader:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def signals(self, *, limit: int = 50, status: str = "", strategy: str = "",
                before_id: int | None = None) -> list[SignalRow]:
        """The latest signals first, optionally of one status or strategy."""
        query = select(signals).order_by(signals.c.id.desc()).limit(limit)
        if status:
            query = query.where(signals.c.status == status)
        if strategy:
            query = query.where(signals.c.strategy == strategy)
        if before_id is not None:
            query = query.where(signals.c.id < before_id)
        with self.engine.connect() as conn:
            return [signal_row(row) for row in conn.execute(query).all()]

    def orders_of_signals(self, signal_ids: Sequence[int]) -> dict[int, list[OrderRow]]:
        with self.engine.connect() as conn:
            return orders_by_signal(conn, list(signal_ids))

    def orders_since(self, since: datetime, limit: int = 200) -> list[OrderRow]:
        """Orders the bridge made since ``since`` (every account), the latest first."""
        query = (select(orders).where(orders.c.created_at >= since)
                 .order_by(orders.c.id.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [order_row(row) for row in conn.execute(query).all()]

    def strategies(self, limit: int = 100) -> list[str]:
        query = (select(signals.c.strategy).where(signals.c.strategy != "")
                 .group_by(signals.c.strategy).order_by(signals.c.strategy).limit(limit))
        with self.engine.connect() as conn:
            return [str(row.strategy) for row in conn.execute(query).all()]

    def sent_since(self, account: str, since: datetime) -> int:
        """Order requests sent to the broker for ``account`` since ``since``."""
        query = select(func.count()).select_from(orders).where(
            orders.c.account == account, orders.c.sent_at >= since)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
