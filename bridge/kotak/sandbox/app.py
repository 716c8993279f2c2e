"""The sandbox as a WSGI application speaking Kotak's HTTP protocol.

Routes (both generations share one engine and one session table), each served only on the
host Kotak serves it on (see hosts.py; a call to the wrong host is a 404, as live):

* current, login host: ``POST /login/1.0/tradeApiLogin``, ``POST /login/1.0/tradeApiValidate``
  and ``GET /login/1.0/get-client-ip`` (the address Kotak sees, asked with the access token
  and the trade session);
* current, trading host (the ``baseUrl`` handed out): ``/quick/...`` orders and books, one
  order at ``GET quick/user/orders/<nOrdNo>``, positions at ``GET portfolio/v2/positions``
  (Kotak's SDK 3.0.9) and at the older ``quick/user/positions``, ``GET portfolio/v1/holdings``
  and ``POST quick/user/check-margin``; place, modify and cancel want the access token in
  ``Authorization`` beside ``Sid`` and ``Auth``, as the SDK sends it;
* current, login or trading host: the scrip file list at
  ``GET /script-details/1.0/masterscrip/file-paths`` and quotes at
  ``GET /script-details/1.0/quotes/neosymbol/<segment|token,...>/<filter>`` (both with the
  access token alone), the list split on a literal ``|`` and ``,`` as sent;
* legacy, OAuth host: ``POST /oauth2/token``; legacy gateway: ``POST
  /login/1.0/login/v2/validate``, ``POST /login/1.0/login/otp/generate``, ``POST
  /login/1.0/logout``, trading under ``/Orders/2.0/quick/...`` and
  ``/Portfolio/1.0/portfolio/v1/holdings`` (``?sId=`` accepted, replies stamped with a
  ``tid`` as the 1.x client expects), file list at ``GET /Files/1.0/masterscrip/v1/file-paths``;
  no quotes (v1 had none over REST);
* files host: the CSVs at ``GET /wso2-scripmaster/v1/prod/<day>/...`` (no credentials; other
  days 403) and the SDK's feed config at ``GET /5config/config``;
* ``/_sandbox/...`` on any host: the control API for drills (prices, rules, faults, session
  expiry, seeded positions, the request log, the clock when it is manual, and ``walk``:
  ``POST {"running": false}`` freezes the price walk, ``true`` lets it go on).

Trading POSTs carry one form field ``jData`` holding a JSON object, as at Kotak. Kotak's
quirks its users report are reproduced: a tag used twice in a day is refused (stCode 32),
and the order book hangs after a burst of orders when ``SandboxConfig.book_hang_s`` is set.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from bridge.clock import ManualClock
from bridge.kotak.sandbox.conditions import Rule as SandboxRule
from bridge.kotak.sandbox.engine import Reply, not_ok, parse_jdata
from bridge.kotak.sandbox.faults import Fault
from bridge.kotak.sandbox.hosts import ROLE_KEY, Role, parse_roles
from bridge.kotak.sandbox.logins import HEADER_MISSING, STALE_CURRENT, Caller

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from bridge.clock import Clock
    from bridge.kotak.sandbox.conditions import RuleBook, SandboxAccount, SandboxConfig
    from bridge.kotak.sandbox.engine import Engine
    from bridge.kotak.sandbox.faults import FaultPlan
    from bridge.kotak.sandbox.hosts import Hosts
    from bridge.kotak.sandbox.logins import Logins
    from bridge.kotak.sandbox.state import StateStore

log = logging.getLogger(__name__)

ORDER_ENDPOINTS = frozenset({"place", "modify", "cancel"})
#: reads that hang after a burst of orders: the order book (Kotak-neo-api-v2 #68)
BOOK_READS = frozenset({"orders"})
#: trading calls: (name, method, current path or "", legacy gateway path or "")
_TRADING_PATHS: tuple[tuple[str, str, str, str], ...] = (
    ("place", "POST", "quick/order/rule/ms/place", "Orders/2.0/quick/order/rule/ms/place"),
    ("modify", "POST", "quick/order/vr/modify", "Orders/2.0/quick/order/vr/modify"),
    ("cancel", "POST", "quick/order/cancel", "Orders/2.0/quick/order/cancel"),
    ("orders", "GET", "quick/user/orders", "Orders/2.0/quick/user/orders"),
    ("order", "GET", "quick/user/orders/<order_id>", ""),
    ("history", "POST", "quick/order/history", "Orders/2.0/quick/order/history"),
    ("trades", "GET", "quick/user/trades", "Orders/2.0/quick/user/trades"),
    # 3.0.9 reads positions under portfolio/v2; quick/user/positions is the older path.
    ("positions", "GET", "portfolio/v2/positions", ""),
    ("positions", "GET", "quick/user/positions", "Orders/2.0/quick/user/positions"),
    ("holdings", "GET", "portfolio/v1/holdings", "Portfolio/1.0/portfolio/v1/holdings"),
    ("limits", "POST", "quick/user/limits", "Orders/2.0/quick/user/limits"),
    ("margin", "POST", "quick/user/check-margin", "Orders/2.0/quick/user/check-margin"),
)
#: the hosts each non-trading endpoint is served on (trading: the baseUrl, or the gateway)
_ROLES: dict[str, frozenset[Role]] = {
    "login": frozenset({Role.LOGIN}),
    "validate": frozenset({Role.LOGIN}),
    "client-ip": frozenset({Role.LOGIN}),
    "scrip-files": frozenset({Role.LOGIN, Role.TRADING}),
    "quotes": frozenset({Role.LOGIN, Role.TRADING}),
    "scrip-file": frozenset({Role.FILES}),
    "config": frozenset({Role.FILES}),
    "oauth": frozenset({Role.OAUTH}),
    "legacy-validate": frozenset({Role.GATEWAY}),
    "otp": frozenset({Role.GATEWAY}),
    "logout": frozenset({Role.GATEWAY}),
    "legacy-scrip-files": frozenset({Role.GATEWAY}),
}
_HTML_ERROR = ("<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
               "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
               "</body>\r\n</html>\r\n")
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Temporarily "
            "Unavailable", 504: "Gateway Time-out"}
RATE_LIMITED: Reply = (429, {"stat": "Not_Ok", "stCode": 429,
                             "errMsg": "Too many requests to the API"})
#: the quotes filters Kotak documents (section 4.11; ``market_depth`` is 3.x's name for ``depth``)
QUOTE_FILTERS = ("all", "depth", "market_depth", "ohlc", "ltp", "oi", "52w", "circuit_limits",
                 "scrip_details")


@dataclass(frozen=True)
class RequestRecord:
    """One request the sandbox saw: for tests that check what reached the broker."""

    at: float  # wall-clock seconds
    method: str
    path: str  # decoded
    endpoint: str
    ucc: str
    status: int
    jdata: str = ""
    target: str = ""  # the request target as it came over the wire: path and query, undecoded
    headers: tuple[tuple[str, str], ...] = ()
    role: str = ""  # which of Kotak's hosts it was sent to (see hosts.py)
    body: bytes = b""


class RequestLog:
    def __init__(self, limit: int = 100_000) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def snapshot(self, endpoint: str = "") -> list[RequestRecord]:
        with self._lock:
            return [r for r in self._records if not endpoint or r.endpoint == endpoint]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


class RateWindow:
    """Order requests per account in the last second (real time, whatever the clock says),
    and until when each account's book hangs after a burst."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}
        self._burst: dict[str, deque[float]] = {}
        self._hang_until: dict[str, float] = {}
        self._tid = 0
        self._lock = threading.Lock()

    def note_order(self, ucc: str, burst: int, hang_s: float) -> None:
        if hang_s <= 0:
            return
        now = time.monotonic()
        with self._lock:
            window = self._burst.setdefault(ucc, deque())
            window.append(now)
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= burst:
                self._hang_until[ucc] = now + hang_s

    def next_tid(self) -> int:
        with self._lock:
            self._tid += 1
            return self._tid

    def hang_left(self, ucc: str) -> float:
        with self._lock:
            return max(self._hang_until.get(ucc, 0.0) - time.monotonic(), 0.0)

    def admit(self, ucc: str, limit: int) -> bool:
        if limit <= 0:
            return True
        now = time.monotonic()
        with self._lock:
            window = self._seen.setdefault(ucc, deque())
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= limit:
                return False
            window.append(now)
            return True


@dataclass
class _Outcome:
    reply: Reply | Response
    ucc: str = ""
    jdata: str = ""


class ServedSandbox(Protocol):
    """What the app reads and drives of the sandbox it serves. That sandbox
    (:class:`~bridge.kotak.sandbox.broker.Sandbox`) makes its own app to be a WSGI
    application itself, so the app names what it needs rather than importing it back."""

    accounts: dict[str, SandboxAccount]
    config: SandboxConfig
    clock: Clock
    store: StateStore
    rules: RuleBook
    faults: FaultPlan
    requests: RequestLog
    engine: Engine
    logins: Logins
    hosts: Hosts | None

    @property
    def prices_walking(self) -> bool: ...

    def summary(self) -> dict[str, Any]: ...

    def set_price(self, exchange: str, trading_symbol: str, price: Decimal) -> None: ...

    def freeze_prices(self) -> None: ...

    def unfreeze_prices(self) -> None: ...

    def seed_position(self, ucc: str, exchange: str, trading_symbol: str, product: str,
                      quantity: int, price: Decimal) -> None: ...

    def expire_sessions(self, ucc: str = "") -> int: ...

    def unlock(self, ucc: str) -> None: ...


class SandboxApp:
    """WSGI entry point of one :class:`~bridge.kotak.sandbox.broker.Sandbox`."""

    def __init__(self, sandbox: ServedSandbox) -> None:
        self.sandbox = sandbox
        self._rates = RateWindow()
        rules = [
            Rule("/login/1.0/tradeApiLogin", endpoint="login", methods=["POST"]),
            Rule("/login/1.0/tradeApiValidate", endpoint="validate", methods=["POST"]),
            Rule("/login/1.0/get-client-ip", endpoint="client-ip", methods=["GET"]),
            Rule("/oauth2/token", endpoint="oauth", methods=["POST"]),
            Rule("/login/1.0/login/v2/validate", endpoint="legacy-validate", methods=["POST"]),
            Rule("/login/1.0/login/otp/generate", endpoint="otp", methods=["POST"]),
            Rule("/login/1.0/logout", endpoint="logout", methods=["POST"]),
            Rule("/script-details/1.0/masterscrip/file-paths", endpoint="scrip-files",
                 methods=["GET"]),
            Rule("/Files/1.0/masterscrip/v1/file-paths", endpoint="legacy-scrip-files",
                 methods=["GET"]),
            Rule(f"/script-details/1.0/quotes/neosymbol/<symbols>/"
                 f"<any({', '.join(QUOTE_FILTERS)}):kind>", endpoint="quotes", methods=["GET"]),
            Rule("/wso2-scripmaster/v1/prod/<day>/<path:name>", endpoint="scrip-file",
                 methods=["GET"]),
            Rule("/5config/config", endpoint="config", methods=["GET"]),
            Rule("/_sandbox/<action>", endpoint="control", methods=["GET", "POST", "DELETE"]),
        ]
        for name, method, current, legacy in _TRADING_PATHS:
            if current:
                rules.append(Rule(f"/{current}", endpoint=f"trading:{name}", methods=[method]))
            if legacy:
                rules.append(Rule(f"/{legacy}", endpoint=f"legacy-{name}", methods=[method]))
        self._map = Map(rules)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        arrived = time.time()  # the log's stamp: when the request arrived, as Kotak counts
        request = Request(environ)
        request.get_data(cache=True)  # kept for the request log; the form parses from it
        try:
            endpoint, args = self._map.bind_to_environ(environ).match()
        except HTTPException as exc:
            response = _not_found(exc.code or 404)
            self._record(request, arrived, "", "", response.status_code)
            return response(environ, start_response)
        if endpoint == "control":
            return self._control(request, args["action"])(environ, start_response)
        name = endpoint.removeprefix("legacy-").removeprefix("trading:")
        if not self._served_here(endpoint, environ, request.path):
            response = _not_found(404)
            self._record(request, arrived, name, "", response.status_code)
            return response(environ, start_response)
        legacy = endpoint.startswith("legacy-") or name in ("oauth", "otp", "logout")
        faults = self.sandbox.faults.take(name)
        early = self._before(faults, environ)
        if early is not None:
            self._record(request, arrived, name, "", early.status_code)
            return early(environ, start_response)
        outcome = self._handle(request, name, legacy, args)
        response = (outcome.reply if isinstance(outcome.reply, Response)
                    else _json(outcome.reply))
        self._record(request, arrived, name, outcome.ucc, response.status_code, outcome.jdata)
        for fault in faults:
            if fault.when == "after" and fault.kind == "stall":
                time.sleep(fault.seconds)
            if fault.when == "after" and fault.kind == "drop":
                _drop(environ)
        return response(environ, start_response)

    # --- dispatch -------------------------------------------------------------------------

    def _served_here(self, endpoint: str, environ: WSGIEnvironment, path: str) -> bool:
        """Whether the host the request was sent to serves ``endpoint`` (see hosts.py), and
        the path has not been retired by the configuration."""
        if path.lstrip("/") in self.sandbox.config.retired_paths:
            return False
        roles = environ.get(ROLE_KEY)
        if roles is None:
            return True
        if endpoint.startswith("trading:"):
            login_trades = self.sandbox.config.omit_base_url
            allowed = frozenset({Role.TRADING, Role.LOGIN} if login_trades else {Role.TRADING})
        elif endpoint.startswith("legacy-") and endpoint not in _ROLES:
            allowed = frozenset({Role.GATEWAY})
        else:
            allowed = _ROLES[endpoint]
        return bool(parse_roles(str(roles)) & allowed)

    def _before(self, faults: list[Fault], environ: WSGIEnvironment) -> Response | None:
        for fault in faults:
            if fault.kind == "latency":
                time.sleep(fault.seconds)
        for fault in faults:
            if fault.kind == "http_error":
                reason = _REASONS.get(fault.status, "Error")
                return Response(_HTML_ERROR.format(status=fault.status, reason=reason),
                                status=fault.status, mimetype="text/html")
            if fault.kind == "rate_limit":
                return _json(RATE_LIMITED, retry_after=True)
            if fault.when == "before" and fault.kind == "stall":
                time.sleep(fault.seconds)
            if fault.when == "before" and fault.kind == "drop":
                _drop(environ)
        return None

    def _handle(self, request: Request, name: str, legacy: bool,
                args: Mapping[str, Any]) -> _Outcome:
        sandbox = self.sandbox
        now = sandbox.clock.now()
        if name in ("login", "validate", "oauth", "otp"):
            return self._login(request, name, legacy)
        if name == "client-ip":
            return self._client_ip(request, now)
        if name == "logout":
            return self._logout(request, now)
        if name == "config":
            return _Outcome((200, {"data": {"configs": {}}, "status": "success"}))
        if name == "scrip-files":
            return self._scrip_files(request, legacy, now)
        if name == "scrip-file":
            return self._scrip_file(args["day"], args["name"], now)
        if name == "quotes":
            return self._quotes(request, now)
        return self._trading(request, name, legacy, now, args)

    def _login(self, request: Request, name: str, legacy: bool) -> _Outcome:
        sandbox = self.sandbox
        hosts = sandbox.hosts
        caller = Caller(headers=request.headers, body=_body(request),
                        ip=request.remote_addr or "",
                        host=hosts.url(Role.TRADING) if hosts else request.host_url)
        handler: dict[str, Callable[..., Reply]] = {
            "login": sandbox.logins.totp_login,
            "validate": (sandbox.logins.legacy_validate if legacy
                         else sandbox.logins.totp_validate),
            "oauth": sandbox.logins.oauth_token,
            "otp": sandbox.logins.otp_generate,
        }
        with sandbox.store.transaction() as state:
            reply = handler[name](state, caller, sandbox.clock.now())
        return _Outcome(reply, ucc=str(caller.body.get("ucc", "")).upper())

    def _scrip_files(self, request: Request, legacy: bool, now: Any) -> _Outcome:
        sandbox = self.sandbox
        if legacy:
            with sandbox.store.transaction() as state:
                allowed = sandbox.logins.bearer_account(state, request.headers, now) is not None
        else:
            allowed = sandbox.logins.access_token_ok(request.headers)
        if not allowed:
            return _Outcome((401, {"error": [{"code": "401",
                                              "message": "Invalid access token"}]}))
        catalog = sandbox.engine.catalog(now.date())
        base = (sandbox.hosts.url(Role.FILES) if sandbox.hosts
                else request.host_url.rstrip("/"))
        return _Outcome((200, {"data": {
            "filesPaths": catalog.file_paths(base),
            "baseFolder": f"{base}/wso2-scripmaster/v1/prod",
        }}))

    def _scrip_file(self, day: str, name: str, now: Any) -> _Outcome:
        catalog = self.sandbox.engine.catalog(now.date())
        content = catalog.file(name) if day == catalog.folder() else None
        if content is None:
            denied = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied"
                      "</Code><Message>Access Denied</Message></Error>")
            return _Outcome(Response(denied, status=403, mimetype="application/xml"))
        return _Outcome(Response(content, mimetype="text/csv"))

    def _quotes(self, request: Request, now: Any) -> _Outcome:
        """Quotes, to the access token alone: no session is looked at (section 4.11).

        The instrument list is read from the request target as sent, split on a literal
        ``|`` and ``,``, the way Kotak reads it (the SDK since July 2026): an escaped ``%7C``
        is no delimiter, so such a pair names no instrument.
        """
        sandbox = self.sandbox
        token = request.headers.get("Authorization", "")
        if not token:
            return _Outcome(HEADER_MISSING)
        account = next((a for a in sandbox.accounts.values() if a.consumer_key == token), None)
        if account is None:
            return _Outcome(STALE_CURRENT)
        with sandbox.store.transaction() as state:
            answer = sandbox.engine.quotes(state, _neosymbols(_target(request)), now)
        if isinstance(answer, list):
            return _Outcome(Response(json.dumps(answer), mimetype="application/json"),
                            ucc=account.ucc)
        return _Outcome(answer, ucc=account.ucc)

    def _trading(self, request: Request, name: str, legacy: bool, now: Any,
                 args: Mapping[str, Any]) -> _Outcome:
        sandbox = self.sandbox
        raw = request.form.get("jData", "") if request.method == "POST" else ""
        data: dict[str, Any] = {}
        if request.method == "POST":
            parsed = parse_jdata(raw)
            if parsed is None:
                with sandbox.store.transaction() as state:
                    session = sandbox.logins.trade_session(state, request.headers, now, legacy)
                if isinstance(session, tuple):
                    return _Outcome(session)
                return _Outcome(not_ok("1007", "body invalid", stat="bad request"),
                                ucc=session.ucc, jdata=raw)
            data = parsed
        if name in BOOK_READS and sandbox.config.book_hang_s > 0:
            self._hang(request, now, legacy)
        with sandbox.store.transaction() as state:
            session = sandbox.logins.trade_session(state, request.headers, now, legacy)
            if isinstance(session, tuple):
                return _Outcome(session, jdata=raw)
            ucc = session.ucc
            if name in ORDER_ENDPOINTS:
                refusal = self._order_gate(request, session.ip, ucc, legacy)
                if refusal is not None:
                    return _Outcome(refusal, ucc=ucc, jdata=raw)
            reply = self._trade(state, name, ucc, data, now, args)
        if legacy:
            reply = _with_tid(reply, self.sandbox.config.server_id, self._rates.next_tid())
        return _Outcome(reply, ucc=ucc, jdata=raw)

    def _trade(self, state: Any, name: str, ucc: str, data: dict[str, Any], now: Any,
               args: Mapping[str, Any]) -> Reply:
        engine = self.sandbox.engine
        if name == "place":
            return engine.place(state, ucc, data, now)
        if name == "modify":
            return engine.modify(state, ucc, data, now)
        if name == "cancel":
            return engine.cancel(state, ucc, data, now)
        if name == "orders":
            return engine.order_book(state, ucc, now)
        if name == "order":
            return engine.order(state, ucc, str(args["order_id"]), now)
        if name == "history":
            return engine.history(state, ucc, data, now)
        if name == "trades":
            return engine.trades(state, ucc, now)
        if name == "positions":
            return engine.positions(state, ucc, now)
        if name == "holdings":
            return engine.holdings(state, ucc, now)
        if name == "margin":
            return engine.margin(state, ucc, data, now)
        return engine.limits(state, ucc, now)

    def _hang(self, request: Request, now: Any, legacy: bool) -> None:
        """Hold a book read while the account's book hangs after a burst of orders.

        Outside the state lock, so orders and other accounts go on meanwhile."""
        with self.sandbox.store.transaction() as state:
            session = self.sandbox.logins.trade_session(state, request.headers, now, legacy)
        if isinstance(session, tuple):
            return
        remaining = self._rates.hang_left(session.ucc)
        if remaining > 0:
            time.sleep(remaining)

    def _client_ip(self, request: Request, now: Any) -> _Outcome:
        """What's my IP (the SDK's whatsmyip): the address Kotak sees, the one that must be
        whitelisted for orders (100008). Asked with the trade session and the access token."""
        sandbox = self.sandbox
        if not request.headers.get("Authorization", ""):
            return _Outcome(HEADER_MISSING)
        if not sandbox.logins.access_token_ok(request.headers):
            return _Outcome(STALE_CURRENT)
        with sandbox.store.transaction() as state:
            session = sandbox.logins.trade_session(state, request.headers, now, False)
        if isinstance(session, tuple):
            return _Outcome(session)
        stamp = f"{now:%Y-%m-%d %H:%M:%S}.{now.microsecond // 1000:03d}"
        return _Outcome((200, {"data": [{"ip": request.remote_addr or "", "time": stamp}],
                               "stCode": 1000, "status": "success"}), ucc=session.ucc)

    def _logout(self, request: Request, now: Any) -> _Outcome:
        """The legacy gateway's logout: ends the trade session presented with the Bearer."""
        sandbox = self.sandbox
        with sandbox.store.transaction() as state:
            session = sandbox.logins.trade_session(state, request.headers, now, True)
            if isinstance(session, tuple):
                return _Outcome(session)
            state.sessions.pop(session.sid, None)
        return _Outcome((200, {"data": {"token": "", "sid": "", "status": "success",
                                        "message": "Logged out successfully"}}),
                        ucc=session.ucc)

    def _order_gate(self, request: Request, session_ip: str, ucc: str,
                    legacy: bool) -> Reply | None:
        """Kotak's checks on order-changing calls: the access token beside the session (as
        the SDK sends it on place, modify and cancel), static IP, session IP, rate."""
        config = self.sandbox.config
        if not legacy:
            token = request.headers.get("Authorization", "")
            if not token:
                return HEADER_MISSING
            if token != self.sandbox.accounts[ucc].consumer_key:
                return 401, {"stat": "Not_Ok", "stCode": 10001,
                             "errMsg": "Invalid access token"}
        ip = request.remote_addr or ""
        if config.whitelist and ip not in config.whitelist:
            return not_ok("100008", "unauthorized")
        if config.bind_session_ip and ip != session_ip:
            return not_ok("1037", "session ip does not match the request ip")
        if not self._rates.admit(ucc, config.order_rate):
            return RATE_LIMITED
        self._rates.note_order(ucc, config.book_hang_after, config.book_hang_s)
        return None

    def _record(self, request: Request, arrived: float, name: str, ucc: str, status: int,
                jdata: str = "") -> None:
        self.sandbox.requests.add(RequestRecord(
            at=arrived, method=request.method, path=request.path, endpoint=name, ucc=ucc,
            status=status, jdata=jdata, target=_target(request),
            headers=tuple(request.headers.items()),
            role=str(request.environ.get(ROLE_KEY, "")), body=request.get_data(cache=True)))

    # --- control API ----------------------------------------------------------------------

    def _control(self, request: Request, action: str) -> Response:
        try:
            result = self._control_action(request, action, _body(request))
        except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
            return _json((400, {"error": f"{action}: {exc}"}))
        if result is None:
            return _json((404, {"error": f"no control action {action!r}"}))
        log.debug("sandbox control %s %s", request.method, action)
        return _json((200, result))

    def _control_action(self, request: Request, action: str,
                        body: dict[str, Any]) -> dict[str, Any] | None:
        sandbox = self.sandbox
        method = request.method
        if action == "state" and method == "GET":
            return sandbox.summary()
        if action == "requests":
            if method == "DELETE":
                sandbox.requests.clear()
                return {"cleared": True}
            return {"requests": [_plain(r) for r in sandbox.requests.snapshot(
                request.args.get("endpoint", ""))]}
        if action == "faults":
            if method == "DELETE":
                sandbox.faults.clear()
                return {"cleared": True}
            if method == "POST":
                sandbox.faults.add(Fault(**body))
            return {"faults": [asdict(f) for f in sandbox.faults.active()]}
        if action == "rules":
            if method == "DELETE":
                sandbox.rules.clear()
                return {"cleared": True}
            if method == "POST":
                sandbox.rules.add(SandboxRule(**body))
            return {"rules": [asdict(r) for r in sandbox.rules.active()]}
        if action == "prices" and method == "POST":
            sandbox.set_price(str(body["segment"]), str(body["trading_symbol"]),
                              Decimal(str(body["price"])))
            return {"ok": True}
        if action == "walk":
            if method == "POST":
                if str(body["running"]).lower() in ("true", "1"):
                    sandbox.unfreeze_prices()
                else:
                    sandbox.freeze_prices()
            return {"running": sandbox.prices_walking}
        if action == "positions" and method == "POST":
            sandbox.seed_position(str(body["ucc"]), str(body["segment"]),
                                  str(body["trading_symbol"]), str(body["product"]),
                                  int(body["quantity"]), Decimal(str(body["price"])))
            return {"ok": True}
        if action == "expire-sessions" and method == "POST":
            return {"expired": sandbox.expire_sessions(str(body.get("ucc", "")))}
        if action == "unlock" and method == "POST":
            sandbox.unlock(str(body["ucc"]))
            return {"ok": True}
        if action == "clock" and method == "POST":
            clock = sandbox.clock
            if not isinstance(clock, ManualClock):
                raise ValueError("the sandbox runs on the real clock (start it with "
                                 "--manual-clock to move time)")
            clock.advance(timedelta(seconds=float(body.get("advance_s", 0))))
            return {"now": clock.now().isoformat()}
        return None


def _json(reply: Reply, retry_after: bool = False) -> Response:
    status, body = reply
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    if retry_after or status == 429:
        response.headers["Retry-After"] = "1"
    return response


def _plain(record: RequestRecord) -> dict[str, Any]:
    """A request record as JSON can carry it (the body as text)."""
    data = asdict(record)
    data["body"] = record.body.decode("utf-8", "replace")
    return data


def _with_tid(reply: Reply, server_id: str, number: int) -> Reply:
    """The legacy gateway stamps its replies with the serving node (``tid``); the 1.x client
    reads it from the trade book."""
    status, body = reply
    if isinstance(body, dict) and "tid" not in body:
        body = {**body, "tid": f"{server_id}_{number}"}
    return status, body


def _not_found(code: int) -> Response:
    return _json((code, {"message": "No matching resource found for the request",
                         "code": str(code)}))


def _target(request: Request) -> str:
    """The request target as sent: servers that keep it put it in ``RAW_URI``."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        return str(raw)
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


def _neosymbols(target: str) -> list[str]:
    """The ``segment|key`` pairs of a quotes target, split on literal delimiters only."""
    path = target.partition("?")[0]
    marker = "/quotes/neosymbol/"
    listed = path[path.index(marker) + len(marker):].rpartition("/")[0]
    pairs = []
    for pair in listed.split(","):
        segment, bar, key = pair.partition("|")
        pairs.append(f"{unquote(segment)}|{unquote(key)}" if bar else f"|{unquote(pair)}")
    return pairs


def _body(request: Request) -> dict[str, Any]:
    """Decode a login or control body: JSON whatever the content type, else the form."""
    raw = request.get_data(cache=True)
    if raw.strip():
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {key: value for key, value in request.form.items()}


def _drop(environ: WSGIEnvironment) -> None:
    """Close the client's connection without an answer."""
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("the sandbox dropped the connection (injected fault)")
