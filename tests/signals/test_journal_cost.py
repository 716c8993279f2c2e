"""What one signal costs the journal: a plain signal, sent and followed to its fill within
the answer, stays within a budget of statements and three transactions (admission, Kotak's
answer, the fill). Each statement is CPU the bridge spends per alert, so a change that adds
one to this path should be one a trader gains from (figures: bench/README.md)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event

from tests.signals.conftest import Bridge

SIGNALS = 20
#: measured 23.3 on SQLite and 23.4 on PostgreSQL (31.2 before issue 15's last session)
BUDGET = 25


def test_a_plain_signal_stays_within_its_statement_budget(bridge: Bridge) -> None:
    for n in range(3):  # sessions, scrip master and caches warm
        bridge.signal(symbol="NSE:SBIN", action="BUY", quantity=1, alert_id=f"warm-{n}")
    counted = {"statements": 0, "commits": 0}

    def statement(*_: Any) -> None:
        counted["statements"] += 1

    def commit(*_: Any) -> None:
        counted["commits"] += 1

    event.listen(Engine, "before_cursor_execute", statement)
    event.listen(Engine, "commit", commit)
    try:
        answers = [bridge.signal(symbol="NSE:SBIN", action="BUY", quantity=1,
                                 alert_id=f"cost-{n}") for n in range(SIGNALS)]
    finally:
        event.remove(Engine, "before_cursor_execute", statement)
        event.remove(Engine, "commit", commit)

    assert all(code == 200 and answer["orders"][0]["status"] == "complete"
               for code, answer in answers)
    assert counted["statements"] / SIGNALS <= BUDGET, counted
    # Background work (heartbeats, sweeps) may add a commit now and then.
    assert counted["commits"] / SIGNALS <= 3.3, counted
