"""The sandbox's two login front-ends and its session checks, over one session table.

Current (TOTP) flow: ``tradeApiLogin`` checks the access token in ``Authorization``, the mobile,
UCC and a TOTP (RFC 6238, 30 s, one step of drift either way) and returns a view token + sid;
``tradeApiValidate`` takes them in ``sid``/``Auth`` with the MPIN and returns the trade token,
a new sid and ``baseUrl`` pointing back at this server.

Legacy (OAuth2) flow: ``/oauth2/token`` with Basic consumer key:secret; ``login/v2/validate``
with the Bearer and mobile/PAN + password for a view token; then the same call with
``sid``/``Auth`` and the MPIN, or ``userId`` + the OTP after ``login/otp/generate``.

Every session lapses at the next midnight IST, and three wrong logins in a row lock the
account, as at Kotak. Error bodies follow the shapes Kotak is documented or observed to send;
where the exact live wording is unverified (wrong TOTP/MPIN/password) the documented generic
form is used.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyotp
from werkzeug.datastructures import Headers

from bridge.clock import next_midnight_ist
from bridge.kotak.sandbox import tokens
from bridge.kotak.sandbox.conditions import SandboxAccount, SandboxConfig
from bridge.kotak.sandbox.engine import Reply
from bridge.kotak.sandbox.state import BearerRecord, SandboxState, SessionRecord

HEADER_MISSING: Reply = (400, {"error": [{"code": "10512",
                                          "message": "Required header not found."}]})
STALE_CURRENT: Reply = (403, {"stCode": 100022, "errMsg": "invalid session token",
                              "stat": "Not_Ok"})
STALE_LEGACY: Reply = (401, {"stat": "Not_Ok", "error": [{"code": "10020",
                                                           "message": "Authentication Failed"}],
                             "tid": "server3_27430"})
BAD_BEARER: Reply = (401, {
    "code": "900901", "message": "Invalid Credentials",
    "description": "Access failure for API: /Orders/2.0, version: 2.0 status: (900901) - "
                   "Invalid Credentials. Make sure you have provided the correct security "
                   "credentials",
})
INVALID_CLIENT: Reply = (401, {"error_description": "invalid_client", "error": "invalid_client"})


def _failure(message: str, status: int = 401) -> Reply:
    return status, {"status": "error", "message": message, "errorCode": str(status)}


@dataclass(frozen=True)
class Caller:
    """What a login handler needs to know about the request."""

    headers: Headers
    body: Mapping[str, Any]
    ip: str
    host: str  # scheme://host of this server, for baseUrl


class Logins:
    def __init__(self, accounts: Mapping[str, SandboxAccount], config: SandboxConfig) -> None:
        self.accounts = accounts
        self.config = config
        self._key = secrets.token_bytes(32)

    # --- current flow ---------------------------------------------------------------------

    def totp_login(self, state: SandboxState, caller: Caller, now: datetime) -> Reply:
        body = caller.body
        for name, wire_name in (("mobileNumber", "MobileNumber"), ("ucc", "Ucc"),
                                ("totp", "Totp")):
            if not str(body.get(name, "")).strip():
                return 400, {"error": [{"code": "400",
                                        "message": f"Missing required field '{wire_name}'"}]}
        account = self.accounts.get(str(body["ucc"]).strip().upper())
        if account is None:
            # Kotak answers an unknown client code with a 200 that carries no data.
            return 200, {"status": "error", "message": "Invalid UCC"}
        locked = self._locked(state, account)
        if locked:
            return locked
        if caller.headers.get("Authorization", "") != account.consumer_key:
            return self._fail(state, account, "Invalid access token")
        if not _same_mobile(str(body["mobileNumber"]), account.mobile) or not self._totp_ok(
                account, str(body["totp"]), now):
            return self._fail(state, account, "Invalid credentials or TOTP.")
        session = self._session(state, account, "view", "totp", now, caller.ip)
        return 200, {"data": self._data(account, session, kind="View")}

    def totp_validate(self, state: SandboxState, caller: Caller, now: datetime) -> Reply:
        sid, auth = caller.headers.get("sid", ""), caller.headers.get("Auth", "")
        if not sid or not auth:
            return HEADER_MISSING
        view = state.sessions.get(sid)
        if view is None or view.token != auth or view.kind != "view" or now >= view.expires_at:
            return _failure("Invalid session")
        account = self.accounts[view.ucc]
        locked = self._locked(state, account)
        if locked:
            return locked
        if caller.headers.get("Authorization", "") != account.consumer_key:
            return self._fail(state, account, "Invalid access token")
        if str(caller.body.get("mpin", "")) != account.mpin:
            return self._fail(state, account, "Invalid MPIN")
        del state.sessions[sid]
        session = self._session(state, account, "trade", "totp", now, caller.ip)
        data = self._data(account, session, kind="Trade")
        if not self.config.omit_base_url:
            data["baseUrl"] = caller.host.rstrip("/")
        return 200, {"data": data}

    # --- legacy flow ----------------------------------------------------------------------

    def oauth_token(self, state: SandboxState, caller: Caller, now: datetime) -> Reply:
        key, secret = _basic(caller.headers.get("Authorization", ""))
        account = next((a for a in self.accounts.values()
                        if a.consumer_key == key and a.consumer_secret == secret), None)
        if account is None:
            return INVALID_CLIENT
        if caller.body.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type",
                         "error_description": "grant_type must be client_credentials"}
        expires = now + timedelta(seconds=self.config.oauth_expires_in)
        token = tokens.access_token(consumer_key=key, issued=now, expires=expires,
                                    key=self._key)
        state.bearers = {t: b for t, b in state.bearers.items() if b.expires_at > now}
        state.bearers[token] = BearerRecord(token=token, consumer_key=key, expires_at=expires)
        return 200, {"access_token": token, "scope": "default", "token_type": "Bearer",
                     "expires_in": self.config.oauth_expires_in}

    def bearer_account(self, state: SandboxState, headers: Headers,
                       now: datetime) -> SandboxAccount | None:
        value = headers.get("Authorization", "")
        if not value.startswith("Bearer "):
            return None
        record = state.bearers.get(value.removeprefix("Bearer ").strip())
        if record is None or now >= record.expires_at:
            return None
        return next((a for a in self.accounts.values()
                     if a.consumer_key == record.consumer_key), None)

    def legacy_validate(self, state: SandboxState, caller: Caller, now: datetime) -> Reply:
        account = self.bearer_account(state, caller.headers, now)
        if account is None:
            return BAD_BEARER
        locked = self._locked(state, account)
        if locked:
            return locked
        body = caller.body
        sid = caller.headers.get("sid", "")
        if not sid:
            if not self._identity_ok(account, body):
                return self._fail(state, account, "Invalid Credentials", legacy=True)
            secret = str(body.get("password", "") or body.get("mpin", ""))
            if secret not in (account.password, account.mpin):
                return self._fail(state, account, "Invalid Credentials", legacy=True)
            session = self._session(state, account, "view", "oauth2", now, caller.ip)
            return 200, {"data": self._legacy_data(account, session)}
        view = state.sessions.get(sid)
        if (view is None or view.token != caller.headers.get("Auth", "")
                or view.kind != "view" or view.ucc != account.ucc or now >= view.expires_at):
            return STALE_LEGACY
        if "otp" in body:
            good = (str(body.get("userId", "")) == tokens.user_id(account.ucc)
                    and str(body["otp"]) == account.otp)
        else:
            good = self._identity_ok(account, body) and str(body.get("mpin", "")) == account.mpin
        if not good:
            return self._fail(state, account, "Invalid OTP or MPIN", legacy=True)
        del state.sessions[sid]
        session = self._session(state, account, "trade", "oauth2", now, caller.ip)
        return 200, {"data": self._legacy_data(account, session)}

    def otp_generate(self, state: SandboxState, caller: Caller, now: datetime) -> Reply:
        account = self.bearer_account(state, caller.headers, now)
        if account is None:
            return BAD_BEARER
        if str(caller.body.get("userId", "")) != tokens.user_id(account.ucc):
            return 400, {"error": [{"code": "10522", "message": "Issues while generating OTP! "
                                                                "Try to login again."}]}
        return 201, {"data": {"status": "success", "message": "OTP sent",
                              "mobile": "******" + account.mobile[-4:]}}

    # --- trading calls --------------------------------------------------------------------

    def trade_session(self, state: SandboxState, headers: Headers, now: datetime,
                      legacy: bool) -> SessionRecord | Reply:
        """Return the caller's live trade session, or the error Kotak answers with."""
        if legacy and self.bearer_account(state, headers, now) is None:
            return BAD_BEARER
        sid, auth = headers.get("Sid", ""), headers.get("Auth", "")
        if not sid or not auth:
            return HEADER_MISSING
        session = state.sessions.get(sid)
        if (session is None or session.token != auth or session.kind != "trade"
                or now >= session.expires_at):
            return STALE_LEGACY if legacy else STALE_CURRENT
        return session

    def access_token_ok(self, headers: Headers) -> bool:
        value = headers.get("Authorization", "")
        return any(value == a.consumer_key for a in self.accounts.values())

    def expire(self, state: SandboxState, now: datetime, ucc: str = "") -> int:
        """End sessions now (all, or one account's); return how many."""
        count = 0
        for session in state.sessions.values():
            if (not ucc or session.ucc == ucc.upper()) and session.expires_at > now:
                session.expires_at = now
                count += 1
        return count

    # --- helpers --------------------------------------------------------------------------

    def _totp_ok(self, account: SandboxAccount, code: str, now: datetime) -> bool:
        return bool(pyotp.TOTP(account.totp_secret).verify(code.strip(), for_time=now,
                                                           valid_window=1))

    def _identity_ok(self, account: SandboxAccount, body: Mapping[str, Any]) -> bool:
        if "mobileNumber" in body:
            return _same_mobile(str(body["mobileNumber"]), account.mobile)
        if "pan" in body:
            return str(body["pan"]).upper() == account.pan.upper()
        if "userid" in body:
            return str(body["userid"]).upper() == account.ucc
        return False

    def _locked(self, state: SandboxState, account: SandboxAccount) -> Reply | None:
        if state.login_failures.get(account.ucc, 0) >= self.config.lockout_after:
            return _failure("Your account is locked after repeated failed logins. Reset "
                            "your MPIN or password in the Neo app to unlock it.", 403)
        return None

    def _fail(self, state: SandboxState, account: SandboxAccount, message: str,
              legacy: bool = False) -> Reply:
        state.login_failures[account.ucc] = state.login_failures.get(account.ucc, 0) + 1
        if legacy:
            return 401, {"error": [{"code": "10500", "message": message}]}
        return _failure(message)

    def _session(self, state: SandboxState, account: SandboxAccount, kind: str, flow: str,
                 now: datetime, ip: str) -> SessionRecord:
        state.login_failures.pop(account.ucc, None)
        state.sessions = {sid: s for sid, s in state.sessions.items() if s.expires_at > now}
        expires = next_midnight_ist(now)
        token = tokens.session_token(ucc=account.ucc, pan=account.pan,
                                     scope="Trade" if kind == "trade" else "View",
                                     issued=now, expires=expires, key=self._key)
        record = SessionRecord(sid=str(uuid.uuid4()), token=token, ucc=account.ucc, kind=kind,
                               flow=flow, created_at=now, expires_at=expires, ip=ip)
        state.sessions[record.sid] = record
        return record

    def _data(self, account: SandboxAccount, session: SessionRecord, kind: str) -> dict[str, Any]:
        return {
            "token": session.token, "sid": session.sid, "rid": str(uuid.uuid4()),
            "hsServerId": "", "isUserPwdExpired": False, "ucc": account.ucc,
            "greetingName": account.name, "isTrialAccount": False, "dataCenter": "E43",
            "searchAPIKey": "", "derivativesRiskDisclosure": "", "mfAccess": 1,
            "dataCenterMap": None, "dormancyStatus": "A", "asbaStatus": "", "clientType": "RI",
            "isNRI": False, "kId": account.pan, "kType": kind, "status": "success",
            "incRange": 0, "incUpdFlag": "", "clientGroup": "", "kraStatus": "", "rcFlag": 0,
        }

    def _legacy_data(self, account: SandboxAccount, session: SessionRecord) -> dict[str, Any]:
        return {
            "token": session.token, "sid": session.sid, "rid": str(uuid.uuid4()),
            "hsServerId": self.config.server_id, "isUserPwdExpired": False,
            "caches": {"baskets": "1687845385", "lastUpdatedTS": "1687845385",
                       "multiplewatchlists": "1683352919",
                       "techchartpreferences": "1683528608"},
            "ucc": account.ucc, "greetingName": account.name, "isTrialAccount": False,
            "dataCenter": "gdc", "searchAPIKey": "",
        }


def _same_mobile(given: str, expected: str) -> bool:
    digits = "".join(ch for ch in given if ch.isdigit())
    if len(digits) == 12 and digits.startswith("91"):
        digits = digits[2:]
    return digits == expected[-10:]


def _basic(value: str) -> tuple[str, str]:
    if not value.startswith("Basic "):
        return "", ""
    try:
        decoded = base64.b64decode(value.removeprefix("Basic ").strip()).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    key, _, secret = decoded.partition(":")
    return key, secret
