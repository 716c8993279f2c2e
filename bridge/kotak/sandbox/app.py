"""The sandbox as a WSGI application speaking Kotak's HTTP protocol.

Routes (both generations share one engine and one session table):

* current: ``POST /login/1.0/tradeApiLogin``, ``POST /login/1.0/tradeApiValidate``, trading under
  ``/quick/...`` (the ``baseUrl`` handed out is this server), scrip file list at
  ``GET /script-details/1.0/masterscrip/file-paths``, quotes at
  ``GET /script-details/1.0/quotes/neosymbol/<segment|token,...>/<filter>`` (both with the
  access token alone in ``Authorization``);
* legacy: ``POST /oauth2/token``, ``POST /login/1.0/login/v2/validate``,
  ``POST /login/1.0/login/otp/generate``, trading under ``/Orders/2.0/quick/...`` (``?sId=``
  accepted), file list at ``GET /Files/1.0/masterscrip/v1/file-paths``; no quotes (v1 had
  none over REST);
* the CSVs at ``GET /wso2-scripmaster/v1/prod/<day>/...`` (no credentials; other days 403);
* ``/_sandbox/...``: the control API for drills (prices, rules, faults, session expiry,
  seeded positions, the request log, the clock when it is manual).

Trading POSTs carry one form field ``jData`` holding a JSON object, as at Kotak.
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
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from bridge.clock import ManualClock
from bridge.kotak.sandbox.conditions import Rule as SandboxRule
from bridge.kotak.sandbox.engine import Reply, not_ok, parse_jdata
from bridge.kotak.sandbox.faults import Fault
from bridge.kotak.sandbox.logins import HEADER_MISSING, STALE_CURRENT, Caller

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from bridge.kotak.sandbox.broker import Sandbox

log = logging.getLogger(__name__)

ORDER_ENDPOINTS = frozenset({"place", "modify", "cancel"})
_TRADING = ("place", "modify", "cancel", "orders", "history", "trades", "positions", "limits")
_TRADING_PATHS = {
    "place": ("quick/order/rule/ms/place", "POST"),
    "modify": ("quick/order/vr/modify", "POST"),
    "cancel": ("quick/order/cancel", "POST"),
    "orders": ("quick/user/orders", "GET"),
    "history": ("quick/order/history", "POST"),
    "trades": ("quick/user/trades", "GET"),
    "positions": ("quick/user/positions", "GET"),
    "limits": ("quick/user/limits", "POST"),
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
    path: str
    endpoint: str
    ucc: str
    status: int
    jdata: str = ""


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
    """Order requests per account in the last second (real time, whatever the clock says)."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

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


class SandboxApp:
    """WSGI entry point of one :class:`~bridge.kotak.sandbox.broker.Sandbox`."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._rates = RateWindow()
        rules = [
            Rule("/login/1.0/tradeApiLogin", endpoint="login", methods=["POST"]),
            Rule("/login/1.0/tradeApiValidate", endpoint="validate", methods=["POST"]),
            Rule("/oauth2/token", endpoint="oauth", methods=["POST"]),
            Rule("/login/1.0/login/v2/validate", endpoint="legacy-validate", methods=["POST"]),
            Rule("/login/1.0/login/otp/generate", endpoint="otp", methods=["POST"]),
            Rule("/script-details/1.0/masterscrip/file-paths", endpoint="scrip-files",
                 methods=["GET"]),
            Rule("/Files/1.0/masterscrip/v1/file-paths", endpoint="legacy-scrip-files",
                 methods=["GET"]),
            Rule(f"/script-details/1.0/quotes/neosymbol/<symbols>/"
                 f"<any({', '.join(QUOTE_FILTERS)}):kind>", endpoint="quotes", methods=["GET"]),
            Rule("/wso2-scripmaster/v1/prod/<day>/<path:name>", endpoint="scrip-file",
                 methods=["GET"]),
            Rule("/_sandbox/<action>", endpoint="control", methods=["GET", "POST", "DELETE"]),
        ]
        for name, (path, method) in _TRADING_PATHS.items():
            rules.append(Rule(f"/{path}", endpoint=name, methods=[method]))
            rules.append(Rule(f"/Orders/2.0/{path}", endpoint=f"legacy-{name}",
                              methods=[method]))
        self._map = Map(rules)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        arrived = time.time()  # the log's stamp: when the request arrived, as Kotak counts
        request = Request(environ)
        try:
            endpoint, args = self._map.bind_to_environ(environ).match()
        except HTTPException as exc:
            code = exc.code or 404
            response = _json((code, {"message": "No matching resource found for the request",
                                     "code": str(code)}))
            return response(environ, start_response)
        name = endpoint.removeprefix("legacy-")
        legacy = endpoint.startswith("legacy-") or name in ("oauth", "otp")
        if name == "control":
            return self._control(request, args["action"])(environ, start_response)
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
        if name == "scrip-files":
            return self._scrip_files(request, legacy, now)
        if name == "scrip-file":
            return self._scrip_file(args["day"], args["name"], now)
        if name == "quotes":
            return self._quotes(request, args["symbols"], now)
        return self._trading(request, name, legacy, now)

    def _login(self, request: Request, name: str, legacy: bool) -> _Outcome:
        sandbox = self.sandbox
        caller = Caller(headers=request.headers, body=_body(request),
                        ip=request.remote_addr or "", host=request.host_url)
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
        base = request.host_url.rstrip("/")
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

    def _quotes(self, request: Request, symbols: str, now: Any) -> _Outcome:
        """Quotes, to the access token alone: no session is looked at (section 4.11)."""
        sandbox = self.sandbox
        token = request.headers.get("Authorization", "")
        if not token:
            return _Outcome(HEADER_MISSING)
        account = next((a for a in sandbox.accounts.values() if a.consumer_key == token), None)
        if account is None:
            return _Outcome(STALE_CURRENT)
        with sandbox.store.transaction() as state:
            answer = sandbox.engine.quotes(state, symbols.split(","), now)
        if isinstance(answer, list):
            return _Outcome(Response(json.dumps(answer), mimetype="application/json"),
                            ucc=account.ucc)
        return _Outcome(answer, ucc=account.ucc)

    def _trading(self, request: Request, name: str, legacy: bool, now: Any) -> _Outcome:
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
        with sandbox.store.transaction() as state:
            session = sandbox.logins.trade_session(state, request.headers, now, legacy)
            if isinstance(session, tuple):
                return _Outcome(session, jdata=raw)
            ucc = session.ucc
            if name in ORDER_ENDPOINTS:
                refusal = self._order_gate(request, session.ip, ucc)
                if refusal is not None:
                    return _Outcome(refusal, ucc=ucc, jdata=raw)
            engine = sandbox.engine
            reply: Reply
            if name == "place":
                reply = engine.place(state, ucc, data, now)
            elif name == "modify":
                reply = engine.modify(state, ucc, data, now)
            elif name == "cancel":
                reply = engine.cancel(state, ucc, data, now)
            elif name == "orders":
                reply = engine.order_book(state, ucc, now)
            elif name == "history":
                reply = engine.history(state, ucc, data, now)
            elif name == "trades":
                reply = engine.trades(state, ucc, now)
            elif name == "positions":
                reply = engine.positions(state, ucc, now)
            else:
                reply = engine.limits(state, ucc, now)
        return _Outcome(reply, ucc=ucc, jdata=raw)

    def _order_gate(self, request: Request, session_ip: str, ucc: str) -> Reply | None:
        """Kotak's checks on order-changing calls: static IP, session IP, rate."""
        config = self.sandbox.config
        ip = request.remote_addr or ""
        if config.whitelist and ip not in config.whitelist:
            return not_ok("100008", "unauthorized")
        if config.bind_session_ip and ip != session_ip:
            return not_ok("1037", "session ip does not match the request ip")
        if not self._rates.admit(ucc, config.order_rate):
            return RATE_LIMITED
        return None

    def _record(self, request: Request, arrived: float, name: str, ucc: str, status: int,
                jdata: str = "") -> None:
        self.sandbox.requests.add(RequestRecord(
            at=arrived, method=request.method, path=request.path, endpoint=name, ucc=ucc,
            status=status, jdata=jdata))

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
            return {"requests": [asdict(r) for r in sandbox.requests.snapshot(
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
