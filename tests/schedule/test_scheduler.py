"""The scheduler against the Kotak sandbox with a clock the test moves: the daily login
across Kotak's midnight expiry, the square-off that proves the book flat, and each trigger
run exactly once however many schedulers compete, across restarts and holidays."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from bridge.clock import IST, ManualClock
from bridge.domain import Exchange, OrderRequest, OrderType, Product, Side, round_to_tick
from bridge.journal.jobs import RunStatus
from bridge.journal.rows import SignalStatus
from bridge.kotak.sandbox import Rule, SandboxAccount
from bridge.orders.squareoff import SquareOff
from bridge.schedule.jobs import JobActions
from bridge.schedule.runner import Scheduler
from tests.signals.conftest import SECRET, Bridge

MakeBridge = Callable[..., Bridge]
NSE_GROUP = "squareoff:BFO+BSE+NFO+NSE"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=IST)


def requests_to(bridge: Bridge, endpoint: str) -> int:
    return len(bridge.sandbox.requests.snapshot(endpoint))


def runs_of(bridge: Bridge, job: str) -> list[Any]:
    return bridge.services.jobs.runs(job)


# --- the daily login ----------------------------------------------------------------------


def test_signals_before_and_after_midnight_succeed_with_one_login_at_the_renewal_time(
        make_bridge: MakeBridge) -> None:
    clock = ManualClock(at("2026-11-30T14:00"))
    bridge = make_bridge(clock)
    scheduler = Scheduler(bridge.services, runner="leader")
    assert scheduler.try_lead()
    logins = requests_to(bridge, "login")

    clock.set(at("2026-11-30T23:50"))
    status, body = bridge.signal(symbol="NSE:SBIN", action="BUY", quantity=1, price="500",
                                 alert_id="before-midnight")
    assert status == 200 and body["status"] == "placed"

    clock.set(at("2026-12-01T00:10"))  # Kotak's session died at midnight
    assert not bridge.services.broker().sessions.status().valid
    clock.set(at("2026-12-01T08:29"))
    scheduler.run_due()
    assert requests_to(bridge, "login") == logins  # nothing before the configured time
    clock.set(at("2026-12-01T08:30"))
    scheduler.run_due()
    assert requests_to(bridge, "login") == logins + 1
    scheduler.run_due()
    assert requests_to(bridge, "login") == logins + 1  # the trigger ran once

    clock.set(at("2026-12-01T09:20"))
    status, body = bridge.signal(symbol="NSE:SBIN", action="SELL", quantity=1, price="500",
                                 alert_id="after-midnight")
    assert status == 200 and body["status"] == "placed"
    (run,) = [r for r in runs_of(bridge, "session") if r.trigger_at == at("2026-12-01T08:30")]
    assert run.status is RunStatus.SUCCEEDED and "logged in" in run.summary
    assert any(n.kind == "login_renewed" for n in bridge.services.jobs.notices())


def test_a_wrong_mpin_costs_one_attempt_marks_not_ready_and_notifies(
        make_bridge: MakeBridge, account: SandboxAccount) -> None:
    clock = ManualClock(at("2026-11-30T08:00"))
    wrong = f"{(int(account.mpin) + 1) % 1_000_000:06d}"
    bridge = make_bridge(clock, KOTAK_MPIN=wrong)
    attempts = bridge.sandbox.failed_logins(account.ucc)
    assert attempts == 1  # the start's attempt

    scheduler = Scheduler(bridge.services, runner="leader")
    assert scheduler.try_lead()
    clock.set(at("2026-11-30T08:30"))
    scheduler.run_due()
    clock.set(at("2026-11-30T12:00"))
    scheduler.run_due()

    assert bridge.sandbox.failed_logins(account.ucc) == 1  # no second attempt, ever
    runs = runs_of(bridge, "session")
    assert runs and all(r.status is RunStatus.FAILED for r in runs)
    notices = [n for n in bridge.services.jobs.notices() if n.kind == "login_failed"]
    assert notices and wrong not in notices[0].text
    response = bridge.client.get("/readyz")
    assert response.status_code == 503
    assert any("no valid Kotak session" in reason for reason in response.get_json()["reasons"])


# --- the square-off -----------------------------------------------------------------------

EQUITIES = {"RELIANCE-EQ": 10, "INFY-EQ": 25, "SBIN-EQ": -40, "TCS-EQ": 5, "HDFCBANK-EQ": -12,
            "ICICIBANK-EQ": 30, "ITC-EQ": 100, "LT-EQ": -3, "AXISBANK-EQ": 8,
            "KOTAKBANK-EQ": 6}
FUTURES = {"NIFTY26DECFUT": 65 * 30, "BANKNIFTY26DECFUT": -30, "RELIANCE26DECFUT": 500,
           "M&M26DECFUT": -200, "NIFTY27JANFUT": 65, "BANKNIFTY27JANFUT": 60}
COMMODITIES = {"CRUDEOIL26DECFUT": 100, "CRUDEOILM26DECFUT": -20, "GOLD26DECFUT": 100,
               "CRUDEOIL27JANFUT": -100}


def _seed_book(bridge: Bridge) -> None:
    index = bridge.services.instruments.current()
    wanted = [(Exchange.NSE, EQUITIES), (Exchange.NFO, FUTURES), (Exchange.MCX, COMMODITIES)]
    instruments = [index.get(exchange, symbol) for exchange, book in wanted for symbol in book]
    prices = bridge.services.broker().last_prices([i for i in instruments if i is not None])
    for exchange, book in wanted:
        for symbol, qty in book.items():
            bridge.seed(symbol, qty, exchange=exchange.value,
                        price=str(prices[(exchange, symbol)]))
    # Carried and delivery positions the square-off must leave alone.
    bridge.seed("SBIN-EQ", 50, product="CNC", price=str(prices[(Exchange.NSE, "SBIN-EQ")]))
    bridge.seed("NIFTY26DECFUT", 65, exchange="NFO", product="NRML",
                price=str(prices[(Exchange.NFO, "NIFTY26DECFUT")]))
    broker = bridge.services.broker()
    sbin = index.get(Exchange.NSE, "SBIN-EQ")
    infy = index.get(Exchange.NSE, "INFY-EQ")
    assert sbin is not None and infy is not None
    # A working buy below the market, a stop above it (trigger pending), and a CNC order.
    below = round_to_tick(prices[(Exchange.NSE, "SBIN-EQ")] * Decimal("0.95"), sbin.tick_size)
    trigger = round_to_tick(prices[(Exchange.NSE, "INFY-EQ")] * Decimal("1.04"),
                            infy.tick_size)
    broker.place_order(OrderRequest(sbin, Side.BUY, 5, Product.MIS, OrderType.LIMIT,
                                    price=below, tag="manual1"))
    broker.place_order(OrderRequest(infy, Side.BUY, 5, Product.MIS, OrderType.SL,
                                    price=trigger + 1, trigger_price=trigger, tag="manual2"))
    broker.place_order(OrderRequest(sbin, Side.BUY, 1, Product.CNC, OrderType.LIMIT,
                                    price=below, tag="manual3"))
    # Kotak rejects the first close of one instrument, and turns another's market close
    # into a protected limit on the wrong side of the market that never fills.
    bridge.sandbox.add_rule(Rule("reject", reason="insufficient_funds", symbol="RELIANCE-EQ",
                                 side="SELL", product="MIS"))
    bridge.sandbox.add_rule(Rule("stuck", symbol="ICICIBANK-EQ", side="SELL", product="MIS"))


def _net(bridge: Bridge, exchange_segment: str, product: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in bridge.sandbox.positions(bridge.account.ucc):
        if row["exSeg"] == exchange_segment and row["prod"] == product:
            net = (int(row["flBuyQty"]) + int(row["cfBuyQty"]) - int(row["flSellQty"])
                   - int(row["cfSellQty"]))
            out[row["trdSym"]] = out.get(row["trdSym"], 0) + net
    return {symbol: net for symbol, net in out.items() if net}


def _working(bridge: Bridge, product: str) -> list[dict[str, Any]]:
    return [o for o in bridge.book() if o["prod"] == product
            and o["ordSt"] in ("open", "trigger pending", "open pending")]


def test_square_off_flattens_every_intraday_position_and_proves_it(
        make_bridge: MakeBridge) -> None:
    clock = ManualClock(at("2026-11-30T15:00"))
    bridge = make_bridge(clock, SQUAREOFF_FILL_WAIT_S="1", MARKET_HOURS="enforce")
    _seed_book(bridge)
    scheduler = Scheduler(bridge.services, runner="leader")
    assert scheduler.try_lead()
    assert runs_of(bridge, NSE_GROUP) == []  # not due before 15:15

    clock.set(at("2026-11-30T15:15"))
    answers: list[tuple[int, dict[str, Any]]] = []

    def swing_signal() -> None:  # another strategy's delivery trade while closes go out
        answers.append(bridge.signal(symbol="NSE:ITC", action="BUY", quantity=3,
                                     product="CNC", price="500", strategy="swing",
                                     alert_id="swing-1"))

    other = threading.Thread(target=swing_signal)
    other.start()
    scheduler.run_due()
    other.join(10)

    (run,) = runs_of(bridge, NSE_GROUP)
    assert run.status is RunStatus.SUCCEEDED, run.summary
    assert "FLAT" in run.summary
    assert _net(bridge, "nse_cm", "MIS") == {} and _net(bridge, "nse_fo", "MIS") == {}
    assert _working(bridge, "MIS") == []
    # Untouched: delivery and carried positions, the CNC order, MCX (its time is 23:25).
    assert _net(bridge, "nse_cm", "CNC") == {"SBIN-EQ": 50, "ITC-EQ": 3}
    assert _net(bridge, "nse_fo", "NRML") == {"NIFTY26DECFUT": 65}
    assert len(_working(bridge, "CNC")) == 1
    assert _net(bridge, "mcx_fo", "MIS") == {s: q for s, q in COMMODITIES.items()}
    assert answers and answers[0][0] == 200 and answers[0][1]["status"] == "placed"
    # Each close had the position's own product and side; the NIFTY future was split at
    # the freeze quantity; the rejected and the stuck ones were re-priced as limits.
    report = run.report["reports"][0]
    closes = report["closes"]
    assert all(c["side"] == "SELL" for c in closes if c["trading_symbol"] == "RELIANCE-EQ")
    nifty = [c for c in closes if c["trading_symbol"] == "NIFTY26DECFUT"]
    assert sorted(c["quantity"] for c in nifty) == [195, 1755]  # whole lots under 1801
    for symbol in ("RELIANCE-EQ", "ICICIBANK-EQ"):
        tried = [c for c in closes if c["trading_symbol"] == symbol]
        assert [c["order_type"] for c in tried] == ["MARKET", "LIMIT"], tried
        assert tried[-1]["outcome"] == "complete"
    assert len(report["cancelled"]) >= 3  # the two manual orders and the stuck close

    # From now on intraday entries on NSE are refused; exits and delivery still go.
    status, body = bridge.signal(symbol="NSE:SBIN", action="BUY", quantity=1, price="500",
                                 alert_id="late-entry")
    assert status == 409 and body["error"]["code"] == "after_squareoff"

    clock.set(at("2026-11-30T23:25"))
    scheduler.run_due()
    (mcx,) = runs_of(bridge, "squareoff:MCX")
    assert mcx.status is RunStatus.SUCCEEDED, mcx.summary
    assert _net(bridge, "mcx_fo", "MIS") == {}
    squareoff_notices = [n for n in bridge.services.jobs.notices() if n.kind == "squareoff"]
    assert len(squareoff_notices) == 2 and all("FLAT" in n.text for n in squareoff_notices)


def test_a_position_whose_signal_is_still_working_is_left_and_reported(
        make_bridge: MakeBridge) -> None:
    clock = ManualClock(at("2026-11-30T15:15"))
    bridge = make_bridge(clock, background=False, SQUAREOFF_FILL_WAIT_S="0.5")
    bridge.seed("SBIN-EQ", 10)
    bridge.seed("INFY-EQ", 10)
    journal = bridge.services.journal
    journal.signals.add_signal(alert_id="in-flight", source="tradingview", account="default",
                               remote_addr="127.0.0.1", raw_body="{}", signal=None,
                               status=SignalStatus.QUEUED, priority=1, expires_at=None,
                               instrument="NSE:SBIN-EQ")
    engine = SquareOff(bridge.services.orders, journal, bridge.services.instruments,
                       bridge.services.settings, clock, settle_wait=0.3)
    report = engine.run("default", [Exchange.NSE])
    assert not report.flat
    assert [(left.trading_symbol, left.net) for left in report.left] == [("SBIN-EQ", 10)]
    assert "signal" in report.left[0].reason
    assert _net(bridge, "nse_cm", "MIS") == {"SBIN-EQ": 10}


def test_dry_run_lists_the_orders_and_sends_nothing(make_bridge: MakeBridge) -> None:
    clock = ManualClock(at("2026-11-30T15:16"))
    bridge = make_bridge(clock)
    bridge.seed("SBIN-EQ", 10)
    bridge.seed("NIFTY26DECFUT", -65, exchange="NFO")
    placed = requests_to(bridge, "place")
    outcome = JobActions(bridge.services).square_off([Exchange.NSE, Exchange.NFO],
                                                     dry_run=True)
    (report,) = outcome.report["reports"]
    assert sorted((c["side"], c["quantity"], c["trading_symbol"])
                  for c in report["closes"]) == [("BUY", 65, "NIFTY26DECFUT"),
                                                 ("SELL", 10, "SBIN-EQ")]
    assert requests_to(bridge, "place") == placed
    assert _net(bridge, "nse_cm", "MIS") == {"SBIN-EQ": 10}
    status, _ = bridge.signal(symbol="NSE:SBIN", action="BUY", quantity=1, price="500")
    assert status == 200  # a dry run closes nothing, entries included


# --- exactly once -------------------------------------------------------------------------


def test_four_schedulers_one_trigger_one_run_and_a_restart_does_not_repeat_it(
        make_bridge: MakeBridge) -> None:
    clock = ManualClock(at("2026-11-30T15:10"))
    bridges = [make_bridge(clock, SQUAREOFF_FILL_WAIT_S="1") for _ in range(4)]
    first = bridges[0]
    for symbol in ("SBIN-EQ", "INFY-EQ", "TCS-EQ"):
        first.seed(symbol, 10)
    schedulers = [Scheduler(b.services, runner=f"worker-{i}") for i, b in enumerate(bridges)]
    clock.set(at("2026-11-30T15:15"))
    barrier = threading.Barrier(4)

    def compete(scheduler: Scheduler) -> None:
        barrier.wait()
        scheduler.try_lead()
        scheduler.run_due()

    threads = [threading.Thread(target=compete, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    leaders = [s for s in schedulers if s.leading]
    assert len(leaders) == 1
    (run,) = runs_of(first, NSE_GROUP)
    assert run.status is RunStatus.SUCCEEDED and run.runner == leaders[0].runner
    assert requests_to(first, "place") == 3

    leaders[0].resign()  # the leader's worker restarts
    clock.set(at("2026-11-30T15:20"))
    successor = next(s for s in schedulers if s is not leaders[0])
    assert successor.try_lead()
    successor.run_due()
    assert len(runs_of(first, NSE_GROUP)) == 1
    assert requests_to(first, "place") == 3
    leader = first.services.jobs.leader("scheduler")
    assert leader is not None and leader.holder == successor.runner


def test_a_process_down_at_1515_and_back_at_1520_squares_off_at_start(
        make_bridge: MakeBridge) -> None:
    clock = ManualClock(at("2026-11-30T15:20"))
    bridge = make_bridge(clock, SQUAREOFF_FILL_WAIT_S="1")
    bridge.seed("SBIN-EQ", 10)
    scheduler = Scheduler(bridge.services, runner="late")
    assert scheduler.try_lead()  # catches up on winning the lock
    (run,) = runs_of(bridge, NSE_GROUP)
    assert run.trigger_at == at("2026-11-30T15:15") and run.status is RunStatus.SUCCEEDED
    assert _net(bridge, "nse_cm", "MIS") == {}


def test_nothing_talks_to_the_broker_on_a_listed_holiday(make_bridge: MakeBridge) -> None:
    clock = ManualClock(at("2026-12-25T15:20"))  # Christmas: every exchange closed
    bridge = make_bridge(clock)
    bridge.seed("SBIN-EQ", 10)
    before = len(bridge.sandbox.requests.snapshot())
    scheduler = Scheduler(bridge.services, runner="holiday")
    assert scheduler.try_lead()
    clock.set(at("2026-12-25T23:30"))
    scheduler.run_due()
    assert [r.job for r in bridge.services.jobs.runs()] == ["housekeeping"]
    assert len(bridge.sandbox.requests.snapshot()) == before
    assert _net(bridge, "nse_cm", "MIS") == {"SBIN-EQ": 10}


def test_readiness_shows_the_leader_and_its_heartbeat(make_bridge: MakeBridge) -> None:
    clock = ManualClock(at("2026-11-30T10:00"))
    bridge = make_bridge(clock)
    body = bridge.client.get("/readyz").get_json()
    assert body["checks"]["scheduler"]["leader"] is None
    assert any("no scheduler is leading" in reason for reason in body["reasons"])
    scheduler = Scheduler(bridge.services, runner="leader-x")
    assert scheduler.try_lead()
    response = bridge.client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"]["scheduler"]["leader"] == "leader-x"
    assert SECRET not in response.get_data(as_text=True)
