"""The entry rules' counts for a fan-out's accounts, read in one statement, are what reading
them account by account gives: the day's entries up to each cap, the strategy's quantity in
the instrument, the kill switch and each account's stop on new entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from bridge.clock import SystemClock
from bridge.journal.journal import Journal
from bridge.journal.orders import count_entries, entry_counts_many
from bridge.journal.rows import EntryQuery, OrderPlan, OrderState


def _plan(symbol: str, quantity: int, *, exit_: bool = False, tag: str) -> OrderPlan:
    return OrderPlan("NSE", symbol, "BUY", quantity, "MIS", "MKT", None, None, exit_, tag)


def _day(journal: Journal) -> None:
    """Three accounts with different days: entries in two strategies and two symbols, an
    exit, a failed and a rejected order; one account stopped on NSE."""
    made = 0

    def add(account: str, strategy: str, plan: OrderPlan,
            state: OrderState | None = None) -> None:
        nonlocal made
        made += 1
        rows, _ = journal.orders.add_orders(None, account, strategy, [plan])
        if state is not None:
            journal.orders.set_order(rows[0].id, state, reason="test")

    for n in range(6):
        add("acct-a", "fan", _plan("SBIN-EQ", 10 + n, tag=f"a{n}"))
    add("acct-a", "other", _plan("SBIN-EQ", 5, tag="a-other"))
    add("acct-a", "fan", _plan("TCS-EQ", 3, tag="a-tcs"))
    add("acct-a", "fan", _plan("SBIN-EQ", 7, exit_=True, tag="a-exit"))
    add("acct-a", "fan", _plan("SBIN-EQ", 9, tag="a-failed"), OrderState.FAILED)
    add("acct-a", "fan", _plan("SBIN-EQ", 4, tag="a-rejected"), OrderState.REJECTED)
    add("acct-b", "fan", _plan("SBIN-EQ", 2, tag="b0"))
    journal.entries.close_entries("acct-b", ["NSE"], datetime.now(UTC).date())
    journal.switches.set_kill_switch(True)


def test_counts_read_together_equal_counts_read_one_by_one(engine: Engine) -> None:
    journal = Journal(engine, SystemClock())
    _day(journal)
    today = datetime.now(UTC) - timedelta(hours=1)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    asked = [
        ("acct-a", EntryQuery(today, "fan", "NSE", "SBIN-EQ")),
        ("acct-a", EntryQuery(today, "fan", "NSE", "SBIN-EQ", account_cap=3, strategy_cap=2,
                              sum_quantity=False)),
        ("acct-a", EntryQuery(today, "fan", "NSE", "SBIN-EQ", account_cap=0, strategy_cap=0)),
        ("acct-a", EntryQuery(today, "other", "NSE", "TCS-EQ")),
        ("acct-a", EntryQuery(tomorrow, "fan", "NSE", "SBIN-EQ")),
        ("acct-b", EntryQuery(today, "fan", "NSE", "SBIN-EQ")),
        ("acct-b", EntryQuery(today, "fan", "BSE", "SBIN-EQ")),
        ("acct-c", EntryQuery(today, "fan", "NSE", "SBIN-EQ")),
    ]
    with engine.connect() as conn:
        together = entry_counts_many(conn, asked)
        alone = [count_entries(conn, account, entry) for account, entry in asked]

    assert together == alone
    first = together[0]
    assert (first.account_entries, first.strategy_entries, first.strategy_quantity) == (
        9, 8, 10 + 11 + 12 + 13 + 14 + 15)
    assert (together[1].account_entries, together[1].strategy_entries,
            together[1].strategy_quantity) == (3, 2, 0)
    assert all(counts.kill_switch for counts in together)
    assert [counts.squared_off for counts in together] == [
        False, False, False, False, False, True, False, False]
