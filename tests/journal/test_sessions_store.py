"""Sessions in the journal, on SQLite and on PostgreSQL: sealed at rest, shared, locked."""

from __future__ import annotations

import multiprocessing
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from bridge.clock import IST, ManualClock
from bridge.journal.db import create_db_engine
from bridge.journal.locks import LockTimeout, named_lock, try_lock
from bridge.journal.sessions import DbSessionStore
from bridge.journal.tables import broker_sessions
from bridge.kotak.auth import AuthFlow, KotakSession, PendingOtp
from bridge.kotak.session import LoginFailure
from bridge.secretbox import SecretBox

NOW = datetime(2026, 11, 24, 9, 15, tzinfo=IST)


def a_session(account: str = "default") -> KotakSession:
    return KotakSession(account=account, flow=AuthFlow.OAUTH2, token="eyJ.trade-token.sig",
                        sid="sid-5c1b", base_url="https://gw-napi.kotaksecurities.com",
                        expires_at=NOW.replace(hour=0) + timedelta(days=1), created_at=NOW,
                        server_id="server1", bearer="bearer-token-value",
                        bearer_expires_at=NOW + timedelta(hours=1), ucc="AB123")


@pytest.fixture
def store(engine: Engine, tmp_path: Path) -> DbSessionStore:
    return DbSessionStore(engine, SecretBox.for_settings("", tmp_path), ManualClock(NOW))


def test_session_round_trips_and_is_sealed_at_rest(store: DbSessionStore,
                                                   engine: Engine) -> None:
    store.save(a_session())

    assert store.load("default") == a_session()
    with engine.connect() as conn:
        raw = conn.execute(select(broker_sessions)).one()
    assert "trade-token" not in raw.sealed and "sid-5c1b" not in raw.sealed
    assert raw.expires_at == a_session().expires_at


def test_save_replaces_and_delete_forgets(store: DbSessionStore) -> None:
    store.save(a_session())
    newer = KotakSession(**{**a_session().__dict__, "token": "eyJ.newer.sig"})
    store.save(newer)

    assert store.load("default") == newer
    store.delete("default")
    assert store.load("default") is None
    assert store.load("other") is None


def test_failures_and_pending_logins_are_kept_per_account(store: DbSessionStore) -> None:
    store.save_failure("default", LoginFailure(at=NOW, reason="Invalid MPIN", attended=False))
    pending = PendingOtp(account="default", view_token="view", sid="s", user_id="u",
                         bearer="b", bearer_expires_at=NOW + timedelta(hours=1), started_at=NOW)
    store.save_pending("default", pending)

    assert store.load_failure("default") == LoginFailure(at=NOW, reason="Invalid MPIN",
                                                         attended=False)
    assert store.load_failure("other") is None
    assert store.load_pending("default") == pending
    store.save_failure("default", None)
    store.save_pending("default", None)
    assert store.load_failure("default") is None and store.load_pending("default") is None


def test_a_different_key_cannot_read_the_session(engine: Engine, store: DbSessionStore,
                                                 tmp_path: Path) -> None:
    store.save(a_session())
    other = DbSessionStore(engine, SecretBox.for_settings("", tmp_path / "elsewhere"),
                           ManualClock(NOW))

    assert other.load("default") is None


def _hold(url: str, name: str, seconds: float, ready: object) -> None:
    engine = create_db_engine(url)
    with named_lock(engine, name):
        ready.set()  # type: ignore[attr-defined]
        time.sleep(seconds)
    engine.dispose()


def test_named_lock_excludes_another_process(database_url: str, engine: Engine) -> None:
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=_hold, args=(database_url, "kotak-login:acct", 1.5, ready))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(LockTimeout), try_lock(engine, "kotak-login:acct"):
            pass
        with try_lock(engine, "kotak-login:someone-else"):
            pass
        started = time.monotonic()
        with named_lock(engine, "kotak-login:acct", timeout=30):
            waited = time.monotonic() - started
        assert waited > 0.2
    finally:
        holder.join(30)
