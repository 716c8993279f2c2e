"""A requests transport that hands requests to a WSGI app in the same process.

Paper mode mounts it on the requests session of the ordinary Kotak client, so the client code
that talks to Kotak talks to the sandbox unchanged: same URLs, headers, bodies and replies.
Transport behaviour is kept honest: an app that drops the connection surfaces as a requests
``ConnectionError``, and an answer slower than the read timeout as ``ReadTimeout`` (after the
app has acted, exactly like a reply lost on the network).
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from werkzeug.test import EnvironBuilder, run_wsgi_app

from bridge.kotak.sandbox.hosts import ROLE_KEY, Role, roles_text

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


class InProcessAdapter(BaseAdapter):
    """Hand requests to ``app``; ``role`` names the Kotak host the mounted address plays."""

    def __init__(self, app: WSGIApplication, remote_addr: str = "127.0.0.1",
                 role: Role | None = None) -> None:
        super().__init__()
        self._app = app
        self._overrides: dict[str, str] = {"REMOTE_ADDR": remote_addr}
        if role is not None:
            self._overrides[ROLE_KEY] = roles_text(frozenset({role}))

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        url = urlsplit(request.url or "")
        body = request.body.encode() if isinstance(request.body, str) else request.body
        builder = EnvironBuilder(
            path=url.path or "/", query_string=url.query, method=request.method or "GET",
            headers=list(request.headers.items()), data=body or b"",
            base_url=f"{url.scheme}://{url.netloc}",
            # RAW_URI: the target as the client built it (werkzeug re-escapes the path).
            environ_overrides={**self._overrides,
                               "RAW_URI": url.path + (f"?{url.query}" if url.query else "")},
        )
        started = time.monotonic()
        try:
            app_iter, status, headers = run_wsgi_app(self._app, builder.get_environ(),
                                                     buffered=True)
            try:
                content = b"".join(app_iter)
            finally:
                close = getattr(app_iter, "close", None)
                if close is not None:
                    close()
        except ConnectionError as exc:
            raise requests.ConnectionError(
                f"Connection aborted: remote end closed connection without response ({exc})",
                request=request) from exc
        finally:
            builder.close()
        read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout
        if read_timeout is not None and time.monotonic() - started > read_timeout:
            raise requests.ReadTimeout(f"read timed out (read timeout={read_timeout})",
                                       request=request)
        return _response(request, status, headers, content)

    def close(self) -> None:
        """Nothing to release: no sockets are opened."""


def _response(request: requests.PreparedRequest, status: str, headers: Any,
              content: bytes) -> requests.Response:
    response = requests.Response()
    code, _, reason = status.partition(" ")
    response.status_code = int(code)
    response.reason = reason
    response.headers = CaseInsensitiveDict(dict(headers.items()))
    response.encoding = get_encoding_from_headers(response.headers)
    response.raw = io.BytesIO(content)
    response._content = content
    response.url = request.url or ""
    response.request = request
    return response
