"""Real flows through a live-mode bridge and the Kotak sandbox, and what reaches the
operator's Telegram and webhook: rejected and unknown orders, the kill switch, a failed
login, a square-off. No message may carry a secret; no order may wait for a message."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from bridge.cli import cli
from bridge.clock import IST, ManualClock
from bridge.config import load_settings
from bridge.domain import Exchange
from bridge.journal.rows import SignalStatus
from bridge.kotak.sandbox import Fault, Rule, SandboxAccount
from bridge.schedule.jobs import JobActions
from bridge.schedule.runner import Scheduler
from bridge.wiring import build_services
from tests.notify.conftest import (
    BOT_TOKEN,
    CHAT_ID,
    FakeReceiver,
    Received,
    notifying,
    secrets_of,
)
from tests.signals.conftest import SECRET, Bridge

MakeBridge = Callable[..., Bridge]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=IST)


def texts(posts: list[Received]) -> list[str]:
    return [str(post.body["text"]) for post in posts]


def arrived(fake: FakeReceiver, *needles: str, count: int = 1) -> list[str]:
    """Wait until ``count`` posts carry every needle; return all posts' texts."""
    def enough(posts: list[Received]) -> bool:
        return sum(all(n in text for n in needles) for text in texts(posts)) >= count

    return texts(fake.wait_for(enough, what=f"{count} x {needles}"))


def assert_clean(account: SandboxAccount, *fakes: FakeReceiver) -> None:
    for fake in fakes:
        for post in fake.posts():
            for secret in secrets_of(account):
                assert secret not in post.raw, f"a secret reached {post.path}"


def test_rejected_orders_reach_telegram_and_the_webhook_without_secrets(
        notify_bridge: MakeBridge, telegram: FakeReceiver, hook: FakeReceiver,
        account: SandboxAccount) -> None:
    bridge = notify_bridge()
    # Refused in Kotak's answer to the placement, and accepted first then rejected.
    bridge.sandbox.add_rule(Rule(action="reject", reason="ip_not_whitelisted"))
    code, _ = bridge.signal(symbol="NSE:SBIN", action="buy", quantity=4, strategy="breakout",
                            alert_id="rej-sync")
    assert code == 502
    bridge.sandbox.add_rule(Rule(action="reject", reason="circuit_limit", symbol="SBIN"))
    code, _ = bridge.signal(symbol="NSE:SBIN", action="sell", quantity=2, strategy="fade",
                            alert_id="rej-later")
    assert code == 502

    sync = next(t for t in arrived(telegram, "rej-sync") if "rej-sync" in t)
    assert sync.startswith("❌ order rejected: BUY 4 NSE:SBIN-EQ MIS")
    assert "strategy breakout" in sync and "whitelisted" in sync
    later = next(t for t in arrived(telegram, "rej-later") if "rej-later" in t)
    assert "SELL 2 NSE:SBIN-EQ" in later and "strategy fade" in later
    assert "circuit" in later.lower()
    (post,) = [p for p in telegram.posts() if "rej-later" in p.raw]
    assert post.path == f"/bot{BOT_TOKEN}/sendMessage"
    assert post.body["chat_id"] == CHAT_ID and post.body["disable_web_page_preview"] is True
    assert "parse_mode" not in post.body

    hooked = hook.wait_for(lambda posts: len([p for p in posts if "rej-" in p.raw]) >= 2)
    bodies = [p.body for p in hooked if "rej-" in p.raw]
    assert {b["kind"] for b in bodies} == {"order_rejected"}
    assert {b["level"] for b in bodies} == {"error"}
    assert all(datetime.fromisoformat(b["at"]).tzinfo is not None for b in bodies)
    assert set(bodies[0]) == {"kind", "level", "text", "at"}
    assert hooked[0].path.startswith("/hook/")
    assert_clean(account, telegram, hook)
    # Delivered once each, and marked so in the outbox.
    time.sleep(0.3)
    assert len([p for p in telegram.posts() if "rej-sync" in p.raw]) == 1
    assert all(n.kind != "order_rejected" or "rej-" in n.text
               for n in bridge.services.jobs.notices())


def test_an_unknown_outcome_is_told_then_its_settlement(
        notify_bridge: MakeBridge, telegram: FakeReceiver, hook: FakeReceiver,
        account: SandboxAccount) -> None:
    bridge = notify_bridge()
    # Kotak sits on the request past our read timeout, then executes it.
    bridge.sandbox.add_fault(Fault("stall", endpoint="place", seconds=2.5, when="before"))
    code, answer = bridge.signal(symbol="NSE:SBIN", action="buy", quantity=4,
                                 alert_id="lost-1")
    assert (code, answer["status"]) == (504, "unknown")

    told = next(t for t in arrived(telegram, "lost-1", "outcome unknown") if "lost-1" in t)
    assert told.startswith("⚠️ order unknown: BUY 4 NSE:SBIN-EQ")
    assert "order book" in told and "never be re-sent" in told
    settled = arrived(telegram, "lost-1", "reached Kotak as order")
    assert any(t.startswith("✅ order unknown") for t in settled if "reached" in t)
    bridge.wait_status("lost-1", SignalStatus.PLACED)
    assert len(bridge.placed()) == 1
    assert_clean(account, telegram, hook)


def test_kill_switch_changes_are_told_with_who_changed_them(
        notify_bridge: MakeBridge, telegram: FakeReceiver, hook: FakeReceiver,
        account: SandboxAccount) -> None:
    bridge = notify_bridge()
    desk = bridge.services.desk
    desk.set_kill_switch(True, by="dashboard")
    desk.set_kill_switch(True, by="dashboard")  # no change: nothing to tell
    code, body = bridge.signal(symbol="NSE:SBIN", action="buy", quantity=1)
    assert code == 409 and body["error"]["code"] == "kill_switch"
    desk.set_kill_switch(False, by="dashboard")

    sent = arrived(telegram, "kill switch", count=2)
    assert sent[0] == ("⚠️ kill switch: kill switch turned ON by dashboard: new entries are "
                       "refused, exits still go")
    assert sent[1].startswith("✅ kill switch: kill switch turned off by dashboard")
    kinds = [(p.body["kind"], p.body["level"]) for p in hook.wait_for(lambda p: len(p) >= 2)]
    assert kinds == [("kill_switch", "warning"), ("kill_switch", "info")]
    time.sleep(0.3)
    assert len(telegram.posts()) == 2
    assert_clean(account, telegram, hook)


def test_the_cli_kill_switch_is_recorded_and_a_running_bridge_delivers_it(
        tmp_path: Path, telegram: FakeReceiver, hook: FakeReceiver) -> None:
    env = {"WEBHOOK_SECRET": SECRET, "DATA_DIR": str(tmp_path / "data"),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}",
           "ENV_FILE": str(tmp_path / "none.env"), **notifying(telegram, hook)}
    result = CliRunner().invoke(cli, ["killswitch", "on"], env=env, catch_exceptions=False)
    assert result.exit_code == 0 and "ON" in result.output
    assert telegram.posts() == []  # a command sends nothing itself: the outbox holds it

    services = build_services(load_settings(env))
    try:
        assert services.courier is not None
        services.courier.poll = 0.05
        services.start_background()
        (text,) = arrived(telegram, "turned ON by cli")
        assert text.startswith("⚠️ kill switch")
        hook.wait_for(lambda posts: len(posts) == 1)
    finally:
        services.close()


def test_a_failed_unattended_login_is_told_without_the_mpin(
        notify_bridge: MakeBridge, telegram: FakeReceiver, hook: FakeReceiver,
        account: SandboxAccount) -> None:
    clock = ManualClock(at("2026-11-30T08:00"))
    wrong = f"{(int(account.mpin) + 1) % 1_000_000:06d}"
    bridge = notify_bridge(clock, KOTAK_MPIN=wrong)
    scheduler = Scheduler(bridge.services, runner="leader")
    assert scheduler.try_lead()
    clock.set(at("2026-11-30T08:30"))
    scheduler.run_due()

    text = next(t for t in arrived(telegram, "login failed") if "login failed" in t)
    assert text.startswith("❌ login failed: Kotak login of account default")
    assert "log in" in text
    posts = [p for p in hook.wait_for(lambda p: len(p) >= 1)
             if p.body["kind"] == "login_failed"]
    assert posts and all(post.body["level"] == "error" for post in posts)
    assert all(wrong not in post.raw for post in telegram.posts() + hook.posts())
    assert_clean(account, telegram, hook)


def test_a_square_off_result_and_its_rejected_close_are_told(
        notify_bridge: MakeBridge, telegram: FakeReceiver, hook: FakeReceiver,
        account: SandboxAccount) -> None:
    clock = ManualClock(at("2026-11-30T15:16"))
    bridge = notify_bridge(clock, SQUAREOFF_FILL_WAIT_S="1")
    bridge.seed("SBIN-EQ", 10)
    bridge.sandbox.add_rule(Rule("reject", reason="insufficient_funds", symbol="SBIN-EQ",
                                 side="SELL", product="MIS"))

    outcome = JobActions(bridge.services).square_off([Exchange.NSE])
    assert "FLAT" in outcome.summary

    sent = arrived(telegram, "square-off")
    (result,) = [t for t in sent if t.startswith("✅ square-off: ")]
    assert "FLAT" in result
    rejected = arrived(telegram, "order rejected", "SELL 10 NSE:SBIN-EQ")
    assert any("strategy squareoff" in t for t in rejected)
    kinds = {p.body["kind"] for p in hook.wait_for(lambda p: len(p) >= 2)}
    assert kinds == {"squareoff", "order_rejected"}
    assert_clean(account, telegram, hook)


def test_a_hanging_telegram_never_delays_an_order(
        notify_bridge: MakeBridge, telegram: FakeReceiver, hook: FakeReceiver) -> None:
    bridge = notify_bridge()
    telegram.answer(200, {"ok": True}, times=5, hang=30.0)
    bridge.services.desk.set_kill_switch(True, by="dashboard")
    bridge.services.desk.set_kill_switch(False, by="dashboard")
    telegram.wait_for(lambda posts: len(posts) >= 1)  # the courier now waits on Telegram

    started = time.monotonic()
    code, body = bridge.signal(symbol="NSE:SBIN", action="buy", quantity=1,
                               alert_id="while-hung")
    elapsed = time.monotonic() - started
    assert (code, body["status"]) == (200, "placed")
    assert elapsed < 1.0
    bridge.sandbox.add_rule(Rule(action="reject", reason="ip_not_whitelisted"))
    started = time.monotonic()
    code, _ = bridge.signal(symbol="NSE:SBIN", action="buy", quantity=1, alert_id="rej-hung")
    assert code == 502 and time.monotonic() - started < 1.0
    # The timed-out post is tried again once Telegram answers; nothing is lost.
    telegram.released.set()
    arrived(telegram, "rej-hung")
