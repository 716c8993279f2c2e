"""Sessions: the one-failure rule, both login generations' extra steps, renewal of the legacy
OAuth token, Kotak's midnight expiry, and the session surviving a restart."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import event

from bridge.clock import IST, ManualClock
from bridge.journal.db import create_db_engine
from bridge.journal.schema import create_schema
from bridge.journal.sessions import DbSessionStore
from bridge.kotak.auth import AuthFlow
from bridge.kotak.errors import LoginBlocked, LoginFailed, SessionInvalid
from bridge.kotak.sandbox import Sandbox, SandboxAccount, SandboxConfig, SandboxServer
from bridge.kotak.session import MemorySessionStore, SessionManager
from bridge.secretbox import SecretBox
from tests.conftest import ist, make_kotak


def logins_seen(sandbox: Sandbox) -> int:
    return sum(len(sandbox.requests.snapshot(name)) for name in ("login", "validate", "oauth"))


def test_wrong_mpin_is_one_attempt_then_unattended_login_refuses(
        sandbox: Sandbox, account: SandboxAccount, server: SandboxServer,
        flow: AuthFlow) -> None:
    kotak = make_kotak(sandbox, account, server, flow, mpin="000000")

    with pytest.raises(LoginFailed):
        kotak.sessions.login()
    seen = logins_seen(sandbox)
    with pytest.raises(LoginBlocked) as blocked:
        kotak.sessions.login()

    assert logins_seen(sandbox) == seen  # the second attempt never reached Kotak
    assert sandbox.failed_logins(account.ucc) == 1
    assert "a person must log in" in blocked.value.message
    status = kotak.sessions.status()
    assert status.login_blocked and not status.valid


def test_a_person_logging_in_clears_the_failure(sandbox: Sandbox, account: SandboxAccount,
                                                server: SandboxServer) -> None:
    kotak = make_kotak(sandbox, account, server, AuthFlow.TOTP, mpin="000000")
    with pytest.raises(LoginFailed):
        kotak.sessions.login()

    session = kotak.sessions.login(attended=True, mpin=account.mpin)

    assert session.token
    assert kotak.store.load_failure("default") is None
    assert sandbox.failed_logins(account.ucc) == 0


def test_a_person_may_type_the_totp_when_no_seed_is_stored(
        sandbox: Sandbox, account: SandboxAccount, server: SandboxServer) -> None:
    kotak = make_kotak(sandbox, account, server, AuthFlow.TOTP, totp_secret="")
    with pytest.raises(LoginBlocked) as blocked:
        kotak.sessions.login()
    assert "KOTAK_TOTP_SECRET" in blocked.value.message
    assert logins_seen(sandbox) == 0

    kotak.sessions.login(attended=True, totp=pyotp.TOTP(account.totp_secret).now())

    assert kotak.sessions.status().valid


def test_wrong_typed_totp_is_refused_by_kotak(sandbox: Sandbox, account: SandboxAccount,
                                              server: SandboxServer) -> None:
    kotak = make_kotak(sandbox, account, server, AuthFlow.TOTP)

    with pytest.raises(LoginFailed) as failed:
        kotak.sessions.login(attended=True, totp="000000")

    assert "Invalid credentials or TOTP" in failed.value.message


def test_kotak_locks_after_three_failures_which_the_bridge_never_reaches(
        sandbox: Sandbox, account: SandboxAccount, server: SandboxServer) -> None:
    kotak = make_kotak(sandbox, account, server, AuthFlow.TOTP, mpin="000000")
    for _ in range(5):
        with pytest.raises((LoginFailed, LoginBlocked)):
            kotak.sessions.login()

    assert sandbox.failed_logins(account.ucc) == 1


def test_legacy_login_by_otp(sandbox: Sandbox, account: SandboxAccount,
                             server: SandboxServer) -> None:
    kotak = make_kotak(sandbox, account, server, AuthFlow.OAUTH2, mpin="")

    kotak.sessions.begin_otp()
    session = kotak.sessions.complete_otp(account.otp)

    assert session.flow is AuthFlow.OAUTH2 and kotak.client.order_book() == []
    assert len(sandbox.requests.snapshot("otp")) == 1


def test_legacy_login_by_pan(sandbox: Sandbox, account: SandboxAccount,
                             server: SandboxServer) -> None:
    kotak = make_kotak(sandbox, account, server, AuthFlow.OAUTH2, mobile="",
                       pan=account.pan)

    kotak.sessions.login()

    assert kotak.client.positions() == []


def test_wrong_consumer_secret_is_a_login_failure(sandbox: Sandbox, account: SandboxAccount,
                                                  server: SandboxServer) -> None:
    kotak = make_kotak(sandbox, account, server, AuthFlow.OAUTH2,
                       consumer_secret="not-it")

    with pytest.raises(LoginFailed) as failed:
        kotak.sessions.login()

    assert failed.value.code == "invalid_client"


def test_oauth_token_is_renewed_before_it_lapses_without_a_new_login(
        account: SandboxAccount, manual_clock: ManualClock) -> None:
    sandbox = Sandbox([account], config=SandboxConfig(oauth_expires_in=1800, order_rate=0),
                      clock=manual_clock)
    with SandboxServer(sandbox) as server:
        kotak = make_kotak(sandbox, account, server, AuthFlow.OAUTH2, clock=manual_clock)
        kotak.sessions.login()
        first = kotak.sessions.current().bearer

        manual_clock.advance(timedelta(minutes=25))  # inside the 10-minute renewal margin
        assert kotak.client.order_book() == []

        assert kotak.sessions.current().bearer != first
        assert len(sandbox.requests.snapshot("oauth")) == 2
        assert len(sandbox.requests.snapshot("validate")) == 2  # the original login only


def test_session_dies_at_midnight_ist(account: SandboxAccount) -> None:
    clock = ManualClock(ist("2026-11-24T23:50:00"))
    sandbox = Sandbox([account], config=SandboxConfig(order_rate=0), clock=clock)
    with SandboxServer(sandbox) as server:
        kotak = make_kotak(sandbox, account, server, AuthFlow.TOTP, clock=clock)
        kotak.sessions.login()
        assert kotak.client.order_book() == []

        clock.advance(timedelta(minutes=15))

        with pytest.raises(SessionInvalid) as expired:
            kotak.client.order_book()
        assert "expired at 2026-11-25 00:00 IST" in expired.value.message


def test_sandbox_refuses_a_stale_session_after_its_midnight(account: SandboxAccount) -> None:
    broker_clock = ManualClock(ist("2026-11-24T23:55:00"))
    lagging_clock = ManualClock(ist("2026-11-24T23:55:00"))
    sandbox = Sandbox([account], config=SandboxConfig(order_rate=0), clock=broker_clock)
    with SandboxServer(sandbox) as server:
        kotak = make_kotak(sandbox, account, server, AuthFlow.TOTP, clock=lagging_clock)
        kotak.sessions.login()
        broker_clock.advance(timedelta(minutes=6))

        with pytest.raises(SessionInvalid) as stale:
            kotak.client.positions()

        assert stale.value.code == "100022"


def test_session_survives_a_restart_through_the_journal(sandbox: Sandbox,
                                                        account: SandboxAccount,
                                                        server: SandboxServer,
                                                        tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    create_schema(engine)
    box = SecretBox.for_settings("", tmp_path)
    first = make_kotak(sandbox, account, server, AuthFlow.TOTP,
                       store=DbSessionStore(engine, box, _clock()))
    first.sessions.login()
    logins = logins_seen(sandbox)

    restarted = make_kotak(sandbox, account, server, AuthFlow.TOTP,
                           store=DbSessionStore(engine, SecretBox.for_settings("", tmp_path),
                                                _clock()))

    assert restarted.client.order_book() == []
    assert restarted.sessions.login().token == first.sessions.current().token
    assert logins_seen(sandbox) == logins
    engine.dispose()


def _clock() -> ManualClock:
    return ManualClock(datetime.now(IST))


def test_a_fan_out_reads_every_account_session_in_one_query(sandbox: Sandbox,
                                                            account: SandboxAccount,
                                                            server: SandboxServer,
                                                            tmp_path: Path) -> None:
    """Hundreds of accounts sending at once read their sessions together, and each order
    then goes out on its account's own session without another read."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    create_schema(engine)
    store = DbSessionStore(engine, SecretBox.for_settings("", tmp_path), _clock())
    make_kotak(sandbox, account, server, AuthFlow.TOTP, store=store).sessions.login()
    logged_in = store.load("default")
    assert logged_in is not None
    for name in ("b", "c"):
        store.save(dataclasses.replace(logged_in, account=name, sid=f"sid-{name}"))
    # as after a restart: nothing read yet in this process
    fresh = [make_kotak(sandbox, account, server, AuthFlow.TOTP, store=store)
             for _ in range(3)]
    managers = [fresh[0].sessions]
    managers += [SessionManager(name, fresh[n].sessions.credentials, fresh[n].client.http,
                                store, _clock()) for n, name in ((1, "b"), (2, "c"))]
    managers.append(SessionManager("never-logged-in", fresh[0].sessions.credentials,
                                   fresh[0].client.http, store, _clock()))
    reads: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda *args: reads.append(args[2]) if "broker_sessions" in args[2] else None)

    SessionManager.prime(managers)

    assert len(reads) == 1
    assert [m.current().sid for m in managers[:3]] == [logged_in.sid, "sid-b", "sid-c"]
    assert fresh[0].client.order_book() == []
    assert len(reads) == 1  # every session came from the one read
    with pytest.raises(SessionInvalid):
        managers[3].current()  # no session: refused as before, after its own look
    engine.dispose()


def test_a_session_replaced_elsewhere_is_used_not_dropped(
        sandbox: Sandbox, account: SandboxAccount, server: SandboxServer,
        flow: AuthFlow) -> None:
    """Two processes share the journal's sessions. One keeps the session it read; Kotak ends
    it and the other process logs in anew. The first one's next call is refused, so it is
    made once more with the newer session (Kotak did nothing with the refused one), and the
    newer session stays stored."""
    store = MemorySessionStore()
    keeping = make_kotak(sandbox, account, server, flow, store=store)
    keeping.login()
    assert keeping.client.order_book() == []  # the session is now kept in this process
    sandbox.expire_sessions()
    other = make_kotak(sandbox, account, server, flow, store=store)
    other.sessions.login(attended=True)  # as a person does when told the session ended
    newer = store.load("default")

    assert keeping.client.order_book() == []

    assert store.load("default") == newer is not None
    assert keeping.sessions.status().valid


def test_a_kept_session_past_its_expiry_is_read_again(account: SandboxAccount) -> None:
    """A kept session that has expired is not refused while a newer one is stored."""
    clock = ManualClock(ist("2026-11-24T23:50:00"))
    sandbox = Sandbox([account], config=SandboxConfig(order_rate=0), clock=clock)
    with SandboxServer(sandbox) as server:
        store = MemorySessionStore()
        keeping = make_kotak(sandbox, account, server, AuthFlow.TOTP, store=store, clock=clock)
        keeping.login()
        kept = keeping.sessions.current()
        clock.advance(timedelta(minutes=20))  # past its midnight
        other = make_kotak(sandbox, account, server, AuthFlow.TOTP, store=store, clock=clock)
        other.login()

        assert keeping.sessions.current() == store.load("default") != kept
        assert keeping.client.order_book() == []
