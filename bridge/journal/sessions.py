"""Kotak sessions kept in the journal's database, sealed, shared by every process.

Implements :class:`bridge.kotak.session.SessionStore`: a worker that starts after the login
finds the session here; a restart does not log in again; the login lock holds across
processes (:func:`bridge.journal.locks.named_lock`).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from bridge.clock import Clock
from bridge.journal.locks import named_lock
from bridge.journal.tables import broker_sessions, login_failures, pending_logins
from bridge.journal.txn import writing
from bridge.kotak.auth import KotakSession, PendingOtp
from bridge.kotak.session import LoginFailure
from bridge.secretbox import SecretBox, SecretBoxError

log = logging.getLogger(__name__)


class DbSessionStore:
    def __init__(self, engine: Engine, box: SecretBox, clock: Clock) -> None:
        self._engine = engine
        self._box = box
        self._clock = clock

    def load(self, account: str) -> KotakSession | None:
        with self._engine.connect() as conn:
            sealed = conn.execute(select(broker_sessions.c.sealed)
                                  .where(broker_sessions.c.account == account)).scalar()
        data = self._open(sealed, f"session of account {account}")
        return KotakSession.from_dict(data) if data is not None else None

    def load_many(self, accounts: list[str]) -> dict[str, KotakSession]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(broker_sessions.c.account, broker_sessions.c.sealed)
                                .where(broker_sessions.c.account.in_(accounts))).all()
        found: dict[str, KotakSession] = {}
        for row in rows:
            data = self._open(row.sealed, f"session of account {row.account}")
            if data is not None:
                found[str(row.account)] = KotakSession.from_dict(data)
        return found

    def save(self, session: KotakSession) -> None:
        values = {"sealed": self._box.seal(json.dumps(session.to_dict())),
                  "expires_at": session.expires_at, "updated_at": self._clock.now()}
        self._upsert(broker_sessions, session.account, values)

    def delete(self, account: str) -> None:
        with writing(self._engine) as conn:
            conn.execute(delete(broker_sessions).where(broker_sessions.c.account == account))

    def load_failure(self, account: str) -> LoginFailure | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(login_failures)
                               .where(login_failures.c.account == account)).first()
        if row is None:
            return None
        return LoginFailure(at=row.failed_at, reason=row.reason, attended=row.attended)

    def save_failure(self, account: str, failure: LoginFailure | None) -> None:
        if failure is None:
            with writing(self._engine) as conn:
                conn.execute(delete(login_failures).where(login_failures.c.account == account))
            return
        self._upsert(login_failures, account, {"failed_at": failure.at,
                                               "reason": failure.reason[:2000],
                                               "attended": failure.attended})

    def load_pending(self, account: str) -> PendingOtp | None:
        with self._engine.connect() as conn:
            sealed = conn.execute(select(pending_logins.c.sealed)
                                  .where(pending_logins.c.account == account)).scalar()
        data = self._open(sealed, f"pending OTP login of account {account}")
        return PendingOtp.from_dict(data) if data is not None else None

    def save_pending(self, account: str, pending: PendingOtp | None) -> None:
        if pending is None:
            with writing(self._engine) as conn:
                conn.execute(delete(pending_logins).where(pending_logins.c.account == account))
            return
        self._upsert(pending_logins, account,
                     {"sealed": self._box.seal(json.dumps(pending.to_dict())),
                      "created_at": pending.started_at})

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        with named_lock(self._engine, name, timeout=120.0):
            yield

    def _open(self, sealed: str | None, what: str) -> dict[str, Any] | None:
        if sealed is None:
            return None
        try:
            data = json.loads(self._box.open(sealed))
        except (SecretBoxError, ValueError):
            # A changed BRIDGE_SECRET_KEY or a lost key file: the old session is unreadable.
            log.warning("stored %s cannot be read with the current key; ignoring it", what)
            return None
        return data if isinstance(data, dict) else None

    def _upsert(self, table: Table, account: str, values: dict[str, Any]) -> None:
        for _ in range(2):
            try:
                with writing(self._engine) as conn:
                    changed = conn.execute(update(table).where(table.c.account == account)
                                           .values(**values)).rowcount
                    if not changed:
                        conn.execute(insert(table).values(account=account, **values))
                return
            except IntegrityError:
                # Another process inserted the row between our update and insert: update it.
                continue
        raise RuntimeError(f"could not store the {table.name} row of account {account}")
