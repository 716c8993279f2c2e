"""The legacy login's OAuth2 token is renewed by the scheduler before ``expires_in`` runs out:
by the leader, once per token lifetime however many schedulers run, shown in ``jobs`` and on
the dashboard; a bridge on the current totp login has no such job."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from bridge.cli import cli
from bridge.clock import IST, ManualClock
from bridge.journal.jobs import RunStatus
from bridge.schedule.runner import Scheduler
from tests.dashboard.conftest import PASSWORD, sign_in
from tests.signals.conftest import Bridge

MakeBridge = Callable[..., Bridge]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=IST)


def token_requests(bridge: Bridge) -> int:
    return len(bridge.sandbox.requests.snapshot("oauth"))


def test_the_leader_renews_the_token_once_before_it_lapses(make_bridge: MakeBridge) -> None:
    clock = ManualClock(at("2026-11-30T10:00"))
    bridge = make_bridge(clock, KOTAK_AUTH="oauth2")
    session = bridge.services.broker().sessions.current()
    assert session.bearer_expires_at == at("2026-11-30T11:00")  # Kotak's expires_in: 1 h
    first, second = (Scheduler(bridge.services, runner=name) for name in ("one", "two"))
    assert first.try_lead() and not second.try_lead()
    before = token_requests(bridge)

    clock.set(at("2026-11-30T10:40"))  # 20 minutes left: not yet
    first.run_due()
    assert token_requests(bridge) == before
    runs = bridge.services.jobs.runs("oauth2-token")  # at taking the lead, and now
    assert len(runs) == 2 and all(run.status is RunStatus.SUCCEEDED for run in runs)
    assert "renewed from 2026-11-30 10:45 IST" in runs[0].summary

    clock.set(at("2026-11-30T10:46"))  # inside the last 15 minutes
    first.run_due()
    first.run_due()  # the same trigger again: already run
    assert token_requests(bridge) == before + 1
    renewed = bridge.services.broker().sessions.current()
    assert renewed.bearer_expires_at == at("2026-11-30T11:46")
    assert renewed.token == session.token  # the day's trade session is untouched
    latest = bridge.services.jobs.runs("oauth2-token")[0]
    assert "renewed, valid until" in latest.summary

    # Another leader later (the first died) finds the token fresh: nothing more is sent.
    first.resign()
    assert second.try_lead()
    clock.set(at("2026-11-30T10:51"))
    second.run_due()
    assert token_requests(bridge) == before + 1
    status, body = bridge.signal(symbol="NSE:SBIN", action="BUY", quantity=1,
                                 alert_id="after-renewal")
    assert status == 200 and body["status"] == "placed"
    assert token_requests(bridge) == before + 1  # the order needed no renewal of its own
    second.resign()


def test_the_renewal_shows_on_the_dashboard(make_bridge: MakeBridge) -> None:
    clock = ManualClock(at("2026-11-30T10:00"))
    bridge = make_bridge(clock, KOTAK_AUTH="oauth2", ADMIN_PASSWORD=PASSWORD)
    scheduler = Scheduler(bridge.services, runner="leader")
    upcoming = {spec.name: when for spec, when in scheduler.next_runs()}
    assert upcoming["oauth2-token"] == at("2026-11-30T10:45")  # when it will act

    client = bridge.app.test_client()
    sign_in(client)
    page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", client.get("/").get_data(as_text=True)))

    assert "oauth2-token" in page


def test_the_renewal_shows_in_jobs(tmp_path: Path) -> None:
    env = {"WEBHOOK_SECRET": "cli-test-secret-0123456789", "KOTAK_AUTH": "oauth2",
           "DATA_DIR": str(tmp_path / "data"),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}",
           "ENV_FILE": str(tmp_path / "none.env")}
    runner = CliRunner()
    assert runner.invoke(cli, ["login"], env=env, catch_exceptions=False).exit_code == 0

    listed = runner.invoke(cli, ["jobs"], env=env, catch_exceptions=False)

    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    where = next(i for i, line in enumerate(lines) if line.startswith("oauth2-token"))
    assert "every 300 s" in lines[where] and "next:" in lines[where + 1]
    assert "none within a month" not in lines[where + 1]


def test_the_totp_login_has_no_token_job(make_bridge: MakeBridge) -> None:
    bridge = make_bridge(ManualClock(at("2026-11-30T10:00")))
    scheduler = Scheduler(bridge.services, runner="leader")
    assert "oauth2-token" not in [spec.name for spec in scheduler.plan]
