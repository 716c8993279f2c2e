"""The journal's hot statements, built once.

Building a SQLAlchemy statement (``insert(t).values(...)``, ``update(t).where(...)``) costs more
than running it against SQLite; the statements every signal runs are therefore made here once,
with named parameters, and executed with plain dictionaries.
"""

from __future__ import annotations

from sqlalchemy import (
    ColumnElement,
    Float,
    ScalarSelect,
    TextClause,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
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
# Many at once (a fan-out's answers, committed together): one statement for all of them.
SIGNAL_STATES = select(signals.c.id, signals.c.status, signals.c.error_code,
                       signals.c.error_message).where(
    signals.c.id.in_(bindparam("ids", expanding=True)))
ORDERS_BY_IDS = select(orders).where(orders.c.id.in_(bindparam("ids", expanding=True)))
ORDERS_OF_SIGNALS = select(orders).where(
    orders.c.signal_id.in_(bindparam("ids", expanding=True))).order_by(orders.c.id)
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
_IN_WINDOW = and_(
    broker_calls.c.account == bindparam("account"),
    or_(and_(broker_calls.c.done.is_(True), broker_calls.c.at > bindparam("window_start")),
        and_(broker_calls.c.done.is_(False), broker_calls.c.at > bindparam("stale_start"))))
RATE_WINDOW = select(broker_calls.c.at, broker_calls.c.done).where(_IN_WINDOW)
# RATE_WINDOW counted, with how many of them still wait for their answers: one row however
# many calls the window holds (its rows are read only when the window is full).
RATE_COUNT = select(func.count(), func.coalesce(func.sum(
    case((broker_calls.c.done.is_(False), 1), else_=0)), 0)).where(
    _IN_WINDOW)
_EARLIER = and_(broker_calls.c.account == bindparam("account"),
                broker_calls.c.id < bindparam("token"), broker_calls.c.done.is_(False))
EARLIER_IN_FLIGHT = select(broker_calls.c.id).where(
    _EARLIER, broker_calls.c.at > bindparam("stale_start")).limit(16)
# The same on PostgreSQL with its own clock in the statement: a sender waiting for its turn
# asks this every few milliseconds, and reading the clock first was a second round trip.
EARLIER_IN_FLIGHT_PG = select(broker_calls.c.id).where(
    _EARLIER, broker_calls.c.at > func.extract("epoch", func.clock_timestamp())
    - bindparam("unsent_s", type_=Float)).limit(16)

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
_ENTRY_COLUMNS = (
    _count_up_to(_COUNTED, "account_cap"),
    _count_up_to(_MINE, "strategy_cap"),
    select(func.coalesce(func.sum(_QUANTITIES.c.quantity), 0)).scalar_subquery(),
    select(bridge_meta.c.value).where(bridge_meta.c.key == "kill_switch").scalar_subquery(),
    select(bridge_meta.c.value).where(bridge_meta.c.key == bindparam("closed_key"))
    .scalar_subquery(),
)
ENTRY_COUNTS = select(*_ENTRY_COLUMNS)

# What admission reads before it may claim a signal, in one statement: whether a signal of
# the account waits ahead of it, the rate window (RATE_COUNT), and the entry counts
# (ENTRY_COUNTS, in the variant for signals the rules count).
_WINDOW = RATE_COUNT.subquery()  # one pass over the window for both of its counts
_ADMIT_COLUMNS = (
    select(func.count()).select_from(QUEUED_AT_OR_ABOVE.subquery()).scalar_subquery(),
    *_WINDOW.c,
)
ADMIT_READS = select(*_ADMIT_COLUMNS).select_from(_WINDOW)
ADMIT_READS_COUNTED = select(*_ADMIT_COLUMNS, *_ENTRY_COLUMNS).select_from(_WINDOW)

# ENTRY_COUNTS for many accounts in one statement (a fan-out's copies, on PostgreSQL): one
# row per element of the arrays, in their order, each counted up to its own caps.
_COUNTED_SQL = ("o.account = q.account AND o.created_at >= q.since AND NOT o.is_exit "
                "AND o.status NOT IN ('failed', 'not_placed')")
_MINE_SQL = f"{_COUNTED_SQL} AND o.strategy = q.strategy"
ENTRY_COUNTS_MANY_PG: TextClause = text(f"""
SELECT
  (SELECT count(*) FROM (SELECT 1 FROM orders o WHERE {_COUNTED_SQL}
                         LIMIT q.account_cap) a),
  (SELECT count(*) FROM (SELECT 1 FROM orders o WHERE {_MINE_SQL}
                         LIMIT q.strategy_cap) b),
  (SELECT coalesce(sum(c.quantity), 0) FROM (
     SELECT o.quantity FROM orders o WHERE {_MINE_SQL} AND o.exchange = q.exchange
       AND o.trading_symbol = q.trading_symbol AND o.status != 'rejected'
     LIMIT q.quantity_rows) c),
  (SELECT value FROM bridge_meta WHERE key = 'kill_switch'),
  (SELECT value FROM bridge_meta WHERE key = q.closed_key)
FROM unnest(CAST(:accounts AS text[]), CAST(:since AS timestamptz[]),
            CAST(:strategies AS text[]), CAST(:exchanges AS text[]),
            CAST(:symbols AS text[]), CAST(:account_caps AS integer[]),
            CAST(:strategy_caps AS integer[]), CAST(:quantity_rows AS integer[]),
            CAST(:closed_keys AS text[]))
  WITH ORDINALITY AS q(account, since, strategy, exchange, trading_symbol, account_cap,
                       strategy_cap, quantity_rows, closed_key, position)
ORDER BY q.position""")
