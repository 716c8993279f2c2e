"""Paper mode's book file: every worker sees one book, a failed call changes nothing, a file
from before opens whole, and a call late in a busy day costs what it costs at its start."""

from __future__ import annotations

import copy
import multiprocessing
import sqlite3
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bridge.clock import ManualClock
from bridge.kotak.sandbox.broker import Sandbox
from bridge.kotak.sandbox.conditions import SandboxAccount, SandboxConfig
from bridge.kotak.sandbox.state import (
    BookRecord,
    FillRecord,
    HistoryRow,
    OrderRecord,
    SandboxState,
    SessionRecord,
    SqliteStateStore,
    StateStore,
    dumps,
)

UCC = "AB123"
ACCOUNT = SandboxAccount(ucc=UCC, mobile="9999999999", mpin="123456",
                         totp_secret="JBSWY3DPEHPK3PXP", password="pw", consumer_key="key",
                         consumer_secret="secret", otp="1234", pan="ABCDE1234F",
                         cash=Decimal(10_000_000))
NOON = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)  # 12:00 in India, a Tuesday


def _sandbox(path: Path, clock: ManualClock, store: SqliteStateStore | None = None) -> Sandbox:
    """A worker's paper broker over the shared file (a store of its own: as a process)."""
    return Sandbox([ACCOUNT], config=SandboxConfig(accept_delay=0),
                   store=store or SqliteStateStore(path), clock=clock)


def _place(sandbox: Sandbox, n: int, kind: str = "MKT", price: str = "0",
           count: int = 1) -> str:
    """Place order ``n`` (and the ``count - 1`` after it, in the same call); return the
    last one's number."""
    with sandbox.store.transaction() as state:
        for m in range(n, n + count):
            status, body = sandbox.engine.place(state, UCC, {
                "am": "NO", "dq": "0", "es": "nse_cm", "mp": "0", "pc": "MIS", "pr": price,
                "pt": kind, "qt": "1", "rt": "DAY", "tp": "0", "ts": "SBIN-EQ",
                "tt": "B" if m % 2 else "S", "ig": f"tag-{m}"}, sandbox.clock.now())
            assert status == 200, body
    return str(body["nOrdNo"])


def _copy(store: StateStore) -> SandboxState:
    with store.transaction() as state:
        return copy.deepcopy(state)


def _rows_last_written(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM sandbox_records WHERE version = "
            "(SELECT version FROM sandbox_clock)").fetchone()
    return int(count)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOON)


def test_two_workers_see_each_others_orders_fills_and_cancels(tmp_path: Path,
                                                               clock: ManualClock) -> None:
    path = tmp_path / "paper-broker.db"
    one, two = _sandbox(path, clock), _sandbox(path, clock)
    assert two.orders(UCC) == []  # the second worker has read the (empty) book before

    filled = _place(one, 1)
    with one.store.transaction() as state:
        market = one.engine.price(state, "nse_cm", "SBIN-EQ", clock.now())
    assert market is not None
    # a sell 5% above the market: stays open
    resting = _place(one, 2, kind="L", price=f"{(market * Decimal('1.05')).quantize(1)}")

    seen = {row["nOrdNo"]: row["ordSt"] for row in two.orders(UCC)}
    assert seen == {filled: "complete", resting: "open"}
    assert [row["trdSym"] for row in two.positions(UCC)] == ["SBIN-EQ"]
    with two.store.transaction() as state:
        assert state.books[UCC].tags == {"tag-1", "tag-2"}
        status, _ = two.engine.cancel(state, UCC, {"on": resting}, clock.now())
    assert status == 200

    seen = {row["nOrdNo"]: row["ordSt"] for row in one.orders(UCC)}
    assert seen == {filled: "complete", resting: "cancelled"}
    with one.store.transaction() as state:
        assert [fill.order_id for fill in state.books[UCC].fills] == [filled]
        assert state.books[UCC].working == []
    # a third worker, starting now, reads the same book whole
    assert _sandbox(path, clock).orders(UCC) == one.orders(UCC)


def test_a_logout_in_one_worker_ends_the_session_in_the_other(tmp_path: Path,
                                                              clock: ManualClock) -> None:
    path = tmp_path / "paper-broker.db"
    one, two = _sandbox(path, clock), _sandbox(path, clock)
    session = SessionRecord(sid="s-1", token="t", ucc=UCC, kind="trade", flow="totp",
                            created_at=NOON, expires_at=NOON + timedelta(hours=8), ip="")
    with one.store.transaction() as state:
        state.sessions[session.sid] = session
    with two.store.transaction() as state:
        assert state.sessions == {"s-1": session}
        del state.sessions["s-1"]

    with one.store.transaction() as state:
        assert state.sessions == {}


def test_the_next_day_each_worker_sees_the_book_emptied(tmp_path: Path,
                                                        clock: ManualClock) -> None:
    path = tmp_path / "paper-broker.db"
    one, two = _sandbox(path, clock), _sandbox(path, clock)
    for n in range(3):
        _place(one, n)
    assert len(two.orders(UCC)) == 3

    clock.advance(timedelta(days=1))
    assert one.orders(UCC) == []  # the book rolls over in the first worker

    assert two.orders(UCC) == []
    with two.store.transaction() as state:
        assert state.books[UCC].tags == set() and state.books[UCC].fills == []
    assert len(_sandbox(path, clock).orders(UCC)) == 0


def test_a_call_that_fails_half_way_changes_nothing_anywhere(tmp_path: Path,
                                                             clock: ManualClock) -> None:
    path = tmp_path / "paper-broker.db"
    one, two = _sandbox(path, clock), _sandbox(path, clock)
    kept = _place(one, 1)
    before = one.orders(UCC)
    assert two.orders(UCC) == before

    with pytest.raises(RuntimeError), one.store.transaction() as state:
        one.engine.place(state, UCC, {
            "am": "NO", "dq": "0", "es": "nse_cm", "mp": "0", "pc": "MIS", "pr": "0",
            "pt": "MKT", "qt": "1", "rt": "DAY", "tp": "0", "ts": "SBIN-EQ", "tt": "B",
            "ig": "lost"}, clock.now())
        state.books[UCC].orders[kept].status = "cancelled"
        raise RuntimeError("the call fails after changing the book")

    assert one.orders(UCC) == before
    assert two.orders(UCC) == before
    with one.store.transaction() as state:
        assert state.books[UCC].tags == {"tag-1"}
        assert state.order_seq == 1
    # the failed call's order number is given again, as if it had never been
    assert _place(two, 3) == f"{NOON:%y%m%d}{2:09d}"


def test_a_file_from_before_opens_with_every_order(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "paper-broker.db"
    orders = {}
    for n in range(1, 4):
        order_id = f"261201{n:09d}"
        orders[order_id] = OrderRecord(
            order_id=order_id, ucc=UCC, segment="nse_cm", trading_symbol="SBIN-EQ",
            symbol="SBIN", token="3045", side="B", product="MIS", order_type="L",
            quantity=n, price=Decimal("800.05"), trigger=Decimal(0), validity="DAY",
            disclosed=0, amo=False, tag=f"old-{n}", status="complete", placed_at=NOON,
            updated_at=NOON, ready_at=NOON, filled=n, average_price=Decimal("800.05"),
            history=[HistoryRow(status="complete", at=NOON, price=Decimal("800.05"),
                                trigger=Decimal(0), quantity=n, filled=n, order_type="L")])
    fill = FillRecord(fill_id="00000001", order_id="261201000000001", ucc=UCC,
                      segment="nse_cm", trading_symbol="SBIN-EQ", symbol="SBIN", side="B",
                      product="MIS", order_type="L", quantity=1, price=Decimal("800.05"),
                      at=NOON, tag="old-1", exchange_order_id="NA")
    old = SandboxState(books={UCC: BookRecord(
        ucc=UCC, day=date(2026, 12, 1), cash=Decimal(10_000_000), orders=orders,
        tags={"old-1", "old-2", "old-3"}, fills=[fill])}, order_seq=3, fill_seq=1)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE sandbox_state "
                     "(id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL)")
        conn.execute("INSERT INTO sandbox_state (id, body) VALUES (1, ?)", (dumps(old),))

    one = _sandbox(path, clock)

    with one.store.transaction() as state:
        assert state == old
    assert [row["nOrdNo"] for row in one.orders(UCC)] == sorted(orders, reverse=True)
    assert _place(one, 4) == f"{NOON:%y%m%d}{4:09d}"
    # a worker opening the file later finds it turned over once, with the new order kept
    assert len(_sandbox(path, clock).orders(UCC)) == 4


def test_a_call_late_in_a_busy_day_reads_and_writes_what_one_early_does(
        tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "paper-broker.db"
    store = SqliteStateStore(path)
    one, two = _sandbox(path, clock), _sandbox(path, clock, store)

    def cost_of_a_place_and_a_read(n: int) -> tuple[int, int]:
        """Rows the first worker's place wrote, and rows the second decodes to see it."""
        _place(one, n)
        written = _rows_last_written(path)
        decoded = store.rows_decoded
        two.orders(UCC)
        return written, store.rows_decoded - decoded

    two.orders(UCC)
    early = cost_of_a_place_and_a_read(0)
    _place(one, 1, count=150)
    _place(two, 151, count=149)
    two.orders(UCC)
    late = cost_of_a_place_and_a_read(300)

    assert late == early
    assert len(two.orders(UCC)) == 301


def test_workers_taking_turns_hold_the_book_a_fresh_worker_reads(tmp_path: Path,
                                                                 clock: ManualClock) -> None:
    """Every kind of change a call makes reaches the file: after each call, each worker's
    book is the one a worker starting then reads whole."""
    path = tmp_path / "paper-broker.db"
    one, two = _sandbox(path, clock), _sandbox(path, clock)
    with one.store.transaction() as state:
        market = one.engine.price(state, "nse_cm", "SBIN-EQ", clock.now())
    assert market is not None
    below = f"{(market * Decimal('0.97')).quantize(1)}"
    ids: list[str] = []

    def modify(sandbox: Sandbox) -> None:
        with sandbox.store.transaction() as state:
            status, body = sandbox.engine.modify(state, UCC, {
                "no": ids[1], "qt": "2", "pr": below, "pt": "L", "tp": "0", "vd": "DAY"},
                clock.now())
        assert status == 200, body

    def cancel(sandbox: Sandbox) -> None:
        with sandbox.store.transaction() as state:
            status, body = sandbox.engine.cancel(state, UCC, {"on": ids[2]}, clock.now())
        assert status == 200, body

    def fail_a_login(sandbox: Sandbox) -> None:
        with sandbox.store.transaction() as state:
            state.login_failures[UCC] = 2

    steps = [
        lambda s: ids.append(_place(s, 1)),
        lambda s: ids.append(_place(s, 3, kind="L", price=below)),  # a buy that rests
        lambda s: ids.append(_place(s, 5, kind="L", price=below)),
        modify,
        cancel,
        lambda s: s.set_price("NSE", "SBIN-EQ", Decimal(below)),  # the resting buy fills
        lambda s: s.seed_position(UCC, "NSE", "INFY-EQ", "CNC", 5, Decimal(1500)),
        fail_a_login,
        lambda s: s.unlock(UCC),
        lambda s: clock.advance(timedelta(days=1)),
        lambda s: ids.append(_place(s, 7)),
    ]
    for n, step in enumerate(steps):
        sandbox = one if n % 2 else two
        step(sandbox)
        sandbox.orders(UCC)  # a call: books move on with the clock
        fresh = _copy(SqliteStateStore(path))
        assert _copy(one.store) == fresh, f"after step {n}"
        assert _copy(two.store) == fresh, f"after step {n}"
    assert [row["ordSt"] for row in one.orders(UCC)] == ["complete"]
    assert {row["trdSym"] for row in one.positions(UCC)} == {"INFY-EQ", "SBIN-EQ"}


def _worker(path: Path, first: int, count: int) -> None:
    sandbox = _sandbox(path, ManualClock(NOON))
    for n in range(first, first + count):
        _place(sandbox, n)
        sandbox.orders(UCC)


def test_worker_processes_placing_at_once_keep_every_order(tmp_path: Path) -> None:
    path = tmp_path / "paper-broker.db"
    SqliteStateStore(path)
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=_worker, args=(path, first, 40)) for first in (0, 100)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]

    state = _copy(SqliteStateStore(path))
    book = state.books[UCC]
    assert len(book.orders) == 80 and state.order_seq == 80
    assert book.tags == {f"tag-{n}" for n in (*range(40), *range(100, 140))}
    assert len(book.fills) == 80 and len({fill.fill_id for fill in book.fills}) == 80
    (position,) = book.positions.values()
    assert position.day_buy_qty + position.day_sell_qty == 80
