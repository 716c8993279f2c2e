"""The sandbox answers Kotak's older official client, neo_api_client 1.x, the way it needs.

neo_api_client 1.x (GitHub ``Kotak-Neo/kotak-neo-api``, the OAuth2 login generation) cannot
be installed here, so these tests do not run it: they reproduce, with ``requests``, the exact
HTTP requests its calls make in the ``prod`` environment (method, host, path, ``?sId=`` query,
headers, and the JSON or ``jData`` form body with the same keys, key order and nulls), and
check two things for each call:

* what reached the sandbox, from its request log (so the reproduction is what was asserted);
* that the answer has the shape the 1.x client reads without an error: the fields it indexes
  with ``[]`` or ``.get`` on a nested object (``data.token``, the trade book's ``tid``, the
  order-book fields modify-by-id copies, the scrip-master ``filesPaths`` and CSV columns).

The rules reproduced, from the 1.x source: ``oauth2/token`` goes to Kotak's napi host, every
other call to the gw-napi gateway; the client adds ``Content-Type: application/json`` to any
request that names no content type, GETs included; trading calls carry ``Authorization:
Bearer``, ``Sid``, ``Auth`` and ``neo-fin-key: neotradeapi`` (holdings and logout no
fin key, the scrip-master file list the Bearer alone); JSON bodies are ``json.dumps`` with its
default separators; form bodies are one field ``jData`` holding ``json.dumps`` of the dict,
with ``None`` sent as ``null``.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
import requests

from bridge.clock import ManualClock
from bridge.kotak.sandbox import Sandbox, SandboxAccount, SandboxConfig, SandboxServer
from bridge.kotak.sandbox.app import RequestRecord
from bridge.kotak.sandbox.hosts import Role

FIN_KEY = "neotradeapi"  # settings.live_fin_key: what 1.x sends in prod, whatever it was given
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
TIMEOUT = 5.0
TERMINAL = ("rejected", "cancelled", "complete", "traded")  # 1.x's list, compared exactly

# The 1.x PROD_URL paths (settings.py), relative to the gateway.
VALIDATE = "login/1.0/login/v2/validate"
OTP_GENERATE = "login/1.0/login/otp/generate"
LOGOUT = "login/1.0/logout"
PLACE = "Orders/2.0/quick/order/rule/ms/place"
CANCEL = "Orders/2.0/quick/order/cancel"
MODIFY = "Orders/2.0/quick/order/vr/modify"
HISTORY = "Orders/2.0/quick/order/history"
ORDER_BOOK = "Orders/2.0/quick/user/orders"
TRADES = "Orders/2.0/quick/user/trades"
POSITIONS = "Orders/2.0/quick/user/positions"
HOLDINGS = "Portfolio/1.0/portfolio/v1/holdings"
MARGIN = "Orders/2.0/quick/user/check-margin"
SCRIP_MASTER = "Files/1.0/masterscrip/v1/file-paths"
LIMITS = "Orders/2.0/quick/user/limits"

# The fields of an order-book row the 1.x client reads (cancel isVerify, modify by id).
ORDER_ROW_FIELDS = ("nOrdNo", "ordSt", "rejRsn", "trdSym", "tok", "prod", "trnsTp", "exSeg",
                    "trgPrc")


# --- the 1.x client's requests, reproduced ---------------------------------------------------


@dataclass
class LegacyClient:
    """What a 1.x ``NeoAPI`` keeps in its configuration, and the requests it makes."""

    server: SandboxServer
    consumer_key: str
    consumer_secret: str
    access_token: str = ""
    login_params: dict[str, Any] = field(default_factory=dict)
    view_token: str = ""
    view_sid: str = ""
    user_id: str = ""
    edit_token: str = ""
    edit_sid: str = ""
    edit_rid: str = ""
    server_id: str = ""

    # -- transport, as the working rest.py does it

    def post_json(self, url: str, headers: Mapping[str, str],
                  body: Mapping[str, Any]) -> requests.Response:
        return requests.post(url, data=json.dumps(body),
                             headers={**headers, "Content-Type": JSON}, timeout=TIMEOUT)

    def post_form(self, url: str, headers: Mapping[str, str],
                  body: Mapping[str, Any] | None) -> requests.Response:
        form = {"jData": json.dumps(body)} if body is not None else {}
        return requests.post(url, data=form, headers={**headers, "Content-Type": FORM},
                             timeout=TIMEOUT)

    def get(self, url: str, headers: Mapping[str, str]) -> requests.Response:
        return requests.get(url, headers={**headers, "Content-Type": JSON}, timeout=TIMEOUT)

    # -- addresses and headers

    def gateway(self, path: str, with_server_id: bool = True) -> str:
        url = f"{self.server.gateway_url}/{path}"
        return f"{url}?{urlencode({'sId': self.server_id})}" if with_server_id else url

    def trading_headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}", "Sid": self.edit_sid,
                "Auth": self.edit_token, "neo-fin-key": FIN_KEY, **extra}

    # -- login

    def session_init(self) -> requests.Response:
        """``NeoAPI(consumer_key=..., consumer_secret=...)``: the OAuth2 token."""
        basic = base64.b64encode(f"{self.consumer_key}:{self.consumer_secret}"
                                 .encode("ascii")).decode("ascii")
        reply = self.post_json(f"{self.server.oauth_url}/oauth2/token",
                               {"Authorization": f"Basic {basic}"},
                               {"grant_type": "client_credentials"})
        if reply.ok:
            self.access_token = reply.json().get("access_token")
        return reply

    def login(self, *, mobile: str = "", pan: str = "", userid: str = "", password: str = "",
              mpin: str = "") -> tuple[requests.Response, requests.Response]:
        """``login()``: the view token (call A), then OTP generate (call B)."""
        params: dict[str, Any]
        if mobile:
            params = {"mobileNumber": "+91" + mobile if len(mobile) == 10 else mobile}
        elif pan:
            params = {"pan": pan.upper()}
        else:
            params = {"userid": userid}
        if mpin:
            params["mpin"] = mpin
        else:
            params["password"] = password
        self.login_params = params
        view = self.post_json(self.gateway(VALIDATE, with_server_id=False),
                              {"Authorization": f"Bearer {self.access_token}"}, params)
        data = view.json()["data"]  # 1.x: reply.get("data").get(...), AttributeError if absent
        self.view_token, self.view_sid = data.get("token"), data.get("sid")
        self.user_id = jwt_claims(self.view_token)["sub"]
        otp = self.post_json(self.gateway(OTP_GENERATE, with_server_id=False),
                             {"Authorization": f"Bearer {self.access_token}"},
                             {"userId": self.user_id, "sendEmail": True, "isWhitelisted": True})
        return view, otp

    def two_factor_body(self, otp: str) -> dict[str, str]:
        params = self.login_params
        if "mobileNumber" in params and len(otp) == 6:
            return {"mobileNumber": params["mobileNumber"], "mpin": otp}
        if "pan" in params and len(otp) == 6:
            return {"pan": params["pan"], "mpin": otp}
        return {"userId": self.user_id, "otp": otp}

    def session_2fa(self, otp: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.access_token}", "sid": self.view_sid,
                   "Auth": self.view_token}
        reply = self.post_json(self.gateway(VALIDATE, with_server_id=False), headers,
                               self.two_factor_body(otp))
        body = reply.json()
        if "error" not in body:
            data = body["data"]
            self.edit_token, self.edit_sid = data.get("token"), data.get("sid")
            self.edit_rid, self.server_id = data.get("rid"), data.get("hsServerId")
        return reply

    def logout(self) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.access_token}", "Sid": self.edit_sid,
                   "Auth": self.edit_token, "accept": JSON}
        return self.post_form(self.gateway(LOGOUT, with_server_id=False), headers, None)

    # -- orders and reports

    def place_order(self, *, es: str, pc: str, pr: str, pt: str, qt: str, ts: str, tt: str,
                    rt: str = "DAY", tp: str = "0", tag: str | None = None) -> requests.Response:
        body = {"am": "NO", "dq": "0", "es": es, "mp": "0", "pc": pc, "pf": "N", "pr": pr,
                "pt": pt, "qt": qt, "rt": rt, "tp": tp, "ts": ts, "tt": tt, "ig": tag}
        return self.post_form(self.gateway(PLACE), self.trading_headers(), body)

    def order_report(self) -> requests.Response:
        return self.get(self.gateway(ORDER_BOOK), self.trading_headers(accept=JSON))

    def cancel_order(self, order_id: str) -> requests.Response:
        return self.post_form(self.gateway(CANCEL), self.trading_headers(),
                              {"on": order_id, "am": "NO"})

    def modify_order(self, body: Mapping[str, Any]) -> requests.Response:
        return self.post_form(self.gateway(MODIFY), self.trading_headers(), body)

    def order_history(self, order_id: str) -> requests.Response:
        return self.post_form(self.gateway(HISTORY), self.trading_headers(accept=JSON),
                              {"nOrdNo": order_id})

    def trade_report(self) -> requests.Response:
        return self.get(self.gateway(TRADES), self.trading_headers(accept=JSON))

    def positions(self) -> requests.Response:
        return self.get(self.gateway(POSITIONS), self.trading_headers(accept=JSON))

    def holdings(self) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.access_token}", "Sid": self.edit_sid,
                   "Auth": self.edit_token, "accept": "*/*"}
        return self.get(self.gateway(HOLDINGS), headers)

    def limits(self) -> requests.Response:
        return self.post_form(self.gateway(LIMITS), self.trading_headers(accept=JSON),
                              {"seg": "ALL", "exch": "ALL", "prod": "ALL"})

    def margin_required(self, body: Mapping[str, Any]) -> requests.Response:
        return self.post_form(self.gateway(MARGIN), self.trading_headers(accept=JSON), body)

    def scrip_master_paths(self) -> requests.Response:
        return self.get(self.gateway(SCRIP_MASTER, with_server_id=False),
                        {"Authorization": f"Bearer {self.access_token}"})


def jwt_claims(token: str) -> dict[str, Any]:
    """What ``jwt.decode(token, options={"verify_signature": False})`` gives 1.x: the
    claims of a three-part token whose header and payload are base64url JSON objects."""

    def part(text: str) -> Any:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))

    header, payload, signature = token.split(".")
    base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    assert isinstance(part(header), dict) and "alg" in part(header)
    claims = part(payload)
    assert isinstance(claims, dict)
    return claims


def client_for(server: SandboxServer, account: SandboxAccount) -> LegacyClient:
    return LegacyClient(server, account.consumer_key, account.consumer_secret)


def log_in(server: SandboxServer, account: SandboxAccount) -> LegacyClient:
    """The documented 1.x sequence: session init, login(mobile, password), session_2fa(MPIN)."""
    client = client_for(server, account)
    assert client.session_init().status_code == 200
    view, otp = client.login(mobile=account.mobile, password=account.password)
    assert view.status_code == 200 and otp.ok
    assert client.session_2fa(account.mpin).status_code == 200
    assert client.edit_token and client.edit_sid and client.server_id
    return client


# --- what reached the sandbox ------------------------------------------------------------------


def last(sandbox: Sandbox, endpoint: str = "") -> RequestRecord:
    records = sandbox.requests.snapshot(endpoint)
    assert records, f"no {endpoint or 'request'} reached the sandbox"
    return records[-1]


def headers_of(record: RequestRecord) -> dict[str, str]:
    return {name.lower(): value for name, value in record.headers}


def assert_json_body(record: RequestRecord, expected: Mapping[str, Any]) -> None:
    """The body is ``json.dumps`` of the dict: same keys, order, values and separators."""
    assert record.body == json.dumps(expected).encode()


def assert_jdata(record: RequestRecord, expected: Mapping[str, Any]) -> None:
    """The body is one form field ``jData`` holding ``json.dumps`` of the dict.

    The sandbox logs the decoded ``jData`` value; its raw ``body`` of a form POST is empty
    (the form was parsed from the stream first), so the wire form is checked by its length
    and, when the log has it, its bytes.
    """
    wire = urlencode({"jData": json.dumps(expected)})
    assert record.jdata == json.dumps(expected)
    assert list(json.loads(record.jdata)) == list(expected)
    assert headers_of(record)["content-length"] == str(len(wire))
    if record.body:
        form = parse_qs(record.body.decode("ascii"), keep_blank_values=True)
        assert form == {"jData": [json.dumps(expected)]}


def assert_gateway_call(record: RequestRecord, client: LegacyClient, method: str, path: str,
                        content_type: str, *, accept: str | None = None, fin_key: bool = True,
                        query: bool = True) -> dict[str, str]:
    """Method, host, target and session headers of one of 1.x's gateway calls."""
    assert record.role == Role.GATEWAY.value
    assert record.method == method
    assert record.target == (f"/{path}?sId={client.server_id}" if query else f"/{path}")
    headers = headers_of(record)
    assert headers["authorization"] == f"Bearer {client.access_token}"
    assert headers["sid"] == client.edit_sid
    assert headers["auth"] == client.edit_token
    assert headers["content-type"] == content_type
    assert (headers.get("neo-fin-key") == FIN_KEY) if fin_key else "neo-fin-key" not in headers
    if accept is not None:
        assert headers["accept"] == accept
    return headers


def book_row(client: LegacyClient, order_id: str) -> dict[str, Any]:
    """The order-book row 1.x matches: ``item["nOrdNo"] == order_id``, string against string."""
    reply = client.order_report().json()
    return next(item for item in reply["data"] if item["nOrdNo"] == order_id)


def place_limit_buy(client: LegacyClient, price: str = "800", quantity: str = "1",
                    tag: str | None = None) -> str:
    """An SBIN limit buy below the market: it stays open."""
    reply = client.place_order(es="nse_cm", pc="MIS", pr=price, pt="L", qt=quantity,
                               ts="SBIN-EQ", tt="B", tag=tag)
    body = reply.json()
    assert body["stat"] == "Ok", body
    order_id = body["nOrdNo"]
    assert isinstance(order_id, str)
    return order_id


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def sandbox(account: SandboxAccount, manual_clock: ManualClock) -> Sandbox:
    """The shared sandbox, on a clock that moves only when a test says so."""
    return Sandbox([account], config=SandboxConfig(order_rate=0), clock=manual_clock)


@pytest.fixture
def legacy(server: SandboxServer, account: SandboxAccount) -> Iterator[LegacyClient]:
    """A 1.x client logged in with mobile, password and MPIN; the log starts empty."""
    client = log_in(server, account)
    server.sandbox.requests.clear()
    yield client


# --- login -----------------------------------------------------------------------------------


def test_session_init_gets_the_oauth_token_from_the_napi_host(
        server: SandboxServer, sandbox: Sandbox, account: SandboxAccount) -> None:
    client = client_for(server, account)

    reply = client.session_init()

    assert reply.status_code == 200
    assert isinstance(reply.json()["access_token"], str) and client.access_token
    record = last(sandbox, "oauth")
    assert record.role == Role.OAUTH.value
    assert (record.method, record.target) == ("POST", "/oauth2/token")
    headers = headers_of(record)
    secret = f"{account.consumer_key}:{account.consumer_secret}".encode("ascii")
    assert headers["authorization"] == "Basic " + base64.b64encode(secret).decode("ascii")
    assert headers["content-type"] == JSON
    assert_json_body(record, {"grant_type": "client_credentials"})


@pytest.mark.parametrize("identity", ["mobile", "pan", "userid", "mobile+mpin"])
def test_login_gets_a_view_token_whose_sub_generates_the_otp(
        server: SandboxServer, sandbox: Sandbox, account: SandboxAccount, identity: str) -> None:
    client = client_for(server, account)
    client.session_init()
    given: dict[str, str] = {
        "mobile": {"mobile": account.mobile, "password": account.password},
        "pan": {"pan": account.pan.lower(), "password": account.password},
        "userid": {"userid": account.ucc, "password": account.password},
        # the later 1.x (6eb165fa) sends the MPIN in place of the password when given one
        "mobile+mpin": {"mobile": account.mobile, "mpin": account.mpin},
    }[identity]

    view, otp = client.login(**given)

    data = view.json()["data"]
    assert view.status_code == 200 and "error" not in view.json()
    assert isinstance(data["token"], str) and isinstance(data["sid"], str)
    assert jwt_claims(data["token"])["sub"]
    assert otp.ok, otp.text
    validate, generate = last(sandbox, "validate"), last(sandbox, "otp")
    for record in (validate, generate):
        assert record.role == Role.GATEWAY.value and record.method == "POST"
        headers = headers_of(record)
        assert headers["authorization"] == f"Bearer {client.access_token}"
        assert headers["content-type"] == JSON
        assert "sid" not in headers and "auth" not in headers
    assert validate.target == f"/{VALIDATE}"
    assert_json_body(validate, client.login_params)
    expected_identity = {"mobile": {"mobileNumber": "+91" + account.mobile},
                         "mobile+mpin": {"mobileNumber": "+91" + account.mobile},
                         "pan": {"pan": account.pan.upper()},
                         "userid": {"userid": account.ucc}}[identity]
    assert expected_identity.items() <= client.login_params.items()
    assert generate.target == f"/{OTP_GENERATE}"
    assert_json_body(generate, {"userId": client.user_id, "sendEmail": True,
                                "isWhitelisted": True})


def test_session_2fa_with_the_mpin_gives_the_trade_session(
        server: SandboxServer, sandbox: Sandbox, account: SandboxAccount) -> None:
    client = client_for(server, account)
    client.session_init()
    client.login(mobile=account.mobile, password=account.password)

    reply = client.session_2fa(account.mpin)

    assert reply.status_code == 200
    body = reply.json()
    assert "error" not in body
    for key in ("token", "sid", "rid", "hsServerId"):
        assert isinstance(body["data"][key], str) and body["data"][key], key
    assert client.server_id == body["data"]["hsServerId"]
    record = last(sandbox, "validate")
    assert (record.role, record.method, record.target) == (
        Role.GATEWAY.value, "POST", f"/{VALIDATE}")
    headers = headers_of(record)
    assert headers["authorization"] == f"Bearer {client.access_token}"
    assert (headers["sid"], headers["auth"]) == (client.view_sid, client.view_token)
    assert headers["content-type"] == JSON
    assert_json_body(record, {"mobileNumber": "+91" + account.mobile, "mpin": account.mpin})
    assert client.order_report().status_code == 200  # the trade session works


def test_session_2fa_with_the_otp_sent_to_the_view_tokens_user(
        server: SandboxServer, sandbox: Sandbox, account: SandboxAccount) -> None:
    client = client_for(server, account)
    client.session_init()
    client.login(mobile=account.mobile, password=account.password)
    assert len(account.otp) != 6  # so 1.x sends {"userId", "otp"}, not the MPIN form

    reply = client.session_2fa(account.otp)

    assert reply.status_code == 200, reply.text
    data = reply.json()["data"]
    assert data["token"] and data["sid"] and data["rid"] and data["hsServerId"]
    assert_json_body(last(sandbox, "validate"), {"userId": client.user_id, "otp": account.otp})
    assert_json_body(last(sandbox, "otp"), {"userId": client.user_id, "sendEmail": True,
                                            "isWhitelisted": True})
    assert client.order_report().status_code == 200


def test_logout_ends_the_session_so_the_order_book_is_refused(
        legacy: LegacyClient, sandbox: Sandbox) -> None:
    assert legacy.order_report().status_code == 200

    reply = legacy.logout()

    assert reply.ok, reply.text
    record = last(sandbox, "logout")
    headers = assert_gateway_call(record, legacy, "POST", LOGOUT, FORM, accept=JSON,
                                  fin_key=False, query=False)
    assert "neo-fin-key" not in headers
    assert headers.get("content-length", "0") == "0"  # an empty form
    after = legacy.order_report()
    assert after.status_code in (401, 403), after.text
    assert after.json().get("stat") != "Ok"


# --- orders ----------------------------------------------------------------------------------


def test_place_order(legacy: LegacyClient, sandbox: Sandbox) -> None:
    reply = legacy.place_order(es="nse_cm", pc="MIS", pr="0", pt="MKT", qt="1", ts="SBIN-EQ",
                               tt="B")

    assert reply.status_code == 200
    body = reply.json()
    assert body["stat"] == "Ok" and body["stCode"] == 200 and isinstance(body["nOrdNo"], str)
    record = last(sandbox, "place")
    headers = assert_gateway_call(record, legacy, "POST", PLACE, FORM)
    assert "accept" not in headers or headers["accept"] == "*/*"  # 1.x sets none
    assert_jdata(record, {"am": "NO", "dq": "0", "es": "nse_cm", "mp": "0", "pc": "MIS",
                          "pf": "N", "pr": "0", "pt": "MKT", "qt": "1", "rt": "DAY", "tp": "0",
                          "ts": "SBIN-EQ", "tt": "B", "ig": None})
    assert book_row(legacy, body["nOrdNo"])["ordSt"] == "complete"


def test_untagged_orders_can_be_placed_one_after_another(legacy: LegacyClient) -> None:
    """1.x sends ``"ig": null`` on every order placed without a tag: no tag, not a tag
    "None" that the second untagged order of the day would repeat."""
    first = place_limit_buy(legacy, price="800")

    second = legacy.place_order(es="nse_cm", pc="MIS", pr="801", pt="L", qt="1",
                                ts="SBIN-EQ", tt="B")

    assert second.json().get("stat") == "Ok", second.json()
    assert second.json()["nOrdNo"] != first


def test_order_report_rows_carry_what_cancel_and_modify_read(
        legacy: LegacyClient, sandbox: Sandbox) -> None:
    order_id = place_limit_buy(legacy)

    reply = legacy.order_report()

    assert reply.status_code == 200
    body = reply.json()
    assert body["stat"] == "Ok" and body["stCode"] == 200
    record = last(sandbox, "orders")
    assert_gateway_call(record, legacy, "GET", ORDER_BOOK, JSON, accept=JSON)
    assert record.body == b""
    row = next(item for item in body["data"] if item["nOrdNo"] == order_id)
    for key in ORDER_ROW_FIELDS:
        assert key in row, key
    assert row["ordSt"] == "open"
    assert (row["trdSym"], row["exSeg"], row["prod"], row["trnsTp"]) == (
        "SBIN-EQ", "nse_cm", "MIS", "B")
    assert row["tok"] == "3045" and row["trgPrc"] == "0.00"


def test_modify_order_by_id_copies_the_book_row_and_is_taken(
        legacy: LegacyClient, sandbox: Sandbox) -> None:
    order_id = place_limit_buy(legacy, price="800")
    item = book_row(legacy, order_id)  # step 1: 1.x reads the order book
    assert item["ordSt"] not in TERMINAL
    body = {"tk": item["tok"], "mp": "0", "pc": item["prod"], "dd": "NA", "dq": "0",
            "vd": "DAY", "ts": item["trdSym"], "tt": item["trnsTp"], "pr": "810", "pt": "L",
            "fq": "0", "tp": item["trgPrc"], "qt": "2", "no": order_id, "es": item["exSeg"],
            "am": "NO"}
    assert body["tp"] == "0.00"

    reply = legacy.modify_order(body)

    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["stat"] == "Ok" and answer["nOrdNo"] == order_id
    record = last(sandbox, "modify")
    assert_gateway_call(record, legacy, "POST", MODIFY, FORM)
    assert_jdata(record, body)
    after = book_row(legacy, order_id)
    assert (after["prc"], after["qty"], after["ordSt"]) == ("810.00", 2, "open")


def test_modify_order_quick_path(legacy: LegacyClient, sandbox: Sandbox) -> None:
    order_id = place_limit_buy(legacy, price="800")
    body = {"tk": "3045", "mp": "0", "pc": "MIS", "dd": "NA", "dq": "0", "vd": "DAY",
            "ts": "SBIN-EQ", "tt": None, "pr": "805", "pt": "L", "fq": "0", "am": "NO",
            "tp": "0", "qt": "1", "no": order_id, "es": "nse_cm"}

    reply = legacy.modify_order(body)

    assert reply.json().get("stat") == "Ok", reply.text
    assert_jdata(last(sandbox, "modify"), body)
    assert book_row(legacy, order_id)["prc"] == "805.00"


def test_cancel_order_with_verify(legacy: LegacyClient, sandbox: Sandbox) -> None:
    order_id = place_limit_buy(legacy)
    assert book_row(legacy, order_id)["ordSt"] not in TERMINAL  # isVerify: go on and cancel

    reply = legacy.cancel_order(order_id)

    assert reply.status_code == 200
    body = reply.json()
    assert body["stat"] == "Ok" and body["nOrdNo"] == order_id and body["stCode"] == 200
    record = last(sandbox, "cancel")
    assert_gateway_call(record, legacy, "POST", CANCEL, FORM)
    assert_jdata(record, {"on": order_id, "am": "NO"})
    # A second cancel with isVerify stops at the book: a terminal status and its reason.
    row = book_row(legacy, order_id)
    assert row["ordSt"] == "cancelled" and isinstance(row["rejRsn"], str)


def test_order_history(legacy: LegacyClient, sandbox: Sandbox) -> None:
    order_id = place_limit_buy(legacy)

    reply = legacy.order_history(order_id)

    assert reply.status_code == 200
    body = json.loads(reply.text)  # 1.x returns {"data": json.loads(resp.text)}
    assert body["stat"] == "Ok" and body["data"]
    assert all(row["nOrdNo"] == order_id for row in body["data"])
    record = last(sandbox, "history")
    assert_gateway_call(record, legacy, "POST", HISTORY, FORM, accept=JSON)
    assert_jdata(record, {"nOrdNo": order_id})


# --- reports ---------------------------------------------------------------------------------


def test_trade_report_for_an_order_id(legacy: LegacyClient, sandbox: Sandbox) -> None:
    placed = legacy.place_order(es="nse_cm", pc="MIS", pr="0", pt="MKT", qt="1",
                                ts="SBIN-EQ", tt="B").json()
    order_id = placed["nOrdNo"]

    reply = legacy.trade_report()

    assert reply.status_code == 200
    record = last(sandbox, "trades")
    assert_gateway_call(record, legacy, "GET", TRADES, JSON, accept=JSON)
    body = reply.json()
    assert "data" in body
    # trade_report(order_id) builds {"tid": reply['tid'], "stat": ..., "stCode": ...}
    missing = [key for key in ("tid", "stat", "stCode") if key not in body]
    assert not missing, f"the trade book reply lacks {missing}: {body}"
    matches = [item for item in body["data"] if item["nOrdNo"] == order_id]
    assert matches and matches[-1]["fldQty"] == 1


def test_trade_report_without_an_order_id(legacy: LegacyClient) -> None:
    legacy.place_order(es="nse_cm", pc="MIS", pr="0", pt="MKT", qt="1", ts="SBIN-EQ", tt="B")

    body = legacy.trade_report().json()

    assert body["stCode"] == 200 and len(body["data"]) == 1
    fill = body["data"][0]
    for key in ("nOrdNo", "fldQty", "avgPrc", "flId", "flDt", "flTm", "exTm", "trdSym",
                "exSeg", "trnsTp", "prod", "prcTp"):
        assert key in fill, key


def test_positions(legacy: LegacyClient, sandbox: Sandbox, account: SandboxAccount) -> None:
    sandbox.seed_position(account.ucc, "NSE", "SBIN-EQ", "MIS", 5, Decimal("850"))

    reply = legacy.positions()

    assert reply.status_code == 200
    assert_gateway_call(last(sandbox, "positions"), legacy, "GET", POSITIONS, JSON, accept=JSON)
    rows = reply.json()["data"]
    assert [(row["trdSym"], row["flBuyQty"]) for row in rows] == [("SBIN-EQ", "5")]


def test_holdings(server: SandboxServer, sandbox: Sandbox, account: SandboxAccount,
                  manual_clock: ManualClock) -> None:
    sandbox.seed_position(account.ucc, "NSE", "SBIN-EQ", "CNC", 10, Decimal("800"))
    manual_clock.advance(timedelta(days=1))  # bought yesterday: a holding today
    client = log_in(server, account)

    reply = client.holdings()

    assert reply.status_code == 200
    record = last(sandbox, "holdings")
    assert_gateway_call(record, client, "GET", HOLDINGS, JSON, accept="*/*", fin_key=False)
    rows = reply.json()["data"]
    assert len(rows) == 1
    for key in ("symbol", "displaySymbol", "averagePrice", "quantity", "exchangeSegment",
                "exchangeIdentifier", "holdingCost", "mktValue", "scripId", "instrumentToken",
                "instrumentType", "isAlternateScrip", "closingPrice"):
        assert key in rows[0], key
    assert (rows[0]["quantity"], rows[0]["exchangeSegment"]) == (10, "nse_cm")


def test_limits(legacy: LegacyClient, sandbox: Sandbox) -> None:
    reply = legacy.limits()

    assert reply.status_code == 200
    assert reply.json()["stat"] == "Ok"
    record = last(sandbox, "limits")
    assert_gateway_call(record, legacy, "POST", LIMITS, FORM, accept=JSON)
    assert_jdata(record, {"seg": "ALL", "exch": "ALL", "prod": "ALL"})


def test_margin_required_with_nulls_for_unset_values(
        legacy: LegacyClient, sandbox: Sandbox) -> None:
    body = {"exSeg": "nse_cm", "prc": "850", "prcTp": "L", "prod": "CNC", "qty": "1",
            "tok": "3045", "trnsTp": "B", "trgPrc": None, "brkName": "KOTAK",
            "brnchId": "ONLINE", "slAbsOrTks": None, "slVal": None, "sqrOffAbsOrTks": None,
            "sqrOffVal": None, "trailSL": None, "tSLTks": None}

    reply = legacy.margin_required(body)

    assert reply.status_code == 200
    answer = json.loads(reply.text)
    assert answer["stat"] == "Ok" and answer["stCode"] == 200, answer
    assert Decimal(answer["reqdMrgn"]) > 0
    record = last(sandbox, "margin")
    assert_gateway_call(record, legacy, "POST", MARGIN, FORM, accept=JSON)
    assert_jdata(record, body)


# --- scrip master ----------------------------------------------------------------------------


def first_path(paths: list[str], segment: str) -> str:
    """1.x: the first listed path containing the segment, case-insensitively."""
    return next(path for path in paths if segment.lower() in path.lower())


def test_scrip_master_lists_the_files_with_the_bearer_alone(
        legacy: LegacyClient, sandbox: Sandbox, server: SandboxServer) -> None:
    reply = legacy.scrip_master_paths()

    assert reply.status_code == 200, reply.text
    record = last(sandbox, "scrip-files")
    assert (record.role, record.method, record.target) == (
        Role.GATEWAY.value, "GET", f"/{SCRIP_MASTER}")
    headers = headers_of(record)
    assert headers["authorization"] == f"Bearer {legacy.access_token}"
    assert headers["content-type"] == JSON
    assert not {"sid", "auth", "neo-fin-key"} & set(headers)
    data = reply.json()["data"]
    paths = data["filesPaths"]
    assert all(isinstance(path, str) for path in paths) and "baseFolder" in data
    files_host = server.url_of(Role.FILES)
    assert all(path.startswith(files_host + "/") for path in paths)
    for segment in ("nse_cm", "bse_cm", "nse_fo", "bse_fo", "cde_fo"):
        assert first_path(paths, segment)


def test_search_scrip_downloads_the_csv_without_headers(
        legacy: LegacyClient, sandbox: Sandbox) -> None:
    paths = legacy.scrip_master_paths().json()["data"]["filesPaths"]
    url = first_path(paths, "nse_cm")

    download = requests.get(url, timeout=TIMEOUT)  # 1.x: a plain GET, no headers at all

    assert download.status_code == 200
    record = last(sandbox, "scrip-file")
    assert record.role == Role.FILES.value and record.method == "GET"
    assert "authorization" not in headers_of(record)
    rows = list(csv.reader(io.StringIO(download.text)))
    columns = [name.strip() for name in rows[0]]  # 1.x strips spaces from the names
    for name in ("pSymbolName", "pOptionType", "pExpiryDate", "dStrikePrice;"):
        assert name in columns, name
    symbol = columns.index("pSymbolName")
    strike = columns.index("dStrikePrice;")
    sbin = [row for row in rows[1:] if "sbin" in row[symbol].strip().lower()]
    assert sbin
    assert all(float(row[strike]) for row in sbin)  # sorted on it: it must be numeric


def test_search_scrip_reads_expiries_and_strikes_of_the_fo_file(legacy: LegacyClient) -> None:
    paths = legacy.scrip_master_paths().json()["data"]["filesPaths"]

    download = requests.get(first_path(paths, "nse_fo"), timeout=TIMEOUT)

    assert download.status_code == 200
    reader = csv.DictReader(io.StringIO(download.text))
    rows = [{(name or "").strip(): value for name, value in row.items()} for row in reader]
    options = [row for row in rows
               if row["pSymbolName"].strip().lower() == "nifty" and row["pOptionType"] == "CE"]
    assert options
    for row in options:
        int(float(row["pExpiryDate"]))  # epoch seconds: pd.to_datetime(unit="s")
        assert float(row["dStrikePrice;"]) > 0  # strike x 100


# --- hosts -----------------------------------------------------------------------------------


def legacy_ucc(sandbox: Sandbox) -> str:
    (ucc,) = sandbox.accounts
    return ucc


@pytest.mark.parametrize(("role", "method", "path"), [
    (Role.OAUTH, "GET", ORDER_BOOK),
    (Role.LOGIN, "POST", PLACE),
    (Role.TRADING, "GET", ORDER_BOOK),
    (Role.OAUTH, "POST", VALIDATE),
    (Role.GATEWAY, "POST", "oauth2/token"),
    (Role.FILES, "GET", SCRIP_MASTER),
])
def test_a_call_sent_to_the_wrong_host_is_404(
        legacy: LegacyClient, sandbox: Sandbox, server: SandboxServer, role: Role, method: str,
        path: str) -> None:
    url = f"{server.url_of(role)}/{path}?{urlencode({'sId': legacy.server_id})}"
    headers = legacy.trading_headers(accept=JSON)

    if method == "GET":
        reply = legacy.get(url, headers)
    else:
        reply = legacy.post_form(url, headers, {"am": "NO", "dq": "0", "es": "nse_cm",
                                                "mp": "0", "pc": "MIS", "pf": "N", "pr": "0",
                                                "pt": "MKT", "qt": "1", "rt": "DAY", "tp": "0",
                                                "ts": "SBIN-EQ", "tt": "B", "ig": None})

    assert reply.status_code == 404, reply.text
    record = last(sandbox)
    assert (record.role, record.status) == (role.value, 404)
    assert sandbox.orders(legacy_ucc(sandbox)) == []  # nothing was placed
