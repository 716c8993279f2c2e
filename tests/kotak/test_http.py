"""The request chokepoint, with HTTP faked at the transport (a mounted requests adapter)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from bridge.kotak.errors import (
    BrokerRejected,
    BrokerUnavailable,
    LoginFailed,
    OutcomeUnknown,
    ProtocolError,
    RateLimited,
    SessionInvalid,
)
from bridge.kotak.http import KotakHttp, RetryPolicy, Timeouts
from bridge.kotak.wire import Call
from tests.conftest import serving

URL = "https://kotak.test/quick/user/orders"


@dataclass
class Canned:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    error: Exception | None = None


def canned(body: Any = None, status: int = 200, **extra: Any) -> Canned:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Canned(status=status, body=raw, **extra)


class StubAdapter(BaseAdapter):
    """Answers from a script and records what the client sent and how."""

    def __init__(self, *answers: Canned) -> None:
        super().__init__()
        self.answers = list(answers)
        self.sent: list[tuple[requests.PreparedRequest, dict[str, Any]]] = []

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: Any = True, cert: Any = None,
             proxies: Mapping[str, str] | None = None) -> requests.Response:
        self.sent.append((request, {"timeout": timeout}))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if answer.error is not None:
            raise answer.error
        response = requests.Response()
        response.status_code = answer.status
        response._content = answer.body
        response.headers = CaseInsensitiveDict({"Content-Type": answer.content_type,
                                                **answer.headers})
        response.request = request
        response.url = request.url or ""
        return response

    def close(self) -> None:
        """Nothing to close."""


def client(*answers: Canned) -> tuple[KotakHttp, StubAdapter, list[float]]:
    adapter = StubAdapter(*answers)
    session = requests.Session()
    session.mount("https://", adapter)
    slept: list[float] = []
    http = KotakHttp(session=session, timeouts=Timeouts(connect=1.5, read=3.0),
                     retry=RetryPolicy(attempts=3, backoff=0.25, max_wait=2.0),
                     sleep=slept.append)
    return http, adapter, slept


def read(http: KotakHttp, **kwargs: Any) -> Any:
    return http.request(Call.READ, "GET", URL, what="order book", headers={}, **kwargs)


def write(http: KotakHttp) -> Any:
    return http.request(Call.WRITE, "POST", URL, what="place", headers={}, form={"jData": "{}"})


def test_every_call_has_a_connect_and_read_timeout() -> None:
    http, adapter, _ = client(canned({"stat": "Ok", "stCode": 200, "data": []}))

    read(http)
    write(http)

    assert [kwargs["timeout"] for _, kwargs in adapter.sent] == [(1.5, 3.0), (1.5, 3.0)]


def test_a_redirect_is_not_followed() -> None:
    http, adapter, _ = client(Canned(status=302, headers={"Location": "http://elsewhere/"}))

    with pytest.raises(ProtocolError) as wrong:
        write(http)

    assert "redirect to http://elsewhere/" in wrong.value.message
    assert len(adapter.sent) == 1


@pytest.mark.parametrize(("answer", "kind", "words"), [
    (Canned(status=200, body=b"<html><title>Maintenance</title></html>",
            content_type="text/html"), ProtocolError, 'an HTML page "Maintenance"'),
    (Canned(status=200, body=b"{not json", content_type="application/json"), ProtocolError,
     "malformed JSON"),
    (Canned(status=200, body=b"", content_type="application/json"), ProtocolError,
     "empty body"),
    (Canned(status=200, body=b"ok", content_type="text/plain"), ProtocolError,
     "content type text/plain"),
])
def test_unreadable_answers_to_reads_are_protocol_errors(answer: Canned, kind: type,
                                                         words: str) -> None:
    http, _, _ = client(answer)

    with pytest.raises(kind) as error:
        read(http)

    assert words in str(error.value)


def test_unreadable_answer_to_an_order_is_outcome_unknown() -> None:
    http, adapter, _ = client(Canned(status=200, body=b"<html>oops</html>",
                                     content_type="text/html"))

    with pytest.raises(OutcomeUnknown):
        write(http)

    assert len(adapter.sent) == 1


def test_server_errors_on_orders_are_never_retried() -> None:
    http, adapter, slept = client(Canned(status=503, body=b"busy", content_type="text/plain"))

    with pytest.raises(OutcomeUnknown):
        write(http)

    assert len(adapter.sent) == 1 and slept == []


def test_reads_are_retried_with_exponential_backoff() -> None:
    http, adapter, slept = client(Canned(status=502, body=b"", content_type="text/html"),
                                  Canned(status=502, body=b"", content_type="text/html"),
                                  canned({"stat": "Ok", "stCode": 200, "data": [{"a": 1}]}))

    assert read(http) == {"stat": "Ok", "stCode": 200, "data": [{"a": 1}]}
    assert slept == [0.25, 0.5] and len(adapter.sent) == 3


def test_retry_after_is_honoured_within_the_cap() -> None:
    http, _, slept = client(canned({"stat": "Not_Ok"}, status=429,
                                   headers={"Retry-After": "30"}),
                            canned({"stat": "Ok", "data": []}))

    read(http)

    assert slept == [2.0]


def test_rate_limit_on_an_order_is_reported_not_retried() -> None:
    http, adapter, _ = client(canned({"stat": "Not_Ok"}, status=429,
                                     headers={"Retry-After": "1"}))

    with pytest.raises(RateLimited) as limited:
        write(http)

    assert limited.value.retry_after == 1.0 and len(adapter.sent) == 1


def test_connect_timeout_is_unavailable_but_read_timeout_on_order_is_unknown() -> None:
    http, _, _ = client(Canned(error=requests.exceptions.ConnectTimeout("connect")))
    with pytest.raises(BrokerUnavailable) as down:
        write(http)
    assert not isinstance(down.value, OutcomeUnknown)

    http, _, _ = client(Canned(error=requests.exceptions.ReadTimeout("read")))
    with pytest.raises(OutcomeUnknown) as unknown:
        write(http)
    assert unknown.value.cause == "ReadTimeout"


@pytest.mark.parametrize(("body", "status", "code", "message"), [
    ({"stat": "Not_Ok", "emsg": "Insufficient funds", "stCode": 1004}, 200, "1004",
     "Insufficient funds"),
    ({"stCode": 1009, "errMsg": "please provide valid quantity", "stat": "Not_Ok"}, 200,
     "1009", "please provide valid quantity"),
    ({"stCode": 1007, "errMsg": "body invalid", "stat": "bad request"}, 200, "1007",
     "body invalid"),
    ({"stCode": 1021, "errMsg": "order is completed",
      "stat": "please provide valid order number"}, 400, "1021", "order is completed"),
    ({"stat": "Not_Ok", "stCode": 5202, "errMsg": "Error: Invalid Request",
      "tid": "server7_894264"}, 200, "5202", "Error: Invalid Request"),
    ({"stCode": 100008, "errMsg": "unauthorized", "stat": "Not_Ok"}, 200, "100008",
     "unauthorized"),
    ({"stat": "Not_Ok", "message": "Insufficient funds"}, 200, "", "Insufficient funds"),
])
def test_kotak_refusals_in_every_envelope(body: dict[str, Any], status: int, code: str,
                                          message: str) -> None:
    http, _, _ = client(canned(body, status=status))

    with pytest.raises(BrokerRejected) as refused:
        write(http)

    assert (refused.value.code, refused.value.broker_message) == (code, message)


@pytest.mark.parametrize(("body", "status"), [
    ({"stCode": 100022, "errMsg": "invalid session token", "stat": "Not_Ok"}, 200),
    ({"stat": "Not_Ok", "error": [{"code": "10020", "message": "Authentication Failed"}]}, 200),
    ({"code": "900901", "message": "Invalid Credentials", "description": "..."}, 401),
    ({"fault": {"code": "900901", "message": "Invalid Credentials"}}, 401),
    ({"stat": "Not_Ok", "emsg": "Invalid session", "stCode": 1003}, 200),
    ({"message": "Invalid session, please re-login to continue"}, 403),
])
def test_stale_sessions_in_every_envelope(body: dict[str, Any], status: int) -> None:
    http, _, _ = client(canned(body, status=status))

    with pytest.raises(SessionInvalid):
        read(http)


def test_login_refusals_are_login_failures_with_the_message() -> None:
    http, _, _ = client(canned({"status": "error", "message": "Invalid credentials or TOTP.",
                                "errorCode": "401"}, status=401))

    with pytest.raises(LoginFailed) as failed:
        http.request(Call.LOGIN, "POST", URL, what="tradeApiLogin", headers={}, json_body={})

    assert failed.value.reason == "Invalid credentials or TOTP." and failed.value.code == "401"


def test_no_data_is_an_empty_answer_only_where_asked() -> None:
    empty = {"stat": "Not_Ok", "stCode": 5203, "errMsg": "No Data", "desc": "data not found"}
    http, _, _ = client(canned(empty))
    assert read(http, empty_ok=True) is None

    with pytest.raises(BrokerRejected):
        read(http)


def test_lowercase_ok_and_string_codes_are_success() -> None:
    http, _, _ = client(canned({"stat": "ok", "stCode": "200", "data": []}))

    assert read(http) == {"stat": "ok", "stCode": "200", "data": []}


@pytest.mark.parametrize(("method", "url", "headers", "params", "form", "json_body"), [
    ("POST", URL, {"Sid": "s1", "Auth": "t0k"}, {"sId": "server 1"},
     {"jData": json.dumps({"ts": "M&M-EQ", "pr": "1 2+3=4", "tag": "₹ ü | %7C / ?"}),
      "second": ""}, None),
    ("POST", URL, {"Content-Type": "text/plain", "Accept": "*/*"}, None, {"jData": "{}"},
     None),
    ("POST", URL, {"Authorization": "abc", "Content-Type": "application/json"}, None, None,
     {"mobileNumber": "+911234567890", "nested": [1, "ü"]}),
    ("POST", URL, {}, None, {}, {"ignored": "form wins"}),
    ("GET", URL, {"sid": "lower-case name"}, {"a": "b|c", "d": "é"}, None, None),
    ("GET", "https://Kotak.TEST:8443/quick/user/orders?x=1#top", {}, {"y": "2"}, None, None),
    ("GET", "https://gw%40user:p%20w@kotak.test/quick/user/orders", {}, None, None, None),
    ("DELETE", URL, {}, {}, None, None),
])
def test_kotak_receives_exactly_the_request_requests_would_build(
        method: str, url: str, headers: dict[str, str], params: dict[str, str] | None,
        form: dict[str, str] | None, json_body: Any) -> None:
    http, adapter, _ = client(canned({"stat": "Ok", "stCode": 200}))
    http.session.cookies.set("gateway", "g1", domain="kotak.test", path="/")

    http.request(Call.READ, method, url, what="order book", headers=headers, params=params,
                 form=form, json_body=json_body)

    sent, _ = adapter.sent[0]
    expected = http.session.prepare_request(requests.Request(
        method, url, headers=headers, params=params, data=form, json=json_body))
    assert (sent.method, sent.url, list(sent.headers.items()), sent.body) == (
        expected.method, expected.url, list(expected.headers.items()), expected.body)


@pytest.mark.parametrize("url", ["kotak.test/quick/user/orders", "https:///quick/user/orders",
                                 "https://.kotak.test/quick/user/orders"])
def test_a_malformed_kotak_url_is_refused_every_time_without_sending(url: str) -> None:
    http, adapter, _ = client(canned({"stat": "Ok", "stCode": 200}))

    for _ in range(2):
        with pytest.raises(ProtocolError) as refused:
            http.request(Call.WRITE, "POST", url, what="place", headers={},
                         params={"sId": "server1"}, form={"jData": "{}"})
        assert refused.value.message.startswith("bad Kotak URL for place")

    assert adapter.sent == []


class _CookieGateway(BaseHTTPRequestHandler):
    """Sets a gateway cookie on its first answer and records the Cookie header of each call."""

    protocol_version = "HTTP/1.1"
    server: _Gateway

    def do_GET(self) -> None:
        self.server.seen.append(self.headers.get("Cookie"))
        body = json.dumps({"stat": "Ok", "stCode": 200, "data": []}).encode()
        self.send_response(200)
        if len(self.server.seen) == 1:
            self.send_header("Set-Cookie", "gateway=abc123; Path=/")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        return


class _Gateway(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[str | None]


@pytest.fixture
def gateway() -> Iterator[_Gateway]:
    server = _Gateway(("127.0.0.1", 0), _CookieGateway)
    server.seen = []
    with serving(server):
        yield server


def test_a_cookie_kotak_sets_is_sent_back_on_the_next_call(gateway: _Gateway) -> None:
    http = KotakHttp()
    url = f"http://127.0.0.1:{gateway.server_address[1]}/quick/user/orders"

    for _ in range(3):
        http.request(Call.READ, "GET", url, what="order book", headers={})
    http.session.close()

    assert gateway.seen == [None, "gateway=abc123", "gateway=abc123"]
