"""Kotak Neo's wire format: the only module that knows Kotak's spelling.

Paths, header names, the two-letter ``jData`` keys, response field names, error codes and
status strings all live here, so the rest of the bridge speaks :mod:`bridge.domain` types.
Facts come from ``docs/kotak-neo-api.md`` (section numbers cited inline).

Conventions Kotak enforces and this module guarantees:

* every ``jData`` value is a string; zero is ``"0"``, never ``""`` or ``"0.0"`` (5202/1009);
* market orders go out as ``MKT`` with ``mp`` "0": Kotak applies market protection itself;
* SL-M is refused from API sessions, so it is sent as ``SL`` with a limit one protection band
  beyond the trigger (section 9.4);
* our correlation tag rides in ``ig`` and comes back as ``GuiOrdId``;
* replies are judged by ``stat`` (any casing) and ``stCode``, and an error's text is taken from
  whichever of ``emsg``/``errMsg``/``message``/``desc``/``error[]``/``fault`` carries it.

Where Kotak's official SDK (``kotakneoapi`` 3.0.9) and ``docs/kotak-neo-api.md`` disagree,
the SDK wins, and this module follows it:

* quotes keep ``|`` and ``,`` literal in ``quotes/neosymbol/<seg>|<tok>,...`` (the SDK since
  July 2026); the transport sends the path byte for byte (:mod:`bridge.kotak.http`);
* positions are read at ``portfolio/v2/positions``; ``quick/user/positions`` (sections 4 and
  4.7) is the older path, used only when the new one answers 404;
* place, modify and cancel carry ``Authorization: <access token>`` beside ``Sid`` and ``Auth``;
* calls section 4 does not list: one order (``quick/user/orders/<nOrdNo>``), holdings,
  check-margin, and ``get-client-ip`` on the login host;
* the legacy (1.x) modify restates the order (``tk``, ``es``, ``ts``, ``tt``, ``pc``, ``dd``,
  ``fq``) and the 1.x gateway calls carry the 1.x ``neo-fin-key``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any
from urllib.parse import quote

from bridge.clock import IST
from bridge.domain import (
    BrokerOrder,
    Exchange,
    Funds,
    Holding,
    Instrument,
    InstrumentKind,
    MarginCheck,
    ModifyRequest,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    Trade,
)
from bridge.kotak.errors import ProtocolError, Rejection
from bridge.kotak.protection import protected_limit

# --- segments and codes (section 6) -------------------------------------------------------

SEGMENT_OF: dict[Exchange, str] = {
    Exchange.NSE: "nse_cm",
    Exchange.BSE: "bse_cm",
    Exchange.NFO: "nse_fo",
    Exchange.BFO: "bse_fo",
    Exchange.CDS: "cde_fo",
    Exchange.MCX: "mcx_fo",
}
EXCHANGE_OF: dict[str, Exchange] = {seg: exch for exch, seg in SEGMENT_OF.items()}

_ORDER_TYPE_CODE = {
    OrderType.MARKET: "MKT",
    OrderType.LIMIT: "L",
    OrderType.SL: "SL",
    OrderType.SL_M: "SL-M",
}
_SIDE_CODE = {Side.BUY: "B", Side.SELL: "S"}
_SIDE_OF = {"B": Side.BUY, "S": Side.SELL, "BUY": Side.BUY, "SELL": Side.SELL}

# Section 5: Kotak's free-text ordSt values, reduced. Unknown strings count as still working.
_STATUS_OF: dict[str, OrderStatus] = {
    "put order req received": OrderStatus.PENDING,
    "validation pending": OrderStatus.PENDING,
    "open pending": OrderStatus.PENDING,
    "after market order req received": OrderStatus.PENDING,
    "modify after market order req received": OrderStatus.PENDING,
    "open": OrderStatus.OPEN,
    "modified": OrderStatus.OPEN,
    "modify validation pending": OrderStatus.OPEN,
    "modify pending": OrderStatus.OPEN,
    "cancel pending": OrderStatus.OPEN,
    "trigger pending": OrderStatus.TRIGGER_PENDING,
    "complete": OrderStatus.COMPLETE,
    "traded": OrderStatus.COMPLETE,
    "rejected": OrderStatus.REJECTED,
    "cancelled": OrderStatus.CANCELLED,
    "cancelled after market order": OrderStatus.CANCELLED,
}

ORDER_SOURCE = "NEOTRADEAPI"
FIN_KEY = "neotradeapi"
#: the neo-fin-key the 1.x client sends to the legacy gateway in production
LEGACY_FIN_KEY = "X6Nk8cQhUgGmJ2vBdWw4sfzrz4L5En"
TAG_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,20}$")

# --- endpoints (section 4 path table) -----------------------------------------------------


class Call(Enum):
    """What a request does at Kotak, which decides how failures are read and retried."""

    READ = "read"  # changes nothing: may be retried
    WRITE = "write"  # places, modifies or cancels: never retried, ambiguity is OutcomeUnknown
    LOGIN = "login"  # submits credentials: never retried, failures count toward lock-out


class Credential(Enum):
    """What Kotak authenticates a request with, which decides its headers and host."""

    SESSION = "session"  # the trade session: Sid + Auth (+ the Bearer on the legacy gateway)
    ACCESS_TOKEN = "access token"  # market data: the access token alone, no session needed


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    legacy_path: str  # under the gateway, with ?sId=; "" when the legacy API has no such call
    current_path: str  # under the session's baseUrl
    call: Call
    credential: Credential = Credential.SESSION
    #: the current API's older path for the same call, tried when ``current_path`` is 404
    older_path: str = ""

    def path(self, *, legacy: bool, values: Mapping[str, str] | None = None,
             older: bool = False) -> str:
        """The path for one generation, its ``{placeholders}`` filled from ``values``.

        :raises ProtocolError: the legacy gateway has no such call; nothing can be sent.
        """
        template = self.legacy_path if legacy else (
            self.older_path if older else self.current_path)
        if not template:
            raise ProtocolError(
                f"Kotak's {self.name} API exists only for the current totp login: the legacy "
                "oauth2 gateway (KOTAK_AUTH=oauth2) has none; log in with KOTAK_AUTH=totp")
        return template.format_map(values or {})


PLACE = Endpoint("place", "POST", "Orders/2.0/quick/order/rule/ms/place",
                 "quick/order/rule/ms/place", Call.WRITE)
MODIFY = Endpoint("modify", "POST", "Orders/2.0/quick/order/vr/modify",
                  "quick/order/vr/modify", Call.WRITE)
CANCEL = Endpoint("cancel", "POST", "Orders/2.0/quick/order/cancel",
                  "quick/order/cancel", Call.WRITE)
ORDER_BOOK = Endpoint("order book", "GET", "Orders/2.0/quick/user/orders",
                      "quick/user/orders", Call.READ)
ORDER_HISTORY = Endpoint("order history", "POST", "Orders/2.0/quick/order/history",
                         "quick/order/history", Call.READ)
TRADE_BOOK = Endpoint("trade book", "GET", "Orders/2.0/quick/user/trades",
                      "quick/user/trades", Call.READ)
POSITIONS = Endpoint("positions", "GET", "Orders/2.0/quick/user/positions",
                     "portfolio/v2/positions", Call.READ, older_path="quick/user/positions")
ORDER = Endpoint("order", "GET", "", "quick/user/orders/{order_id}", Call.READ)
HOLDINGS = Endpoint("holdings", "GET", "Portfolio/1.0/portfolio/v1/holdings",
                    "portfolio/v1/holdings", Call.READ)
MARGIN = Endpoint("check-margin", "POST", "Orders/2.0/quick/user/check-margin",
                  "quick/user/check-margin", Call.READ)
LIMITS = Endpoint("limits", "POST", "Orders/2.0/quick/user/limits",
                  "quick/user/limits", Call.READ)
SCRIP_FILES = Endpoint("scrip master file list", "GET", "Files/1.0/masterscrip/v1/file-paths",
                       "script-details/1.0/masterscrip/file-paths", Call.READ,
                       Credential.ACCESS_TOKEN)
# Section 4.11. v1 had no quotes over REST (its quotes came from the HSM websocket).
QUOTES = Endpoint("quotes", "GET", "", "script-details/1.0/quotes/neosymbol/{symbols}/ltp",
                  Call.READ, Credential.ACCESS_TOKEN)

# Login paths (sections 2 and 3).
TOTP_LOGIN_PATH = "login/1.0/tradeApiLogin"
TOTP_VALIDATE_PATH = "login/1.0/tradeApiValidate"
#: on the login host: the address Kotak sees this machine at (the SDK's whatsmyip)
CLIENT_IP_PATH = "login/1.0/get-client-ip"
OAUTH_TOKEN_PATH = "oauth2/token"
LEGACY_VALIDATE_PATH = "login/1.0/login/v2/validate"
LEGACY_OTP_PATH = "login/1.0/login/otp/generate"
SERVER_ID_PARAM = "sId"
JDATA = "jData"

# --- error codes (section 8) --------------------------------------------------------------

#: codes meaning "this session is no good: log in again"
SESSION_CODES = frozenset({"100022", "1003", "10020", "900901", "900902", "900903"})
#: an empty book: not an error
NO_DATA_CODE = "5203"
#: codes of a successful reply
SUCCESS_CODES = frozenset({"200", "1000"})
#: the quotes call's answer when it knows none of the instruments asked for (section 4.11)
QUOTE_UNKNOWN_CODE = "1009"
#: instruments one quotes call may carry (sections 4.11 and 9.1)
QUOTE_BATCH = 50

EXPLANATIONS: dict[str, str] = {
    "100008": "This machine's IP address is not whitelisted for the Trade API: add this "
    "server's static IPv4 in the Neo app under More > Trade API > API Dashboard (or the "
    "access token belongs to another application than the one holding the IP)",
    "1037": "The session was created from a different IP address than the one sending "
    "orders: log in again from this machine",
    "1017": "Kotak does not allow algo orders here (algo order not allowed): check the "
    "account's algo trading permission for this segment",
    "1004": "Insufficient funds for this order",
    "1002": "Kotak found a field invalid",
    "1005": "Kotak reported an internal error",
    "1006": "Kotak could not process the order (it may already be executed)",
    "1007": "Kotak could not read the order body, or the exchange is unreachable",
    "1008": "The market is closed for this segment",
    "1009": "Kotak refused the symbol, quantity or price",
    "1010": "Quantity not allowed or the contract has expired",
    "1021": "The order is already complete or cancelled and cannot be changed",
    "5202": "Kotak found a required field empty or malformed",
    "5204": "An order with this client order id already exists",
    "100021": "Kotak says the access token may not trade (invalid access type): in the Neo "
    "app, open More > Trade API, create the application again with trading rights, and put "
    "its new token in BROKER_API_KEY",
    "32": "Kotak refused the order with \"error from core\": this is what it answers to an "
    "order tag already used today, so nothing was placed",
    "invalid_client": "The consumer key or secret is wrong (they must be those of the "
    "Default Application on the API portal)",
}


def explain(code: str, message: str) -> Rejection:
    return Rejection(code=code, message=message, explanation=EXPLANATIONS.get(code, ""))


def reply_error(body: Any) -> tuple[str, str] | None:
    """Return ``(code, message)`` when a decoded reply reports an error, else ``None``.

    Kotak's envelopes differ by endpoint and generation (section 8), so every known shape is
    read here: ``stat``/``stCode``, ``error[]``, ``fault``, WSO2's top-level ``code``, the OAuth
    ``error`` string and the login ``status: error`` form.
    """
    if not isinstance(body, Mapping):
        return None
    message = error_message(body)
    fault = body.get("fault")
    if isinstance(fault, Mapping):
        return _text(fault.get("code")), _text(fault.get("message")) or message
    errors = body.get("error")
    if isinstance(errors, list) and errors:
        first = errors[0] if isinstance(errors[0], Mapping) else {}
        return _text(first.get("code")), _text(first.get("message")) or message
    if isinstance(errors, str) and errors:
        return errors, _text(body.get("error_description")) or message or errors
    code = _text(body.get("stCode"))
    stat = body.get("stat")
    if code and code not in SUCCESS_CODES:
        return code, message
    if isinstance(stat, str) and stat.strip().lower() != "ok":
        return code, message or stat
    if _text(body.get("status")).lower() == "error":
        return _text(body.get("errorCode")), message
    if "data" not in body and "code" in body and "message" in body:
        return _text(body.get("code")), message
    return None


def error_message(body: Mapping[str, Any]) -> str:
    for key in ("emsg", "errMsg", "message", "desc", "error_description", "description"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    errors = body.get("error")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        return _text(errors[0].get("message"))
    fault = body.get("fault")
    if isinstance(fault, Mapping):
        return _text(fault.get("message"))
    return ""


# --- headers ------------------------------------------------------------------------------


def totp_login_headers(access_token: str) -> dict[str, str]:
    return {"Authorization": access_token, "neo-fin-key": FIN_KEY,
            "Content-Type": "application/json", "Accept": "application/json"}


def totp_validate_headers(access_token: str, sid: str, view_token: str) -> dict[str, str]:
    headers = totp_login_headers(access_token)
    headers.update({"sid": sid, "Auth": view_token})
    return headers


def oauth_headers(basic_credentials: str) -> dict[str, str]:
    return {"Authorization": f"Basic {basic_credentials}", "Content-Type": "application/json",
            "Accept": "application/json"}


def legacy_login_headers(bearer: str, sid: str = "", view_token: str = "") -> dict[str, str]:
    headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json",
               "Accept": "application/json"}
    if sid:
        headers.update({"sid": sid, "Auth": view_token})
    return headers


def trading_headers(token: str, sid: str, *, bearer: str = "",
                    access_token: str = "") -> dict[str, str]:
    """Headers of a trading call: ``Sid`` + ``Auth``; on the legacy gateway the Bearer and the
    1.x fin key; on the current API's order calls the access token, as the SDK sends it."""
    fin_key = LEGACY_FIN_KEY if bearer else FIN_KEY
    headers = {"Sid": sid, "Auth": token, "neo-fin-key": fin_key, "Accept": "application/json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    elif access_token:
        headers["Authorization"] = access_token
    return headers


def client_ip_headers(access_token: str, token: str, sid: str) -> dict[str, str]:
    """get-client-ip is asked with the access token and the trade session, as the SDK does."""
    return {"Authorization": access_token, "Sid": sid, "Auth": token,
            "Accept": "application/json"}


def market_data_headers(access_token: str, bearer: str = "") -> dict[str, str]:
    """Headers of the scrip-master file list and quotes: the access token alone, raw, without
    "Bearer" (sections 3.4, 4.11, 7.1); the legacy gateway wants its OAuth2 Bearer instead."""
    if bearer:
        return {"Authorization": f"Bearer {bearer}", "Accept": "application/json"}
    return {"Authorization": access_token, "Accept": "application/json"}


# --- login bodies and replies -------------------------------------------------------------


def normalise_mobile(mobile: str) -> str:
    """Kotak wants ``+91`` and ten digits."""
    digits = re.sub(r"\D", "", mobile)
    if len(digits) == 12 and digits.startswith("91"):
        digits = digits[2:]
    if len(digits) != 10:
        raise ValueError("mobile number must have 10 digits")
    return f"+91{digits}"


def totp_login_body(mobile: str, ucc: str, totp: str) -> dict[str, str]:
    return {"mobileNumber": normalise_mobile(mobile), "ucc": ucc, "totp": totp}


def mpin_body(mpin: str) -> dict[str, str]:
    return {"mpin": mpin}


def legacy_identity(mobile: str, pan: str) -> dict[str, str]:
    return {"pan": pan.upper()} if pan else {"mobileNumber": normalise_mobile(mobile)}


def oauth_token_body() -> dict[str, str]:
    return {"grant_type": "client_credentials"}


def otp_generate_body(user_id: str) -> dict[str, Any]:
    return {"userId": user_id, "sendEmail": True, "isWhitelisted": True}


def otp_validate_body(user_id: str, otp: str) -> dict[str, str]:
    return {"userId": user_id, "otp": otp}


@dataclass(frozen=True)
class LoginReply:
    token: str
    sid: str
    base_url: str
    server_id: str
    status: str
    kind: str
    ucc: str
    data_center: str


def parse_login_reply(body: Any) -> LoginReply:
    """Read the ``data`` object of a login step; raise when the token or sid is missing."""
    data = body.get("data") if isinstance(body, Mapping) else None
    if not isinstance(data, Mapping):
        raise ProtocolError("Kotak's login reply has no data object")
    token, sid = _text(data.get("token")), _text(data.get("sid"))
    if not token or not sid:
        raise ProtocolError("Kotak's login reply lacks a token or sid")
    return LoginReply(
        token=token,
        sid=sid,
        base_url=_text(data.get("baseUrl")),
        server_id=_text(data.get("hsServerId")),
        status=_text(data.get("status")),
        kind=_text(data.get("kType")),
        ucc=_text(data.get("ucc")),
        data_center=_text(data.get("dataCenter")),
    )


@dataclass(frozen=True)
class OAuthReply:
    access_token: str
    expires_in: int


def parse_oauth_reply(body: Any) -> OAuthReply:
    if not isinstance(body, Mapping) or not _text(body.get("access_token")):
        raise ProtocolError("Kotak's OAuth2 reply has no access_token")
    try:
        expires_in = int(body.get("expires_in", 3600))
    except (TypeError, ValueError) as exc:
        raise ProtocolError("Kotak's OAuth2 reply has a bad expires_in") from exc
    return OAuthReply(access_token=_text(body["access_token"]), expires_in=expires_in)


# --- order bodies -------------------------------------------------------------------------


def format_number(value: Decimal | int) -> str:
    """Spell a number as Kotak accepts it: plain digits, no exponent, no trailing zeros."""
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


def _wire_prices(order_type: OrderType, side: Side, instrument: Instrument,
                 price: Decimal | None, trigger: Decimal | None) -> tuple[str, str, str]:
    """Return ``(pt, pr, tp)`` for an order, applying the SL-M and MKT rules."""
    if order_type.needs_price and (price is None or price <= 0):
        raise ValueError(f"{order_type} orders need a positive price")
    if order_type.needs_trigger and (trigger is None or trigger <= 0):
        raise ValueError(f"{order_type} orders need a positive trigger price")
    if order_type is OrderType.SL_M:
        assert trigger is not None
        limit = protected_limit(instrument, side, trigger)
        return "SL", format_number(limit), format_number(trigger)
    pr = format_number(price) if order_type.needs_price and price is not None else "0"
    tp = format_number(trigger) if order_type.needs_trigger and trigger is not None else "0"
    return _ORDER_TYPE_CODE[order_type], pr, tp


def place_form(order: OrderRequest) -> dict[str, str]:
    """Return the form body of a place-order call (section 4.1)."""
    if order.quantity <= 0:
        raise ValueError("quantity must be positive")
    if order.tag and not TAG_PATTERN.match(order.tag):
        raise ValueError("tag must be 1-20 letters, digits, '-' or '_'")
    pt, pr, tp = _wire_prices(order.order_type, order.side, order.instrument, order.price,
                              order.trigger_price)
    data = {
        "am": "YES" if order.amo else "NO",
        "dq": format_number(order.disclosed_quantity),
        "es": SEGMENT_OF[order.instrument.exchange],
        "mp": "0",
        "pc": order.product.value,
        "pr": pr,
        "pt": pt,
        "qt": format_number(order.quantity),
        "rt": order.validity.value,
        "tp": tp,
        "ts": order.instrument.trading_symbol,
        "tt": _SIDE_CODE[order.side],
        "os": ORDER_SOURCE,
    }
    if order.tag:
        data["ig"] = order.tag
    return _jdata(data)


def modify_form(change: ModifyRequest, *, legacy: bool = False) -> dict[str, str]:
    """Return the form body of a modify call: the minimal 2026 form (section 4.2), or on the
    legacy gateway the 1.x client's full form, which restates the order."""
    if change.quantity <= 0:
        raise ValueError("quantity must be positive")
    pt, pr, tp = _wire_prices(change.order_type, change.side, change.instrument, change.price,
                              change.trigger_price)
    if legacy:
        if change.product is None:
            raise ValueError("a legacy modify restates the order's product")
        return _jdata({
            "tk": change.instrument.token,
            "mp": "0",
            "pc": change.product.value,
            "dd": "NA",
            "dq": format_number(change.disclosed_quantity),
            "vd": change.validity.value,
            "ts": change.instrument.trading_symbol,
            "tt": _SIDE_CODE[change.side],
            "pr": pr,
            "pt": pt,
            "fq": format_number(change.filled_quantity),
            "tp": tp,
            "qt": format_number(change.quantity),
            "no": change.order_id,
            "es": SEGMENT_OF[change.instrument.exchange],
            "am": "YES" if change.amo else "NO",
        })
    return _jdata({
        "am": "YES" if change.amo else "NO",
        "dq": format_number(change.disclosed_quantity),
        "mp": "0",
        "no": change.order_id,
        "pr": pr,
        "pt": pt,
        "qt": format_number(change.quantity),
        "tp": tp,
        "vd": change.validity.value,
        "os": ORDER_SOURCE,
    })


def cancel_form(order_id: str, *, amo: bool = False, trading_symbol: str = "") -> dict[str, str]:
    data = {"on": order_id, "am": "YES" if amo else "NO"}
    if trading_symbol:
        data["ts"] = trading_symbol
    return _jdata(data)


def history_form(order_id: str) -> dict[str, str]:
    return _jdata({"nOrdNo": order_id})


def limits_form() -> dict[str, str]:
    return _jdata({"seg": "ALL", "exch": "ALL", "prod": "ALL"})


def _jdata(data: Mapping[str, str]) -> dict[str, str]:
    return {JDATA: json.dumps(data, separators=(",", ":"))}


# --- replies to trading calls -------------------------------------------------------------


def parse_order_id(body: Any) -> str:
    order_id = _text(body.get("nOrdNo")) if isinstance(body, Mapping) else ""
    if not order_id:
        raise ProtocolError("Kotak accepted the request but sent no order number")
    return order_id


def data_rows(body: Any, what: str) -> list[Mapping[str, Any]]:
    rows = body.get("data") if isinstance(body, Mapping) else None
    if rows is None:
        return []
    if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
        raise ProtocolError(f"Kotak's {what} is not a list of rows")
    return rows


def parse_order(row: Mapping[str, Any]) -> BrokerOrder:
    raw_status = _text(row.get("ordSt")).strip().lower()
    try:
        return BrokerOrder(
            order_id=_text(row.get("nOrdNo")),
            status=_STATUS_OF.get(raw_status, OrderStatus.OPEN),
            broker_status=raw_status,
            exchange=_exchange(row.get("exSeg")),
            trading_symbol=_text(row.get("trdSym")),
            side=_side(row.get("trnsTp")),
            product=_text(row.get("prod")),
            order_type=_text(row.get("prcTp")),
            quantity=_int(row.get("qty")),
            filled_quantity=_int(row.get("fldQty")),
            pending_quantity=_int(row.get("unFldSz")),
            cancelled_quantity=_int(row.get("cnlQty")),
            price=_decimal(row.get("prc")),
            average_price=_decimal(row.get("avgPrc")),
            trigger_price=_decimal(row.get("trgPrc")),
            validity=_text(row.get("vldt") or row.get("ordDur")),
            tag=_text(row.get("GuiOrdId")),
            rejection_reason=_reason(row.get("rejRsn")),
            exchange_order_id=_text(row.get("exOrdId") or row.get("exchOrdId")),
            updated_at=_timestamp(row.get("hsUpTm") or row.get("flDtTm") or row.get("ordDtTm")),
        )
    except (KeyError, ValueError, InvalidOperation) as exc:
        raise ProtocolError(f"Kotak sent an order row we cannot read: {exc}") from exc


def parse_trade(row: Mapping[str, Any]) -> Trade:
    try:
        filled = _timestamp(f"{_text(row.get('flDt'))} {_text(row.get('flTm'))}".strip())
        return Trade(
            order_id=_text(row.get("nOrdNo")),
            fill_id=_text(row.get("flId")),
            exchange=_exchange(row.get("exSeg")),
            trading_symbol=_text(row.get("trdSym")),
            side=_side(row.get("trnsTp")),
            product=_text(row.get("prod")),
            quantity=_int(row.get("fldQty")),
            price=_decimal(row.get("avgPrc")),
            filled_at=filled,
            tag=_text(row.get("GuiOrdId")),
        )
    except (KeyError, ValueError, InvalidOperation) as exc:
        raise ProtocolError(f"Kotak sent a trade row we cannot read: {exc}") from exc


def parse_position(row: Mapping[str, Any]) -> Position:
    try:
        multiplier = _decimal(row.get("multiplier"), default=Decimal(1))
        if multiplier <= 0:
            multiplier = Decimal(1)
        for num, den in (("genNum", "genDen"), ("prcNum", "prcDen")):
            n = _decimal(row.get(num), default=Decimal(1))
            d = _decimal(row.get(den), default=Decimal(1))
            if n > 0 and d > 0:
                multiplier *= n / d
        return Position(
            exchange=_exchange(row.get("exSeg")),
            trading_symbol=_text(row.get("trdSym")),
            symbol=_text(row.get("sym")),
            token=_text(row.get("tok")),
            product=_text(row.get("prod")),
            day_buy_quantity=_int(row.get("flBuyQty")),
            day_sell_quantity=_int(row.get("flSellQty")),
            carry_buy_quantity=_int(row.get("cfBuyQty")),
            carry_sell_quantity=_int(row.get("cfSellQty")),
            buy_amount=_decimal(row.get("buyAmt")) + _decimal(row.get("cfBuyAmt")),
            sell_amount=_decimal(row.get("sellAmt")) + _decimal(row.get("cfSellAmt")),
            lot_size=_int(row.get("lotSz"), default=1) or 1,
            multiplier=multiplier,
        )
    except (KeyError, ValueError, InvalidOperation) as exc:
        raise ProtocolError(f"Kotak sent a position row we cannot read: {exc}") from exc


def parse_funds(body: Any) -> Funds:
    """Read the flat limits reply (section 4.9).

    Cash is computed as OpenAlgo does (collateral value + pay-in - pay-out + collateral);
    ``Net`` is what Kotak leaves free after the margin used (38.19 - 18.78 = 19.41 in the
    documented sample).
    """
    if not isinstance(body, Mapping):
        raise ProtocolError("Kotak's limits reply is not an object")
    try:
        cash = (_decimal(body.get("CollateralValue")) + _decimal(body.get("RmsPayInAmt"))
                - _decimal(body.get("RmsPayOutAmt")) + _decimal(body.get("Collateral")))
        return Funds(
            cash=cash,
            margin_used=_decimal(body.get("MarginUsed")),
            available=_decimal(body.get("Net")),
            collateral=_decimal(body.get("Collateral")),
            realised_pnl=_decimal(body.get("RealizedMtomPrsnt")),
            unrealised_pnl=_decimal(body.get("UnrealizedMtomPrsnt")),
        )
    except (ValueError, InvalidOperation) as exc:
        raise ProtocolError(f"Kotak sent limits we cannot read: {exc}") from exc


def parse_holdings(body: Any) -> list[Holding]:
    """Read the holdings reply (section 4.10): ``data`` rows, numbers as JSON numbers."""
    holdings: list[Holding] = []
    for row in data_rows(body, "holdings"):
        try:
            quantity = _int(row.get("quantity"))
            holdings.append(Holding(
                exchange=_exchange(row.get("exchangeSegment")),
                symbol=_text(row.get("displaySymbol") or row.get("symbol")),
                token=_text(row.get("exchangeIdentifier")),
                quantity=quantity,
                sellable_quantity=_int(row.get("sellableQuantity"), default=quantity),
                average_price=_decimal(row.get("averagePrice")),
                last_price=_decimal(row.get("closingPrice")),
                market_value=_decimal(row.get("mktValue")),
            ))
        except (KeyError, ValueError, InvalidOperation) as exc:
            raise ProtocolError(f"Kotak sent a holding we cannot read: {exc}") from exc
    return holdings


def margin_form(order: OrderRequest, reference_price: Decimal | None = None) -> dict[str, str]:
    """The check-margin body for an order (section 4.8): the instrument by token, a market
    order valued at ``reference_price`` when one is known."""
    price = order.price if order.order_type.needs_price else reference_price
    trigger = order.trigger_price if order.order_type.needs_trigger else None
    return _jdata({
        "exSeg": SEGMENT_OF[order.instrument.exchange],
        "prc": format_number(price) if price else "0",
        "prcTp": _ORDER_TYPE_CODE[order.order_type],
        "prod": order.product.value,
        "qty": format_number(order.quantity),
        "tok": order.instrument.token,
        "trnsTp": _SIDE_CODE[order.side],
        "trgPrc": format_number(trigger) if trigger else "0",
    })


def parse_margin(body: Any) -> MarginCheck:
    if not isinstance(body, Mapping):
        raise ProtocolError("Kotak's check-margin reply is not an object")
    try:
        return MarginCheck(
            required=_decimal(body.get("ordMrgn") or body.get("reqdMrgn")),
            available=_decimal(body.get("avlMrgn") or body.get("avlCash")),
            shortfall=_decimal(body.get("insufFund")),
            accepted=_text(body.get("rmsVldtd")).upper() == "OK",
        )
    except (ValueError, InvalidOperation) as exc:
        raise ProtocolError(f"Kotak sent a margin check we cannot read: {exc}") from exc


def parse_client_ip(body: Any) -> str:
    """Read get-client-ip: ``{"data": [{"ip": ..., "time": ...}], "stCode": 1000}``."""
    rows = body.get("data") if isinstance(body, Mapping) else None
    first = rows[0] if isinstance(rows, list) and rows else None
    ip = _text(first.get("ip")) if isinstance(first, Mapping) else ""
    if not ip:
        raise ProtocolError("Kotak's get-client-ip reply carries no address")
    return ip


@dataclass(frozen=True)
class ScripFiles:
    base_folder: str
    urls: tuple[str, ...]


def parse_scrip_files(body: Any) -> ScripFiles:
    data = body.get("data", body) if isinstance(body, Mapping) else None
    paths = data.get("filesPaths") if isinstance(data, Mapping) else None
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ProtocolError("Kotak's scrip-master file list has no filesPaths")
    return ScripFiles(base_folder=_text(data.get("baseFolder")) if data else "",
                      urls=tuple(paths))


# --- quotes (section 4.11) ----------------------------------------------------------------


def quote_key(instrument: Instrument) -> str:
    """What Kotak's quotes call names an instrument by: the token, but an index by its name."""
    if instrument.kind is InstrumentKind.INDEX:
        return instrument.trading_symbol
    return instrument.token


def quote_symbols(instruments: Sequence[Instrument]) -> str:
    """The ``segment|key,segment|key`` list of a quotes path, each part URL-encoded.

    ``|`` and ``,`` stay literal: Kotak splits the list on them as sent and reads ``%7C`` as
    part of a name (the SDK's ``services/quotes.py`` since July 2026). The transport sends
    this path byte for byte (:mod:`bridge.kotak.http`).
    """
    if not 0 < len(instruments) <= QUOTE_BATCH:
        raise ValueError(f"a quotes call carries 1 to {QUOTE_BATCH} instruments")
    return ",".join(f"{quote(SEGMENT_OF[i.exchange], safe='')}|{quote(quote_key(i), safe='')}"
                    for i in instruments)


@dataclass(frozen=True)
class LastPrice:
    """One element of the quotes reply, as far as the last traded price goes."""

    exchange: Exchange
    token: str  # exchange_token
    display_symbol: str
    price: Decimal


@dataclass(frozen=True)
class QuotedPrice:
    """A last traded price with the time Kotak last updated it (``lstup_time``)."""

    exchange: Exchange
    token: str  # exchange_token
    display_symbol: str
    price: Decimal
    updated_at: datetime | None  # None when Kotak sent no usable time


#: ``lstup_time`` values above this are read as milliseconds (seconds would be year 5138)
_MILLISECONDS_FROM = 10**11


def parse_last_prices(body: Any) -> list[LastPrice]:
    """Read the quotes reply: a bare JSON array, every number a string (``"801.6000"``)."""
    return [LastPrice(row.exchange, row.token, row.display_symbol, row.price)
            for row in parse_quoted_prices(body)]


def parse_quoted_prices(body: Any) -> list[QuotedPrice]:
    """Read the quotes reply with each row's update time.

    ``lstup_time`` is Unix seconds in Kotak's sample; a missing, zero or unreadable time is
    None rather than an error, so a reply whose prices are good is never refused over it.
    """
    if not isinstance(body, list) or not all(isinstance(row, Mapping) for row in body):
        raise ProtocolError("Kotak's quotes reply is not a list of quotes")
    prices: list[QuotedPrice] = []
    for row in body:
        try:
            if not _text(row.get("ltp")):
                raise ValueError("no ltp")
            prices.append(QuotedPrice(
                exchange=_exchange(row.get("exchange")),
                token=_text(row.get("exchange_token")),
                display_symbol=_text(row.get("display_symbol")),
                price=_decimal(row.get("ltp")),
                updated_at=_update_time(row.get("lstup_time")),
            ))
        except (ValueError, InvalidOperation) as exc:
            raise ProtocolError(f"Kotak sent a quote we cannot read: {exc}") from exc
    return prices


def _update_time(value: Any) -> datetime | None:
    try:
        stamp = _int(value)
    except (ValueError, InvalidOperation):
        return None
    if stamp <= 0:
        return None
    if stamp >= _MILLISECONDS_FROM:
        stamp //= 1000
    try:
        return datetime.fromtimestamp(stamp, IST)
    except (OverflowError, OSError, ValueError):
        return None


# --- value readers ------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    return str(value).strip() if not isinstance(value, str) else value.strip()


def _int(value: Any, default: int = 0) -> int:
    if value is None or value == "" or value == "NA":
        return default
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, int):
        return value
    number = Decimal(str(value).strip())
    if number != number.to_integral_value():
        raise ValueError(f"not a whole quantity: {value!r}")
    return int(number)


def _decimal(value: Any, default: Decimal = Decimal(0)) -> Decimal:
    if value is None or value == "" or value == "NA" or value == "--":
        return default
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    number = Decimal(str(value).strip())
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return number


def _exchange(segment: Any) -> Exchange:
    text = _text(segment).lower()
    if text not in EXCHANGE_OF:
        raise ValueError(f"unknown exchange segment {segment!r}")
    return EXCHANGE_OF[text]


def _side(code: Any) -> Side:
    text = _text(code).upper()
    if text not in _SIDE_OF:
        raise ValueError(f"unknown transaction type {code!r}")
    return _SIDE_OF[text]


def _reason(value: Any) -> str:
    text = _text(value)
    return "" if text in ("--", "NA") else text


_TIME_FORMATS = ("%d-%b-%Y %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%d-%b-%Y")


def _timestamp(value: Any) -> datetime | None:
    text = _text(value)
    if not text or text == "NA":
        return None
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=IST)
        except ValueError:
            continue
    return None
