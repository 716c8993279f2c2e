"""Kotak sessions and the two login generations that create them.

* ``totp`` (current, section 3): tradeApiLogin with UCC + mobile + TOTP, then tradeApiValidate
  with the MPIN. Trading then happens on the ``baseUrl`` the second step returns.
* ``oauth2`` (legacy, section 2): an OAuth2 client-credentials token from the consumer key and
  secret, then login/v2/validate with mobile or PAN + password (view token), then either the
  MPIN or an SMS/e-mail OTP (generate, then validate) for the trade token. Trading happens on
  the gateway with ``?sId=<hsServerId>`` and the OAuth token as Bearer, which lapses after its
  ``expires_in`` and is renewed on its own, without a new login.

Both end in a :class:`KotakSession`: the trade token, the sid, the trading host, and the expiry
read from the token's JWT ``exp`` (Kotak sessions end at the next midnight IST).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import pyotp

from bridge.clock import IST, Clock, next_midnight_ist
from bridge.kotak import wire
from bridge.kotak.errors import LoginFailed, ProtocolError
from bridge.kotak.http import KotakHttp
from bridge.kotak.wire import Call

log = logging.getLogger(__name__)


class AuthFlow(StrEnum):
    TOTP = "totp"
    OAUTH2 = "oauth2"


@dataclass(frozen=True)
class KotakCredentials:
    """What a login needs. Secrets are plain strings here; this object is never logged."""

    flow: AuthFlow
    access_token: str = field(default="", repr=False)  # BROKER_API_KEY
    consumer_secret: str = field(default="", repr=False)  # BROKER_API_SECRET (oauth2)
    ucc: str = ""
    mobile: str = ""
    pan: str = ""
    mpin: str = field(default="", repr=False)
    totp_secret: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    login_url: str = "https://mis.kotaksecurities.com"
    oauth_url: str = "https://napi.kotaksecurities.com"
    gateway_url: str = "https://gw-napi.kotaksecurities.com"

    def missing_for_unattended(self) -> list[str]:
        """Name what is missing for a login without a person (empty when complete)."""
        needed: dict[str, str]
        if self.flow is AuthFlow.TOTP:
            needed = {"BROKER_API_KEY": self.access_token, "KOTAK_UCC": self.ucc,
                      "KOTAK_MOBILE": self.mobile, "KOTAK_TOTP_SECRET": self.totp_secret,
                      "KOTAK_MPIN": self.mpin}
        else:
            needed = {"BROKER_API_KEY": self.access_token,
                      "BROKER_API_SECRET": self.consumer_secret,
                      "KOTAK_MOBILE or KOTAK_PAN": self.mobile or self.pan,
                      "KOTAK_PASSWORD": self.password, "KOTAK_MPIN": self.mpin}
        return [name for name, value in needed.items() if not value]


@dataclass(frozen=True)
class KotakSession:
    """A logged-in trade session. Holds live credentials: never log or serialise it openly."""

    account: str
    flow: AuthFlow
    token: str = field(repr=False)  # trade token, sent as Auth
    sid: str = field(repr=False)
    base_url: str  # trading host: baseUrl (totp) or the gateway (oauth2)
    expires_at: datetime
    created_at: datetime
    server_id: str = ""  # hsServerId, the legacy ?sId= (often empty since 2025)
    bearer: str = field(default="", repr=False)  # legacy OAuth2 access token
    bearer_expires_at: datetime | None = None
    ucc: str = ""
    data_center: str = ""

    def valid_at(self, moment: datetime, margin: timedelta = timedelta(0)) -> bool:
        return moment + margin < self.expires_at

    def bearer_valid_at(self, moment: datetime, margin: timedelta = timedelta(0)) -> bool:
        if self.flow is not AuthFlow.OAUTH2:
            return True
        return self.bearer_expires_at is not None and moment + margin < self.bearer_expires_at

    def with_bearer(self, bearer: str, expires_at: datetime) -> KotakSession:
        return replace(self, bearer=bearer, bearer_expires_at=expires_at)

    def to_dict(self) -> dict[str, Any]:
        """Plain form for the session store (which encrypts it)."""
        return {
            "account": self.account, "flow": self.flow.value, "token": self.token,
            "sid": self.sid, "base_url": self.base_url,
            "expires_at": self.expires_at.isoformat(), "created_at": self.created_at.isoformat(),
            "server_id": self.server_id, "bearer": self.bearer,
            "bearer_expires_at": (self.bearer_expires_at.isoformat()
                                  if self.bearer_expires_at else None),
            "ucc": self.ucc, "data_center": self.data_center,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KotakSession:
        bearer_expiry = data.get("bearer_expires_at")
        return cls(
            account=str(data["account"]), flow=AuthFlow(data["flow"]), token=str(data["token"]),
            sid=str(data["sid"]), base_url=str(data["base_url"]),
            expires_at=datetime.fromisoformat(data["expires_at"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            server_id=str(data.get("server_id", "")), bearer=str(data.get("bearer", "")),
            bearer_expires_at=datetime.fromisoformat(bearer_expiry) if bearer_expiry else None,
            ucc=str(data.get("ucc", "")), data_center=str(data.get("data_center", "")),
        )


@dataclass(frozen=True)
class PendingOtp:
    """A legacy login waiting for the OTP Kotak sent by SMS/e-mail."""

    account: str
    view_token: str = field(repr=False)
    sid: str = field(repr=False)
    user_id: str
    bearer: str = field(repr=False)
    bearer_expires_at: datetime
    started_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"account": self.account, "view_token": self.view_token, "sid": self.sid,
                "user_id": self.user_id, "bearer": self.bearer,
                "bearer_expires_at": self.bearer_expires_at.isoformat(),
                "started_at": self.started_at.isoformat()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PendingOtp:
        return cls(account=str(data["account"]), view_token=str(data["view_token"]),
                   sid=str(data["sid"]), user_id=str(data["user_id"]),
                   bearer=str(data["bearer"]),
                   bearer_expires_at=datetime.fromisoformat(data["bearer_expires_at"]),
                   started_at=datetime.fromisoformat(data["started_at"]))


def jwt_claims(token: str) -> dict[str, Any]:
    """Decode a JWT's claims without verifying it (Kotak's signature is not ours to check)."""
    parts = token.split(".")
    if len(parts) < 2:
        raise ProtocolError("Kotak's token is not a JWT")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError) as exc:
        raise ProtocolError("Kotak's token has unreadable claims") from exc
    if not isinstance(claims, dict):
        raise ProtocolError("Kotak's token claims are not an object")
    return claims


def token_expiry(token: str, issued: datetime) -> datetime:
    """Return when a trade token lapses: its ``exp``, else Kotak's rule, the next midnight IST."""
    try:
        exp = jwt_claims(token).get("exp")
    except ProtocolError:
        exp = None
    if isinstance(exp, (int, float)) and exp > 0:
        return datetime.fromtimestamp(exp, IST)
    return next_midnight_ist(issued)


def current_totp(secret: str, moment: datetime) -> str:
    """The 6-digit RFC 6238 code for ``moment`` from the base32 seed."""
    return str(pyotp.TOTP(secret).at(moment))


class TotpLogin:
    """The current login: tradeApiLogin (TOTP) then tradeApiValidate (MPIN)."""

    def __init__(self, http: KotakHttp, credentials: KotakCredentials, clock: Clock) -> None:
        self._http = http
        self._creds = credentials
        self._clock = clock

    def login(self, account: str, *, totp: str = "", mpin: str = "") -> KotakSession:
        """Log in; ``totp``/``mpin`` typed by a person win over the stored seed and MPIN.

        :raises LoginFailed: Kotak refused a step.
        :raises BrokerUnavailable: Kotak was not reached (nothing submitted).
        :raises OutcomeUnknown: a step was sent but not answered.
        """
        creds = self._creds
        code = totp or current_totp(creds.totp_secret, self._clock.now())
        base = creds.login_url.rstrip("/")
        body = self._http.request(
            Call.LOGIN, "POST", f"{base}/{wire.TOTP_LOGIN_PATH}", what="tradeApiLogin",
            headers=wire.totp_login_headers(creds.access_token),
            json_body=wire.totp_login_body(creds.mobile, creds.ucc.upper(), code),
        )
        view = _checked(wire.parse_login_reply(body), "tradeApiLogin")
        body = self._http.request(
            Call.LOGIN, "POST", f"{base}/{wire.TOTP_VALIDATE_PATH}", what="tradeApiValidate",
            headers=wire.totp_validate_headers(creds.access_token, view.sid, view.token),
            json_body=wire.mpin_body(mpin or creds.mpin),
        )
        trade = _checked(wire.parse_login_reply(body), "tradeApiValidate")
        base_url = trade.base_url
        if not base_url:
            # The SDK then trades on its default production host, which is the login host
            # (mis.kotaksecurities.com); failing the login instead would leave the day
            # without a session.
            base_url = creds.login_url
            log.warning("Kotak's tradeApiValidate named no trading host (baseUrl) for account "
                        "%s; trading on the login host %s, as Kotak's SDK does", account,
                        base_url)
        now = self._clock.now()
        return KotakSession(
            account=account, flow=AuthFlow.TOTP, token=trade.token, sid=trade.sid,
            base_url=base_url.rstrip("/"), expires_at=token_expiry(trade.token, now),
            created_at=now, server_id=trade.server_id, ucc=trade.ucc or creds.ucc,
            data_center=trade.data_center,
        )


class OAuth2Login:
    """The legacy login: OAuth2 token, password view token, then MPIN or OTP."""

    def __init__(self, http: KotakHttp, credentials: KotakCredentials, clock: Clock) -> None:
        self._http = http
        self._creds = credentials
        self._clock = clock

    def bearer(self) -> tuple[str, datetime]:
        """Get a fresh OAuth2 access token and when it lapses.

        :raises LoginFailed: the consumer key or secret was refused.
        """
        creds = self._creds
        basic = base64.b64encode(f"{creds.access_token}:{creds.consumer_secret}".encode()).decode()
        body = self._http.request(
            Call.LOGIN, "POST", f"{creds.oauth_url.rstrip('/')}/{wire.OAUTH_TOKEN_PATH}",
            what="oauth2 token", headers=wire.oauth_headers(basic),
            json_body=wire.oauth_token_body(),
        )
        reply = wire.parse_oauth_reply(body)
        return reply.access_token, self._clock.now() + timedelta(seconds=reply.expires_in)

    def login(self, account: str, *, mpin: str = "") -> KotakSession:
        """Log in with password then MPIN, without a person."""
        bearer, bearer_expiry = self.bearer()
        view = self._view(bearer)
        body = self._http.request(
            Call.LOGIN, "POST", self._url(wire.LEGACY_VALIDATE_PATH), what="login (MPIN)",
            headers=wire.legacy_login_headers(bearer, view.sid, view.token),
            json_body={**wire.legacy_identity(self._creds.mobile, self._creds.pan),
                       **wire.mpin_body(mpin or self._creds.mpin)},
        )
        return self._session(account, body, bearer, bearer_expiry)

    def begin_otp(self, account: str) -> PendingOtp:
        """Log in with the password and ask Kotak to send an OTP; a person types it next."""
        bearer, bearer_expiry = self.bearer()
        view = self._view(bearer)
        user_id = str(jwt_claims(view.token).get("sub", ""))
        if not user_id:
            raise ProtocolError("Kotak's view token carries no user id (sub)")
        self._http.request(
            Call.LOGIN, "POST", self._url(wire.LEGACY_OTP_PATH), what="OTP generation",
            headers=wire.legacy_login_headers(bearer), json_body=wire.otp_generate_body(user_id),
        )
        return PendingOtp(account=account, view_token=view.token, sid=view.sid, user_id=user_id,
                          bearer=bearer, bearer_expires_at=bearer_expiry,
                          started_at=self._clock.now())

    def complete_otp(self, pending: PendingOtp, otp: str) -> KotakSession:
        body = self._http.request(
            Call.LOGIN, "POST", self._url(wire.LEGACY_VALIDATE_PATH), what="login (OTP)",
            headers=wire.legacy_login_headers(pending.bearer, pending.sid, pending.view_token),
            json_body=wire.otp_validate_body(pending.user_id, otp),
        )
        return self._session(pending.account, body, pending.bearer, pending.bearer_expires_at)

    def _view(self, bearer: str) -> wire.LoginReply:
        body = self._http.request(
            Call.LOGIN, "POST", self._url(wire.LEGACY_VALIDATE_PATH), what="login (password)",
            headers=wire.legacy_login_headers(bearer),
            json_body={**wire.legacy_identity(self._creds.mobile, self._creds.pan),
                       "password": self._creds.password},
        )
        return wire.parse_login_reply(body)

    def _session(self, account: str, body: Any, bearer: str,
                 bearer_expiry: datetime) -> KotakSession:
        trade = wire.parse_login_reply(body)
        now = self._clock.now()
        return KotakSession(
            account=account, flow=AuthFlow.OAUTH2, token=trade.token, sid=trade.sid,
            base_url=self._creds.gateway_url.rstrip("/"),
            expires_at=token_expiry(trade.token, now), created_at=now,
            server_id=trade.server_id, bearer=bearer, bearer_expires_at=bearer_expiry,
            ucc=trade.ucc or self._creds.ucc, data_center=trade.data_center,
        )

    def _url(self, path: str) -> str:
        return f"{self._creds.gateway_url.rstrip('/')}/{path}"


def _checked(reply: wire.LoginReply, step: str) -> wire.LoginReply:
    # The current API can answer 200 without success (e.g. an unknown UCC); OpenAlgo and the
    # docs treat anything but status "success" as a failed step.
    if reply.status and reply.status.lower() != "success":
        raise LoginFailed(step, f"Kotak reported status {reply.status!r}")
    return reply
