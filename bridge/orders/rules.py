"""Rules an order must pass before it is sent. Pure: time and counts come in as arguments.

* Trading hours (``MARKET_HOURS=enforce``; the default in live mode): nothing outside the
  exchange's session that day (weekends and exchange holidays closed, MCX evening-only days
  from 17:00), except AMO orders.
* Intraday (MIS) entries stop at the exchange's square-off time (exits, and delivery or
  carry-forward entries, stay allowed until the close), and
  once a square-off has stopped them on an exchange (the scheduled one always; one by
  hand when the trader chose so), intraday entries on it stay refused that day whatever
  ``MARKET_HOURS`` says, until a person allows them again.
* Kill switch (close-only): entries refused, exits allowed.
* Daily caps on entries, per account and per strategy, and on quantity per strategy and
  instrument. Exits are never capped: a cap must never stop a position from being closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from bridge.clock import IST
from bridge.config import RiskSettings
from bridge.domain import Exchange, Product
from bridge.errors import RuleRefusal
from bridge.orders.entries import HOW_TO_ALLOW
from bridge.schedule.calendar import TradingCalendar


@dataclass(frozen=True)
class Counts:
    """Entries already made today, for the caps."""

    account_entries: int
    strategy_entries: int
    strategy_quantity: int


def check_session(exchange: Exchange, now: datetime, amo: bool, risk: RiskSettings,
                  calendar: TradingCalendar) -> None:
    """Refuse orders while the exchange is closed (AMO orders exist for that)."""
    if not risk.market_hours or amo:
        return
    local = now.astimezone(IST)
    hours = calendar.hours(exchange, local.date())
    if hours is None:
        closure = calendar.closure(exchange, local.date())
        why = f"for {closure.name}" if closure is not None else f"on {local:%A}s"
        raise RuleRefusal(f"{exchange.value} is closed {why}; send amo=true to queue an "
                          "after-market order", {"exchange": exchange.value},
                          code="market_closed")
    opens, closes = hours
    if not opens <= local.time() <= closes:
        raise RuleRefusal(f"{exchange.value} trades {opens:%H:%M}-{closes:%H:%M} IST today; it "
                          f"is {local:%H:%M} (send amo=true for an after-market order)",
                          {"exchange": exchange.value, "opens": f"{opens:%H:%M}",
                           "closes": f"{closes:%H:%M}"}, code="outside_trading_hours")


def entry_refusal(*, exchange: Exchange, strategy: str, quantity: int, now: datetime,
                  kill_switch: bool, squareoff: time, risk: RiskSettings,
                  counts: Counts, product: Product = Product.MIS,
                  squared_off: bool = False) -> RuleRefusal | None:
    """Why a new entry may not be sent now, or ``None``."""
    local = now.astimezone(IST)
    if kill_switch:
        return RuleRefusal("the kill switch is on (close-only): new entries are refused, exits "
                           "are allowed", {}, code="kill_switch")
    if squared_off and product is Product.MIS:
        return RuleRefusal(f"new intraday (MIS) entries on {exchange.value} are stopped for "
                           "today by a square-off (exits still go); to allow them again, "
                           f"{HOW_TO_ALLOW}",
                           {"exchange": exchange.value, "how_to_allow": HOW_TO_ALLOW},
                           code="after_squareoff")
    if risk.market_hours and product is Product.MIS and local.time() >= squareoff:
        return RuleRefusal(f"no new intraday entries on {exchange.value} after its square-off "
                           f"time {squareoff:%H:%M} IST", {"squareoff": f"{squareoff:%H:%M}"},
                           code="after_squareoff")
    if risk.max_orders_per_day and counts.account_entries >= risk.max_orders_per_day:
        return RuleRefusal(f"the daily cap of {risk.max_orders_per_day} entry orders "
                           "(MAX_ORDERS_PER_DAY) is reached", {"cap": risk.max_orders_per_day},
                           code="order_cap")
    if risk.max_orders_per_strategy and counts.strategy_entries >= risk.max_orders_per_strategy:
        return RuleRefusal(f"strategy {strategy or '(none)'!r} reached its daily cap of "
                           f"{risk.max_orders_per_strategy} entry orders "
                           "(MAX_ORDERS_PER_STRATEGY)", {"cap": risk.max_orders_per_strategy},
                           code="strategy_cap")
    if risk.max_quantity_per_day and (
            counts.strategy_quantity + quantity > risk.max_quantity_per_day):
        return RuleRefusal(f"{quantity} more would take strategy {strategy or '(none)'!r} past "
                           f"{risk.max_quantity_per_day} units of this instrument today "
                           "(MAX_QUANTITY_PER_DAY)",
                           {"cap": risk.max_quantity_per_day,
                            "already": counts.strategy_quantity}, code="quantity_cap")
    return None
