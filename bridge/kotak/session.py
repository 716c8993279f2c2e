"""Owning the Kotak session of one account: persisted, shared, never guessed.

The session lives in a :class:`SessionStore` (the journal's database in the bridge, memory in
tests), so a restart or another worker process reuses it instead of logging in again.

Kotak locks an account after three wrong logins, so the manager never makes more than one
failed attempt in a row on its own: after a failure (credentials refused, or a submission that
got no answer) it records the failure and refuses every unattended attempt until a person logs
in (``attended=True``: the CLI or the login page), which clears it on success. A login that
never reached Kotak (connection refused) does not count.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bridge.clock import Clock, ist_text
from bridge.kotak.auth import (
    AuthFlow,
    KotakCredentials,
    KotakSession,
    OAuth2Login,
    PendingOtp,
    TotpLogin,
)
from bridge.kotak.errors import (
    BrokerUnavailable,
    KotakError,
    LoginBlocked,
    SessionInvalid,
)
from bridge.kotak.http import KotakHttp

log = logging.getLogger(__name__)

#: how long a session read from the store is reused without reading it again (seconds)
CACHE_FOR = 10.0


@dataclass(frozen=True)
class LoginFailure:
    at: datetime
    reason: str
    attended: bool


class SessionStore(Protocol):
    """Where sessions, login failures and pending OTP logins are kept, per account."""

    def load(self, account: str) -> KotakSession | None: ...

    def load_many(self, accounts: list[str]) -> dict[str, KotakSession]:
        """The sessions of ``accounts`` that exist, in one read."""
        ...

    def save(self, session: KotakSession) -> None: ...

    def delete(self, account: str) -> None: ...

    def load_failure(self, account: str) -> LoginFailure | None: ...

    def save_failure(self, account: str, failure: LoginFailure | None) -> None: ...

    def load_pending(self, account: str) -> PendingOtp | None: ...

    def save_pending(self, account: str, pending: PendingOtp | None) -> None: ...

    def exclusive(self, name: str) -> AbstractContextManager[None]:
        """Hold a lock named ``name`` across every process sharing this store."""
        ...


class MemorySessionStore:
    """A store for one process: tests, the standalone tools."""

    def __init__(self) -> None:
        self._sessions: dict[str, KotakSession] = {}
        self._failures: dict[str, LoginFailure] = {}
        self._pending: dict[str, PendingOtp] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def load(self, account: str) -> KotakSession | None:
        return self._sessions.get(account)

    def load_many(self, accounts: list[str]) -> dict[str, KotakSession]:
        return {account: self._sessions[account] for account in accounts
                if account in self._sessions}

    def save(self, session: KotakSession) -> None:
        self._sessions[session.account] = session

    def delete(self, account: str) -> None:
        self._sessions.pop(account, None)

    def load_failure(self, account: str) -> LoginFailure | None:
        return self._failures.get(account)

    def save_failure(self, account: str, failure: LoginFailure | None) -> None:
        if failure is None:
            self._failures.pop(account, None)
        else:
            self._failures[account] = failure

    def load_pending(self, account: str) -> PendingOtp | None:
        return self._pending.get(account)

    def save_pending(self, account: str, pending: PendingOtp | None) -> None:
        if pending is None:
            self._pending.pop(account, None)
        else:
            self._pending[account] = pending

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            yield


@dataclass(frozen=True)
class SessionStatus:
    """What a dashboard or readiness check shows about the session."""

    valid: bool
    expires_at: datetime | None
    detail: str
    login_blocked: bool


class SessionManager:
    """Hand out the account's valid session; log in when asked, within the lock-out rule."""

    def __init__(
        self,
        account: str,
        credentials: KotakCredentials,
        http: KotakHttp,
        store: SessionStore,
        clock: Clock,
        *,
        on_secret: Callable[[str], None] | None = None,
        expiry_margin: timedelta = timedelta(minutes=1),
        bearer_margin: timedelta = timedelta(minutes=10),
    ) -> None:
        self.account = account
        self.credentials = credentials
        self._store = store
        self._clock = clock
        self._on_secret = on_secret or (lambda _value: None)
        self._expiry_margin = expiry_margin
        self._bearer_margin = bearer_margin
        self._totp = TotpLogin(http, credentials, clock)
        self._oauth = OAuth2Login(http, credentials, clock)
        # Every broker call needs the session; reading (and decrypting) it from the store
        # each time is wasted work (a fan-out to 50 accounts read 50 a second), so it is
        # kept for CACHE_FOR. A login in this process updates it at once; one elsewhere is
        # read when the kept session has expired, when Kotak refuses it (invalidate, and
        # the call goes once more with the newer one), or after CACHE_FOR.
        self._cached: tuple[float, KotakSession] | None = None

    # --- using the session ----------------------------------------------------------------

    def current(self) -> KotakSession:
        """Return the account's valid session, renewing the legacy OAuth token if it lapses.

        :raises SessionInvalid: there is no session, or it has expired.
        """
        kept = self._fresh()
        session = self._load()
        now = self._clock.now()
        if kept and (session is None or not session.valid_at(now, self._expiry_margin)):
            # Kept from an earlier read: another process may have logged in since.
            self._cached = None
            session = self._load()
        if session is None:
            raise SessionInvalid("no Kotak session: log in first")
        if not session.valid_at(now, self._expiry_margin):
            raise SessionInvalid(
                f"the Kotak session expired at {ist_text(session.expires_at)}")
        if not session.bearer_valid_at(now, self._bearer_margin):
            session = self._renew_bearer(session)
            self._cached = (time.monotonic(), session)
        self._remember(session)
        return session

    def peek(self) -> KotakSession | None:
        return self._store.load(self.account)

    def _load(self) -> KotakSession | None:
        cached = self._cached
        if cached is not None and self._fresh():
            return cached[1]
        session = self._store.load(self.account)
        self._cached = (time.monotonic(), session) if session is not None else None
        return session

    @staticmethod
    def prime(managers: list[SessionManager]) -> None:
        """Read the sessions of many accounts at once, before each is about to be used.

        A fan-out sends one order on each of hundreds of accounts at the same moment; each
        would otherwise read and decrypt its own session in a query of its own. Accounts
        whose session was read within :data:`CACHE_FOR` are left alone; one without a
        session is left to :meth:`current` to refuse as usual.
        """
        stale: dict[int, list[SessionManager]] = {}
        stores: dict[int, SessionStore] = {}
        for manager in managers:
            if not manager._fresh():
                stale.setdefault(id(manager._store), []).append(manager)
                stores[id(manager._store)] = manager._store
        for key, waiting in stale.items():
            found = stores[key].load_many([manager.account for manager in waiting])
            now = time.monotonic()
            for manager in waiting:
                session = found.get(manager.account)
                if session is not None:
                    manager._cached = (now, session)

    def _fresh(self) -> bool:
        cached = self._cached
        return cached is not None and time.monotonic() - cached[0] < CACHE_FOR

    def _keep(self, session: KotakSession) -> None:
        self._store.save(session)
        self._cached = (time.monotonic(), session)

    def invalidate(self, reason: str, refused: KotakSession | None = None
                   ) -> KotakSession | None:
        """Kotak refused ``refused``: forget it, and readiness then reports it. A newer
        session stored meanwhile (another process logged in, or renewed the OAuth token,
        since this one was kept) is kept instead and returned, never dropped."""
        stored = self._store.load(self.account)
        if stored is not None and refused is not None and stored != refused:
            self._cached = (time.monotonic(), stored)
            return stored
        self._cached = None
        if stored is not None:
            log.warning("kotak session of account %s dropped: %s", self.account, reason)
            self._store.delete(self.account)
        return None

    def status(self) -> SessionStatus:
        session = self._store.load(self.account)
        failure = self._store.load_failure(self.account)
        now = self._clock.now()
        valid = session is not None and session.valid_at(now, self._expiry_margin)
        if valid and session is not None:
            detail = f"valid until {ist_text(session.expires_at)}"
        elif session is not None:
            detail = f"expired at {ist_text(session.expires_at)}"
        else:
            detail = "no session"
        if failure is not None:
            detail += (f"; last login failed at {ist_text(failure.at)} "
                       f"({failure.reason}): a person must log in")
        return SessionStatus(valid=valid, expires_at=session.expires_at if session else None,
                             detail=detail, login_blocked=failure is not None)

    # --- logging in -----------------------------------------------------------------------

    def login(self, *, attended: bool = False, totp: str = "", mpin: str = "") -> KotakSession:
        """Log in and store the session.

        Unattended (``attended=False``) it returns a still-valid session another process just
        made, refuses after a recorded failure, and needs every stored credential. Attended,
        a person's ``totp``/``mpin`` are used and a success clears the recorded failure.

        :raises LoginBlocked: not attempted; a person must act.
        :raises LoginFailed: Kotak refused; recorded, later unattended attempts are refused.
        :raises BrokerUnavailable: Kotak not reached; not recorded, may be tried again.
        """
        with self._store.exclusive(f"kotak-login:{self.account}"):
            if not attended:
                existing = self._store.load(self.account)
                if existing is not None and existing.valid_at(self._clock.now(),
                                                              self._expiry_margin):
                    return existing
                self._check_unattended()
            elif (self.credentials.flow is AuthFlow.TOTP
                  and not (totp or self.credentials.totp_secret)):
                raise LoginBlocked("type the 6-digit TOTP from your authenticator app")
            if not (mpin or self.credentials.mpin):
                raise LoginBlocked("the MPIN is needed: type it or set KOTAK_MPIN")
            return self._attempt(attended, lambda: self._login_once(totp, mpin))

    def begin_otp(self) -> None:
        """Legacy flow, by a person: log in with the password and have Kotak send an OTP."""
        if self.credentials.flow is not AuthFlow.OAUTH2:
            raise LoginBlocked("OTP login belongs to the legacy oauth2 flow (KOTAK_AUTH=oauth2)")
        with self._store.exclusive(f"kotak-login:{self.account}"):
            pending = self._attempt_pending(lambda: self._oauth.begin_otp(self.account))
            self._store.save_pending(self.account, pending)

    def complete_otp(self, otp: str) -> KotakSession:
        """Legacy flow, by a person: finish the login with the OTP Kotak sent."""
        with self._store.exclusive(f"kotak-login:{self.account}"):
            pending = self._store.load_pending(self.account)
            if pending is None:
                raise LoginBlocked("no OTP login is waiting: start one first")
            if not pending.bearer_expires_at > self._clock.now():
                self._store.save_pending(self.account, None)
                raise LoginBlocked("the waiting OTP login has lapsed: start again")
            self._store.save_pending(self.account, None)
            return self._attempt(True, lambda: self._oauth.complete_otp(pending, otp))

    def _check_unattended(self) -> None:
        failure = self._store.load_failure(self.account)
        if failure is not None:
            raise LoginBlocked(
                f"the last Kotak login failed at {ist_text(failure.at)} "
                f"({failure.reason}); Kotak locks the account after three failures, so a "
                "person must log in (python -m bridge login, or the login page)")
        missing = self.credentials.missing_for_unattended()
        if missing:
            raise LoginBlocked("unattended login is not configured: set " + ", ".join(missing))

    def _login_once(self, totp: str, mpin: str) -> KotakSession:
        if self.credentials.flow is AuthFlow.TOTP:
            return self._totp.login(self.account, totp=totp, mpin=mpin)
        return self._oauth.login(self.account, mpin=mpin)

    def _attempt(self, attended: bool, step: Callable[[], KotakSession]) -> KotakSession:
        try:
            session = step()
        except BrokerUnavailable:
            raise
        except KotakError as exc:
            self._record_failure(exc, attended)
            raise
        self._keep(session)
        self._store.save_failure(self.account, None)
        self._remember(session)
        log.info("kotak login succeeded for account %s (%s); session valid until %s",
                 self.account, "by a person" if attended else "unattended",
                 session.expires_at.isoformat())
        return session

    def _attempt_pending(self, step: Callable[[], PendingOtp]) -> PendingOtp:
        try:
            pending = step()
        except BrokerUnavailable:
            raise
        except KotakError as exc:
            self._record_failure(exc, True)
            raise
        self._on_secret(pending.view_token)
        self._on_secret(pending.sid)
        self._on_secret(pending.bearer)
        return pending

    def _record_failure(self, exc: KotakError, attended: bool) -> None:
        self._store.save_failure(
            self.account, LoginFailure(at=self._clock.now(), reason=exc.message, attended=attended))
        log.error("kotak login failed for account %s: %s; no further unattended attempt "
                  "until a person logs in", self.account, exc.message)

    def renew_bearer(self, within: timedelta) -> tuple[KotakSession | None, bool]:
        """Renew the legacy OAuth2 token now if it lapses within ``within`` (the scheduler's
        renewal job); return the session and whether it was renewed.

        ``(None, False)``: no valid session (or the totp flow, which has no such token).
        Under the login lock and with the stored session read again, so however many
        processes run this, one token lifetime is renewed once.

        :raises KotakError: Kotak refused or did not answer; the current token stands.
        """
        if self.credentials.flow is not AuthFlow.OAUTH2:
            return None, False
        with self._store.exclusive(f"kotak-login:{self.account}"):
            session = self._store.load(self.account)
            now = self._clock.now()
            if session is None or not session.valid_at(now, self._expiry_margin):
                return None, False
            if session.bearer_valid_at(now, within):
                return session, False
            renewed = self._new_bearer(session)
            self._remember(renewed)
            return renewed, True

    def _renew_bearer(self, session: KotakSession) -> KotakSession:
        with self._store.exclusive(f"kotak-login:{self.account}"):
            latest = self._store.load(self.account) or session
            now = self._clock.now()
            if latest.bearer_valid_at(now, self._bearer_margin):
                return latest
            try:
                return self._new_bearer(latest)
            except KotakError as exc:
                if latest.bearer_valid_at(now):
                    log.warning("kotak OAuth2 token renewal failed (%s); the current token "
                                "lasts until %s", exc.message, latest.bearer_expires_at)
                    return latest
                raise SessionInvalid(f"the OAuth2 token lapsed and could not be renewed: "
                                     f"{exc.message}") from exc

    def _new_bearer(self, session: KotakSession) -> KotakSession:
        """Fetch a new OAuth2 token and store the session with it (under the login lock)."""
        bearer, expires_at = self._oauth.bearer()
        renewed = session.with_bearer(bearer, expires_at)
        self._keep(renewed)
        log.info("kotak OAuth2 token renewed for account %s until %s", self.account,
                 expires_at.isoformat())
        return renewed

    def _remember(self, session: KotakSession) -> None:
        for secret in (session.token, session.sid, session.bearer):
            if secret:
                self._on_secret(secret)

