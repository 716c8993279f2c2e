"""What one strategy holds of an instrument, from the orders the bridge journaled for it.

A target with ``position_scope: strategy`` is reached against this, not the account's net
position, so two strategies trading one instrument do not move each other's targets. Kotak
keeps one net position per account; only the journal knows which strategy made which part.

Counted, per account, strategy, instrument and product:

* filled quantities of the strategy's orders, buys positive and sells negative;
* an order still working (or of unknown outcome) counts as if wholly filled, as the account
  scope counts working orders: two signals then never both act on one stale position, and at
  worst the bridge trades too little, never twice;
* from the start of the day (IST) for an intraday product (MIS is closed every day), from
  the first order the journal still holds for a carried one (NRML, CNC, MTF);
* after the bridge's own square-off last closed the instrument: it closes the whole account
  position, so every strategy's share of it starts again from nothing.

Trades made outside the bridge (by hand at Kotak, by another tool) are not seen here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from bridge.journal.rows import FINAL_ORDER_STATES, OrderState
from bridge.journal.tables import orders

#: the strategy name the bridge's square-off journals its closing orders under (the same as
#: ``bridge.orders.squareoff.STRATEGY``; the journal may not import the orders layer)
SQUAREOFF_STRATEGY = "squareoff"
_WORKING = [state.value for state in OrderState if state not in FINAL_ORDER_STATES]


@dataclass(frozen=True)
class StrategyPosition:
    filled: int  # signed units the strategy's orders filled
    working: int  # signed units its orders still working may add
    since: datetime | None  # the first moment counted (None: every order kept)

    @property
    def total(self) -> int:
        return self.filled + self.working


def strategy_position(engine: Engine, *, account: str, strategy: str, exchange: str,
                      trading_symbol: str, product: str,
                      since: datetime | None) -> StrategyPosition:
    """The strategy's position in one instrument and product, counted from ``since`` (or the
    bridge's last square-off of it, when later)."""
    mine = (orders.c.account == account, orders.c.exchange == exchange,
            orders.c.trading_symbol == trading_symbol, orders.c.product == product)
    with engine.connect() as conn:
        closed = conn.execute(
            select(func.max(orders.c.created_at)).where(
                *mine, orders.c.strategy == SQUAREOFF_STRATEGY, orders.c.filled_quantity > 0)
        ).scalar_one_or_none()
        if closed is not None and (since is None or closed > since):
            since = closed
        query = select(orders.c.side, orders.c.status, orders.c.quantity,
                       orders.c.filled_quantity).where(*mine, orders.c.strategy == strategy)
        if since is not None:
            query = query.where(orders.c.created_at >= since)
        rows = conn.execute(query).all()
    filled = working = 0
    for row in rows:
        sign = 1 if row.side == "BUY" else -1
        done = int(row.filled_quantity or 0)
        filled += sign * done
        if row.status in _WORKING:
            working += sign * max(int(row.quantity) - done, 0)
    return StrategyPosition(filled=filled, working=working, since=since)
