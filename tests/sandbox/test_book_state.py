"""The sandbox's saved state (paper mode keeps it in a file shared by the workers) carries the
day's order tags, so a repeated tag is refused whichever worker placed the first one."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from bridge.kotak.sandbox.state import BookRecord, SandboxState, dumps, loads


def test_the_days_tags_survive_a_save_and_load() -> None:
    state = SandboxState(books={"AB123": BookRecord(
        ucc="AB123", day=date(2026, 12, 1), cash=Decimal("100000"), tags={"b-2", "a-1"})})

    again = loads(dumps(state))

    assert again.books["AB123"].tags == {"a-1", "b-2"}
    assert again == state


def test_a_state_saved_before_tags_were_kept_loads_with_none() -> None:
    saved = dumps(SandboxState(books={"AB123": BookRecord(
        ucc="AB123", day=date(2026, 12, 1), cash=Decimal("1"))})).replace(',"tags":[]', "")

    assert loads(saved).books["AB123"].tags == set()
