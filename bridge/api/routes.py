"""``POST /api/v1/<call>``: who may call, and which call answers.

Order of checks on every call, as at the webhooks (and sharing their limits and their count
of wrong keys, so an address blocked for guessing is blocked at every door): the API switched
on (403 while ``API_KEY`` is empty), body size (413), a readable JSON object (422), an address
blocked after repeated wrong keys or flooding (429), then ``apikey`` (401, counted per
address). Every answer, refusals included, has OpenAlgo's shape (``status``, ``message``).
A call refused at the door, or an order call refused before it became a signal, is counted
in the journal's refusals (source ``api``) as a refused webhook is, so the dashboard shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from bridge.api import books, orders
from bridge.api.answers import ApiError, Caller, error_body
from bridge.domain import DEFAULT_ACCOUNT
from bridge.errors import BridgeError, PayloadTooLarge
from bridge.metrics import count_signal
from bridge.webhooks import auth, intake
from bridge.webhooks.routes import Gate, admit, deadline_of, fail_auth, read_body
from bridge.wiring import Services

bp = Blueprint("api", __name__, url_prefix="/api/v1")

Handler = Callable[[Caller], tuple[dict[str, Any], int]]
CALLS: dict[str, Handler] = {
    "placeorder": orders.placeorder,
    "placesmartorder": orders.placesmartorder,
    "optionsorder": orders.optionsorder,
    "optionsmultiorder": orders.optionsmultiorder,
    "basketorder": orders.basketorder,
    "splitorder": orders.splitorder,
    "modifyorder": orders.modifyorder,
    "cancelorder": orders.cancelorder,
    "cancelallorder": orders.cancelallorder,
    "closeposition": orders.closeposition,
    "orderstatus": books.orderstatus,
    "openposition": books.openposition,
    "orderbook": books.orderbook,
    "tradebook": books.tradebook,
    "positionbook": books.positionbook,
    "holdings": books.holdings,
    "funds": books.funds,
    "quotes": books.quotes,
    "expiry": books.expiry,
    "optionsymbol": books.optionsymbol,
    "ping": books.ping,
}
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
#: the calls that place, change or cancel orders
ORDER_CALLS = frozenset({*orders.FIELDS, "modifyorder"})


@bp.route("/", methods=_METHODS)
def index() -> ResponseReturnValue:
    raise ApiError(404, "name a call: POST /api/v1/<call>; calls: " + ", ".join(CALLS),
                   "no_such_call")


@bp.route("/<path:name>", methods=_METHODS)
def call(name: str) -> ResponseReturnValue:
    handler = CALLS.get(name)
    if handler is None:
        raise ApiError(404, f"there is no call {name!r}; calls: {', '.join(CALLS)}",
                       "no_such_call")
    if request.method != "POST":
        raise ApiError(405, f"{name} is called with POST and a JSON body", "method_not_allowed")
    body, status = handler(_caller(name))
    return jsonify(body), status


def _caller(name: str) -> Caller:
    """Authenticate the call and gather what it needs."""
    services: Services = current_app.extensions["bridge"]
    gate: Gate = current_app.extensions["bridge.webhooks"]
    g.api_door = True
    address = auth.client_address(request.remote_addr or "",
                                  request.headers.get("X-Forwarded-For"),
                                  gate.settings.trusted_proxies)
    g.address = address
    key = gate.settings.api_key.reveal()
    if not key:
        raise ApiError(403, "the REST API is off: set API_KEY in .env (`make run` adds a fresh "
                            "one to an .env without it) and restart the bridge", "api_off")
    _, text, payload = read_body(gate, allow_form=False)
    given = payload.pop("apikey", None)
    readable = given is None or isinstance(given, str)
    who = admit(gate, address, given if isinstance(given, str) else "")
    if given is None:
        fail_auth(gate, who, "no apikey: send \"apikey\": \"<API_KEY>\" in the JSON body")
    if not readable or not auth.secret_matches(str(given), key):
        fail_auth(gate, who, "wrong apikey")
    gate.failures.succeeded(who)
    g.api_door = False
    g.api_order_call = name in ORDER_CALLS
    account = _account(services, payload.pop("account", None))
    masked = intake.masked(intake.masked(text, key), gate.settings.webhook_secret.reveal())
    return Caller(services=services, gate=gate, name=name, payload=payload, text=masked,
                  address=address, account=account, deadline=deadline_of(gate))


def _account(services: Services, given: Any) -> str:
    """The account a call reads or trades: ``account`` when given, else the default."""
    names = list(services.brokers)
    if given is None or given == "":
        return DEFAULT_ACCOUNT if DEFAULT_ACCOUNT in services.brokers else names[0]
    if not isinstance(given, str) or given not in services.brokers:
        raise ApiError(422, f"no account {given!r}; accounts: {', '.join(names)}",
                       "invalid_request", {"account": [f"is not one of {', '.join(names)}"]})
    return given


# --- refusals -----------------------------------------------------------------------------


@bp.errorhandler(BridgeError)
def _refused(error: BridgeError) -> ResponseReturnValue:
    if g.get("api_door") or g.get("api_order_call"):
        _journal_refusal(error)
    return jsonify(error_body(error)), error.http_status


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_: RequestEntityTooLarge) -> ResponseReturnValue:
    return _refused(PayloadTooLarge("the body is too large", {}))


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> ResponseReturnValue:
    code = error.code or 500
    return jsonify({"status": "error", "message": error.description or error.name,
                    "code": (error.name or "error").lower().replace(" ", "_")}), code


def _journal_refusal(error: BridgeError) -> None:
    """A call refused before it was authenticated, or an order call refused before it became
    a signal, is journaled like a refused webhook (the dashboard counts them per source and
    reason); a journal problem never changes the answer."""
    count_signal("api", "rejected")
    try:
        gate: Gate = current_app.extensions["bridge.webhooks"]
        gate.doors.refused("api", g.get("address") or request.remote_addr or "", error.code,
                           error.message)
    except Exception:
        current_app.logger.warning("could not journal a refused API call", exc_info=True)
