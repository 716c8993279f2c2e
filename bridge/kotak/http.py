"""The one door to Kotak: every HTTP request of the connector goes through :class:`KotakHttp`.

Policy, in the order it is applied:

1. A ``(connect, read)`` timeout on every request; redirects are never followed (a redirect
   means a wrong URL setting, and following one would re-send an order body elsewhere).
   The URL goes out exactly as :mod:`bridge.kotak.wire` spelled it: requests and urllib3
   would escape the ``|`` Kotak's quotes path needs literal (see :class:`_AsBuiltPool`).
   The request is built and sent as the ``requests.Session`` would (its adapters, proxies,
   cookies and hooks), without the session's generic per-call work (:func:`_prepare`).
2. Transport failures are split by whether the request may have reached Kotak: a failed
   connect is :class:`BrokerUnavailable` (nothing sent); a read timeout or a connection lost
   after sending is :class:`OutcomeUnknown` for order-changing calls.
3. The reply is checked in order: HTTP status, content type, JSON, then Kotak's own
   ``stat``/``stCode`` and error fields (:func:`bridge.kotak.wire.reply_error`).
4. Only reads are retried, with exponential back-off and ``Retry-After`` honoured. Order
   placement, modification, cancellation and login submissions are sent exactly once.
5. Every failed attempt is shown to the optional ``observer`` (metrics count them by code);
   an observer that fails is ignored.

Nothing here logs headers or bodies: they carry tokens and credentials.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import extract_cookies_to_jar
from requests.hooks import dispatch_hook
from requests.sessions import merge_setting
from requests.structures import CaseInsensitiveDict
from requests.utils import get_netrc_auth, resolve_proxies
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from bridge.kotak.errors import (
    BrokerRejected,
    BrokerUnavailable,
    KotakError,
    LoginFailed,
    OutcomeUnknown,
    ProtocolError,
    RateLimited,
    SessionInvalid,
)
from bridge.kotak.wire import NO_DATA_CODE, SESSION_CODES, Call, explain, reply_error

log = logging.getLogger(__name__)
T = TypeVar("T")
#: told of every failed attempt: what was asked ("place", "order book" ...) and the error
ErrorObserver = Callable[[str, KotakError], None]


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait. Order calls must answer inside TradingView's 3 s budget."""

    connect: float = 2.0
    read: float = 4.0
    login: float = 10.0
    download: float = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """How reads are retried: ``attempts`` in all, waiting ``backoff`` x 2^n (capped)."""

    attempts: int = 3
    backoff: float = 0.25
    max_wait: float = 2.0


_NOT_SENT_MARKERS = ("NewConnectionError", "ConnectTimeoutError", "NameResolutionError",
                     "Failed to establish", "Connection refused", "getaddrinfo failed")


class KotakHttp:
    """Send requests to Kotak (or anything speaking its protocol) and judge the replies."""

    def __init__(
        self,
        session: requests.Session | None = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        *,
        proxy: str = "",
        sleep: Callable[[float], None] = time.sleep,
        observer: ErrorObserver | None = None,
    ) -> None:
        self.session = session or new_session()
        if proxy:
            self.session.proxies = {"http": proxy, "https": proxy}
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._observer = observer

    def request(
        self,
        call: Call,
        method: str,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        json_body: Any = None,
        empty_ok: bool = False,
        deadline: float | None = None,
    ) -> Any:
        """Send one request and return its decoded JSON, or ``None`` for an empty book.

        :param call: what the request does; decides retries and how failures read.
        :param what: a short name for messages ("place", "order book", ...).
        :param empty_ok: treat Kotak's 5203 "No Data" as an empty answer, not an error.
        :param deadline: for a read, the ``time.monotonic()`` by which the answer must be in:
            each attempt waits at most until then, and none starts after it (Kotak's order
            book can hang for a minute, and nobody may wait that long for it).
        :raises KotakError: a subclass saying what the caller may do next.
        """
        if call is not Call.READ:
            deadline = None
        return self._retrying(call is Call.READ, what, lambda: self._send(
            call, method, url, what=what, headers=headers, params=params, form=form,
            json_body=json_body, empty_ok=empty_ok, deadline=deadline), deadline)

    def download(self, url: str, *, what: str) -> bytes:
        """Fetch a file (the scrip-master CSVs need no credentials), retrying like a read."""
        return self._retrying(True, what, lambda: self._fetch(url, what))

    def _retrying(self, retry: bool, what: str, send: Callable[[], T],
                  deadline: float | None = None) -> T:
        """Run ``send``; when ``retry``, run it again after back-off while Kotak is unavailable
        (never past ``deadline``)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return send()
            except BrokerUnavailable as exc:
                self._observe(what, exc)
                if not retry or attempt >= self.retry.attempts:
                    raise
                wait = self._wait(attempt, exc)
                if deadline is not None and time.monotonic() + wait >= deadline:
                    raise
                log.warning("kotak %s unavailable (%s); retry %d in %.2fs",
                            what, exc.message, attempt, wait)
                self._sleep(wait)
            except KotakError as exc:
                self._observe(what, exc)
                raise

    def _observe(self, what: str, error: KotakError) -> None:
        if self._observer is None:
            return
        try:
            self._observer(what, error)
        except Exception:
            log.debug("the Kotak error observer failed", exc_info=True)

    def _wait(self, attempt: int, exc: BrokerUnavailable) -> float:
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return min(max(float(exc.retry_after), 0.0), self.retry.max_wait)
        return min(self.retry.backoff * (2.0 ** (attempt - 1)), self.retry.max_wait)

    def _send(
        self,
        call: Call,
        method: str,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        form: Mapping[str, str] | None,
        json_body: Any,
        empty_ok: bool,
        deadline: float | None = None,
    ) -> Any:
        read_timeout = self.timeouts.login if call is Call.LOGIN else self.timeouts.read
        started = time.monotonic()
        if deadline is not None:
            left = deadline - started
            if left <= 0.05:
                raise BrokerUnavailable(f"no time left to ask Kotak for {what}")
            read_timeout = min(read_timeout, left)
        try:
            prepared = _prepare(self.session, method, url, headers, params, form, json_body)
            prepared.url = _as_built(url, prepared.url or url)
            response = _transmit(self.session, prepared, (self.timeouts.connect, read_timeout))
        except requests.exceptions.RequestException as exc:
            raise _transport_error(call, what, exc, read_timeout) from exc
        elapsed = time.monotonic() - started
        log.debug("kotak %s -> HTTP %d in %.0f ms", what, response.status_code, elapsed * 1000)
        return _judge(call, what, response, empty_ok)

    def _fetch(self, url: str, what: str) -> bytes:
        try:
            response = self.session.get(
                url, timeout=(self.timeouts.connect, self.timeouts.download),
                allow_redirects=False, headers={"Accept": "*/*"},
            )
            content = response.content
        except requests.exceptions.RequestException as exc:
            raise _transport_error(Call.READ, what, exc, self.timeouts.download) from exc
        if response.status_code == 429:
            raise RateLimited(f"Kotak rate-limited the {what} download",
                              _retry_after(response))
        if response.status_code >= 500:
            raise BrokerUnavailable(f"{what} download failed with HTTP {response.status_code}")
        if response.status_code != 200:
            raise ProtocolError(f"{what} download failed with HTTP {response.status_code} "
                                f"({_snippet(response)})")
        return content


def new_session() -> requests.Session:
    """A requests session with the connector's transport policy."""
    session = requests.Session()
    # Proxies and credentials from the environment or ~/.netrc must not silently attach to
    # broker calls; a proxy is an explicit setting.
    session.trust_env = False
    adapter = _KotakAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _prepare(session: requests.Session, method: str, url: str, headers: Mapping[str, str],
             params: Mapping[str, str] | None, form: Mapping[str, str] | None,
             json_body: Any) -> requests.PreparedRequest:
    """The request ``session.prepare_request(requests.Request(...))`` builds, byte for byte,
    for less CPU (every call of a 200-account fan-out pays it).

    The steps of ``PreparedRequest.prepare`` run in its order on the session's settings as
    ``prepare_request`` merges them, minus what costs without changing the request: no copy
    of the session's cookie jar per call (the Cookie header is read from the jar itself), and
    the headers, query and form are merged and encoded here rather than by requests' generic
    merging, which tests each value against runtime-checkable protocols (about 6-10 us each,
    eight or nine times a call).
    """
    if session.params:
        params = merge_setting(params, session.params)  # type: ignore[no-untyped-call]
    auth = session.auth
    if not auth and session.trust_env:
        auth = get_netrc_auth(url)
    prepared = requests.PreparedRequest()
    prepared.prepare_method(method)
    query = _encoded(params)
    if query is None or isinstance(query, str):
        prepared.url = _prepared_url(url, query)
    else:
        prepared.prepare_url(url, query)
    prepared.prepare_headers(_merged_headers(session.headers, headers))
    prepared.prepare_cookies(session.cookies)
    data = _encoded(form)
    prepared.prepare_body(data, None, json_body)
    if form and data is not form and "content-type" not in prepared.headers:
        # requests names the type of a form it encoded itself, not of a string it is given
        prepared.headers["Content-Type"] = "application/x-www-form-urlencoded"
    if auth is not None or "@" in (prepared.url or ""):
        # without either, requests finds no credentials to add (it looks in the URL)
        prepared.prepare_auth(auth, url)
    prepared.prepare_hooks(session.hooks)
    return prepared


@functools.lru_cache(maxsize=512)
def _prepared_url(url: str, query: str | None) -> str:
    """``url`` with ``query`` as requests prepares it (checked, IDNA-encoded, re-quoted).

    A pure function of its arguments, kept because a fan-out prepares the same few order
    URLs again and again; a URL requests refuses raises every time (nothing is cached).
    """
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, query)
    return prepared.url or url


def _merged_headers(defaults: Mapping[str, Any],
                    headers: Mapping[str, str]) -> CaseInsensitiveDict[Any]:
    """The session's headers overlaid with the call's; a header set to ``None`` is left out
    (as requests merges them)."""
    merged: CaseInsensitiveDict[Any] = CaseInsensitiveDict(defaults)
    merged.update(headers)
    for name in [name for name, value in merged.items() if value is None]:
        del merged[name]
    return merged


def _encoded(fields: Mapping[str, str] | None) -> str | Mapping[str, str] | None:
    """``fields`` form-encoded exactly as requests encodes a mapping of text (in order, UTF-8,
    spaces as ``+``); anything else is left for requests to encode."""
    if fields is None or not all(type(name) is str and type(value) is str
                                 for name, value in fields.items()):
        return fields
    return urlencode(list(fields.items()))


def _transmit(session: requests.Session, prepared: requests.PreparedRequest,
              timeout: tuple[float, float]) -> requests.Response:
    """What ``session.send(prepared, timeout=timeout, allow_redirects=False)`` does, with the
    same adapter, proxies, TLS settings, hooks and cookie persistence, minus the work spent
    on redirects: with none followed, requests still prepares the next request of a redirect
    for ``Response.next``, which nothing here reads (a redirect is refused by :func:`_judge`).
    """
    settings: dict[str, Any] = {
        "timeout": timeout, "stream": session.stream, "verify": session.verify,
        "cert": session.cert,
        "proxies": resolve_proxies(prepared, cast("dict[str, str]", session.proxies),
                                   session.trust_env)}
    adapter = session.get_adapter(url=prepared.url or "")
    started = time.perf_counter()
    sent = adapter.send(prepared, **settings)
    sent.elapsed = timedelta(seconds=time.perf_counter() - started)
    response: requests.Response = dispatch_hook(  # type: ignore[no-untyped-call]
        "response", prepared.hooks, sent, **settings)
    jar = session.cookies
    for earlier in response.history:
        extract_cookies_to_jar(jar, earlier.request, earlier.raw)  # type: ignore[no-untyped-call]
    extract_cookies_to_jar(jar, prepared, response.raw)  # type: ignore[no-untyped-call]
    if not session.stream:
        # read the body inside the caller's transport-error handling, as Session.send does
        _ = response.content
    return response


def _as_built(url: str, prepared: str) -> str:
    """The URL requests prepared, with the path put back as it was built (requests re-quotes
    it, turning ``|`` into ``%7C``); the query stays as requests encoded it."""
    if "?" in url:
        return prepared
    query = urlsplit(prepared).query
    return f"{url}?{query}" if query else url


class _AsBuiltTarget:
    """Send the request target as requests was given it.

    urllib3 percent-escapes every ``|`` in a request target (RFC 3986 leaves it out), so
    ``quotes/neosymbol/nse_cm|1333`` would leave as ``nse_cm%7C1333``, which Kotak does not
    split into segment and token (the SDK keeps it literal since July 2026). The connector
    never sends an escaped ``|`` as data (wire.quote_symbols escapes none: no segment, token
    or index name holds one), so every ``%7C`` urllib3 hands on here is a ``|`` it escaped.
    """

    def _make_request(self, conn: Any, method: str, url: str, *args: Any,
                      **kwargs: Any) -> Any:
        path, mark, query = url.partition("?")
        target = path.replace("%7C", "|") + mark + query
        return super()._make_request(conn, method, target, *args, **kwargs)  # type: ignore[misc]


class _AsBuiltPool(_AsBuiltTarget, HTTPConnectionPool):
    pass


class _AsBuiltHttpsPool(_AsBuiltTarget, HTTPSConnectionPool):
    pass


_POOLS = {"http": _AsBuiltPool, "https": _AsBuiltHttpsPool}


class _KotakAdapter(HTTPAdapter):
    """No retries below the connector (it decides what may be resent), targets as built."""

    def __init__(self) -> None:
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager


def _transport_error(call: Call, what: str, exc: requests.exceptions.RequestException,
                     read_timeout: float) -> KotakError:
    if isinstance(exc, requests.exceptions.ConnectTimeout) or _not_sent(exc):
        return BrokerUnavailable(f"could not connect to Kotak for {what}: {_reason(exc)}")
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema)):
        return ProtocolError(f"bad Kotak URL for {what}: {exc}")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        detail = f"no answer from Kotak to {what} within {read_timeout:g}s"
    else:
        detail = f"connection to Kotak lost during {what}: {_reason(exc)}"
    if call is Call.READ:
        return BrokerUnavailable(detail)
    return OutcomeUnknown(detail, cause=type(exc).__name__)


def _not_sent(exc: requests.exceptions.RequestException) -> bool:
    """Tell a connect failure (nothing sent) from a failure after the request went out."""
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    text = repr(exc)
    return any(marker in text for marker in _NOT_SENT_MARKERS)


def _reason(exc: BaseException) -> str:
    text = str(exc)
    match = re.search(r"\(Caused by (\w+)\(", text)
    return match.group(1) if match else (type(exc).__name__ if not text else text[:160])


def _judge(call: Call, what: str, response: requests.Response, empty_ok: bool) -> Any:
    status = response.status_code
    if status == 429:
        raise RateLimited(f"Kotak rate-limited {what} (HTTP 429)", _retry_after(response))
    if 300 <= status < 400:
        raise ProtocolError(f"Kotak answered {what} with a redirect to "
                            f"{response.headers.get('Location', '?')}: check the Kotak URL "
                            "settings")
    body, problem = _decode(response)
    if status >= 500:
        text = f"Kotak failed {what} with HTTP {status} ({_describe(body, problem, response)})"
        if call is Call.READ:
            raise BrokerUnavailable(text)
        raise OutcomeUnknown(text, cause=f"HTTP {status}")
    error = reply_error(body) if body is not None else None
    if status in (404, 405) and call is not Call.LOGIN and (
            error is None or error[0] in ("", str(status))):
        # The gateway's own "No matching resource found": no such call at this address.
        raise ProtocolError(f"Kotak has no {what} at this address (HTTP {status}): check "
                            "the Kotak URL settings", status)
    if error is not None:
        code, message = error
        if code == NO_DATA_CODE and empty_ok:
            return None
        if call is Call.LOGIN:
            raise LoginFailed(what, message or f"HTTP {status}", code)
        if code in SESSION_CODES or (not code and status in (401, 403)):
            raise SessionInvalid(f"Kotak refused the session for {what}: {message}", code)
        rejection = explain(code, message)
        raise BrokerRejected(code, message or f"HTTP {status}", rejection.explanation)
    if 400 <= status < 500:
        text = _describe(body, problem, response)
        if call is Call.LOGIN:
            raise LoginFailed(what, f"HTTP {status} ({text})", str(status))
        if status in (401, 403):
            raise SessionInvalid(f"Kotak refused the session for {what} (HTTP {status})",
                                 str(status))
        if status in (404, 405):
            raise ProtocolError(f"Kotak has no {what} at this address (HTTP {status}): check "
                                "the Kotak URL settings", status)
        raise BrokerRejected(f"HTTP {status}", text)
    if body is None:
        text = f"Kotak's answer to {what} is unreadable: {problem}"
        if call is Call.WRITE:
            raise OutcomeUnknown(text, cause="unreadable reply")
        raise ProtocolError(text)
    return body


def _decode(response: requests.Response) -> tuple[Any, str]:
    """Return ``(decoded JSON or None, what was wrong)`` after the content-type check."""
    raw = response.content or b""
    head = raw.lstrip()[:1]
    ctype = response.headers.get("Content-Type", "").lower()
    if not raw.strip():
        return None, "empty body"
    if "html" in ctype or head == b"<":
        return None, f"an HTML page{_title(raw)}"
    if "json" not in ctype and head not in (b"{", b"["):
        return None, f"content type {ctype or 'missing'}"
    try:
        return json.loads(raw), ""
    except ValueError:
        return None, "malformed JSON"


def _title(raw: bytes) -> str:
    match = re.search(rb"<title>(.{1,80}?)</title>", raw, re.IGNORECASE | re.DOTALL)
    return f' "{match.group(1).decode("utf-8", "replace").strip()}"' if match else ""


def _describe(body: Any, problem: str, response: requests.Response) -> str:
    if body is not None:
        error = reply_error(body)
        if error:
            return f"{error[0]} {error[1]}".strip()
    return problem or f"HTTP {response.status_code}"


def _snippet(response: requests.Response) -> str:
    body, problem = _decode(response)
    return _describe(body, problem, response)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return float(value)
    except ValueError:
        return None
