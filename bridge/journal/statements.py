"""The journal's hot statements, built once.

Building a SQLAlchemy statement (``insert(t).values(...)``, ``update(t).where(...)``) costs more
than running it against SQLite; the statements every signal runs are therefore made here once,
with named parameters, and executed with plain dictionaries.
"""

from __future__ import annotations

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from bridge.journal.tables import bridge_meta, broker_calls, events, orders, signal_keys, signals

INSERT_SIGNAL = insert(signals)
INSERT_EVENT = insert(events)
INSERT_ORDER = insert(orders)
INSERT_CALL = insert(broker_calls)

# UPDATEs take their SET columns from the parameters; WHERE parameters are named apart.
UPDATE_SIGNAL = update(signals).where(signals.c.id == bindparam("where_id"))
UPDATE_ORDER = update(orders).where(orders.c.id == bindparam("where_id"))
UPDATE_CALL = update(broker_calls).where(broker_calls.c.id == bindparam("where_id"))

SIGNAL_BY_ID = select(signals).where(signals.c.id == bindparam("where_id"))
SIGNAL_STATE = select(signals.c.status, signals.c.error_code, signals.c.error_message).where(
    signals.c.id == bindparam("where_id"))
ORDER_BY_ID = select(orders).where(orders.c.id == bindparam("where_id"))
ORDERS_OF = select(orders).where(orders.c.signal_id == bindparam("where_signal")).order_by(
    orders.c.id)

QUEUED_AT_OR_ABOVE = select(signals.c.id).where(
    signals.c.account == bindparam("account"), signals.c.status == "queued",
    signals.c.priority <= bindparam("priority")).limit(1)

# The idempotency key: taken if free (one statement on the common path), else looked at.
# (RETURNING says whether the row went in: drivers disagree on rowcount here.)
CLAIM_KEY = {
    "sqlite": sqlite.insert(signal_keys).on_conflict_do_nothing(index_elements=["key"])
    .returning(signal_keys.c.key),
    "postgresql": postgresql.insert(signal_keys).on_conflict_do_nothing(index_elements=["key"])
    .returning(signal_keys.c.key),
}
KEY_HOLDER = select(signal_keys).where(signal_keys.c.key == bindparam("key"))
UPDATE_KEY = update(signal_keys).where(signal_keys.c.key == bindparam("where_key"))
DELETE_CALL = delete(broker_calls).where(broker_calls.c.id == bindparam("where_id"))

# Broker calls that count in the rate window: answered ones within the window, and ones
# granted but not yet answered (counted as happening now) that are not stale.
RATE_WINDOW = select(broker_calls.c.at, broker_calls.c.done).where(
    broker_calls.c.account == bindparam("account"),
    or_(and_(broker_calls.c.done.is_(True), broker_calls.c.at > bindparam("window_start")),
        and_(broker_calls.c.done.is_(False), broker_calls.c.at > bindparam("stale_start"))))
EARLIER_IN_FLIGHT = select(broker_calls.c.id).where(
    broker_calls.c.account == bindparam("account"), broker_calls.c.id < bindparam("token"),
    broker_calls.c.done.is_(False), broker_calls.c.at > bindparam("stale_start")).limit(16)

_COUNTED = and_(orders.c.account == bindparam("account"),
                orders.c.created_at >= bindparam("since"), orders.c.is_exit.is_(False),
                orders.c.status.not_in(["failed", "not_placed"]))
_MINE = and_(_COUNTED, orders.c.strategy == bindparam("strategy"))
_IN_INSTRUMENT = and_(_MINE, orders.c.exchange == bindparam("exchange"),
                      orders.c.trading_symbol == bindparam("trading_symbol"),
                      orders.c.status != "rejected")


def _count_up_to(where: ColumnElement[bool], cap: str) -> ScalarSelect[int]:
    """How many rows match, counted no further than the cap: the rules only ask whether a
    cap is reached, and counting a busy day's every order made each signal dearer than the
    last (0 when the cap is off, so nothing is read)."""
    rows = select(literal(1).label("one")).select_from(orders).where(where).limit(
        bindparam(cap)).subquery()
    return select(func.count()).select_from(rows).scalar_subquery()


_QUANTITIES = select(orders.c.quantity).where(_IN_INSTRUMENT).limit(
    bindparam("quantity_rows")).subquery()

# The day's entries, counted up to the caps the rules compare them with; the strategy's
# quantity in the instrument is summed only when its cap is on (``quantity_rows`` 0 when off).
ENTRY_COUNTS = select(
    _count_up_to(_COUNTED, "account_cap"),
    _count_up_to(_MINE, "strategy_cap"),
    select(func.coalesce(func.sum(_QUANTITIES.c.quantity), 0)).scalar_subquery(),
    select(bridge_meta.c.value).where(bridge_meta.c.key == "kill_switch").scalar_subquery(),
    select(bridge_meta.c.value).where(bridge_meta.c.key == bindparam("closed_key"))
    .scalar_subquery(),
)
