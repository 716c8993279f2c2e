"""Serve a sandbox on a loopback port from a background thread (tests, drills, benchmarks).

Kotak's servers keep HTTP/1.1 connections alive, and the bridge's client pools them; werkzeug's
development server closes every connection after one answer, so a test against it would pay
a TCP handshake per call that production never pays, and would never exercise a reused
connection. This server keeps connections alive the way a production server does: one thread
per connection, answers framed by ``Content-Length``, ``Connection: close`` honoured, idle
connections closed after a while, and every open connection cut when the server stops (so a
"broker down" drill finds it down, not still answering on a pooled connection).
"""

from __future__ import annotations

import contextlib
import http.server
import io
import logging
import socket
import socketserver
import sys
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from bridge.kotak.sandbox.broker import Sandbox
from bridge.kotak.sandbox.hosts import ROLE_KEY, Hosts, Role, roles_text

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 30.0
MAX_BODY = 64 * 1024 * 1024
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """One listening socket: one of Kotak's hosts (its ``role``)."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # socketserver's default backlog is 5: a fleet of accounts connecting at once (each
    # with its own connection pool) would overflow it and see connect timeouts, which
    # Kotak's servers never cause.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], app: WSGIApplication,
                 roles: frozenset[Role]) -> None:
        self.app = app
        self.roles = roles_text(roles)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, is_open: bool) -> None:
        with self._open_lock:
            if is_open:
                self._open.add(connection)
            else:
                self._open.discard(connection)

    def cut_all(self) -> None:
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S
    # Headers and body leave in one segment, at once: split small writes meet Nagle's
    # algorithm and the client's delayed ACK, 40 ms a call.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    def _serve(self) -> None:
        if self.headers.get("Transfer-Encoding"):
            self.send_error(411, "Content-Length required")
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            self.send_error(413)
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            # The sender went away mid-request (a process killed while sending): the web
            # server in front of Kotak's application never passes on a request cut short,
            # so nothing of it is handled, answered or logged here either.
            self.close_connection = True
            return
        answer: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Any:
            answer[:] = [status, headers]
            return lambda data: None

        try:
            chunks = self.server.app(self._environ(body), start_response)
            try:
                content = b"".join(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        except ConnectionAbortedError:
            # An injected "drop": the socket is already shut, nothing more is sent.
            self.close_connection = True
            return
        status, headers = answer
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        for key, value in headers:
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def _environ(self, body: bytes) -> WSGIEnvironment:
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": str(self.client_address[1]),
            "RAW_URI": self.path,
            ROLE_KEY: self.server.roles,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "werkzeug.socket": self.connection,
        }
        for key, value in self.headers.items():
            name = "HTTP_" + key.upper().replace("-", "_")
            if name in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                continue
            environ[name] = f"{environ[name]},{value}" if name in environ else value
        return environ

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address[0], format % args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.info('"%s" %s', self.requestline, code)


class SandboxServer:
    """A sandbox listening on loopback, one port per Kotak host (see hosts.py).

    ``port`` is the login host's (0: any free port); the other hosts take free ports (the
    standalone command prints them), so they never collide with a port someone else chose.

    ``one_entry``: the login host's port also plays the legacy OAuth2 host and gateway, so a
    drill may point all three ``KOTAK_*_URL`` settings at the one port it chose (the design's
    contract for the standalone sandbox). The trading host and the files host, which Kotak
    names in its answers, stay apart either way, and tests keep every host apart.
    """

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0, *,
                 one_entry: bool = False) -> None:
        self.sandbox = sandbox
        self._servers: dict[Role, _Server] = {}
        for role in Role:
            roles = frozenset({role})
            if one_entry and role is Role.LOGIN:
                roles = frozenset({Role.LOGIN, Role.OAUTH, Role.GATEWAY})
            self._servers[role] = _Server((host, port if role is Role.LOGIN else 0), sandbox,
                                          roles)
        sandbox.hosts = Hosts({role: _url(server) for role, server in self._servers.items()})
        # A short poll interval keeps stop() quick (serve_forever checks for shutdown at it).
        self._threads = [threading.Thread(target=server.serve_forever, args=(0.05,),
                                          name=f"kotak-sandbox-{role}", daemon=True)
                         for role, server in self._servers.items()]

    @property
    def url(self) -> str:
        """The login host (``KOTAK_LOGIN_URL``)."""
        return self.url_of(Role.LOGIN)

    @property
    def oauth_url(self) -> str:
        """The legacy OAuth2 host (``KOTAK_OAUTH_URL``)."""
        return self.url_of(Role.OAUTH)

    @property
    def gateway_url(self) -> str:
        """The legacy gateway (``KOTAK_GATEWAY_URL``)."""
        return self.url_of(Role.GATEWAY)

    def url_of(self, role: Role) -> str:
        return _url(self._servers[role])

    def settings(self) -> dict[str, str]:
        """The bridge settings that point it at this sandbox."""
        return {"KOTAK_LOGIN_URL": self.url, "KOTAK_OAUTH_URL": self.oauth_url,
                "KOTAK_GATEWAY_URL": self.gateway_url}

    @property
    def port(self) -> int:
        return int(self._servers[Role.LOGIN].server_address[1])

    def start(self) -> SandboxServer:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        for server in self._servers.values():
            server.shutdown()
            server.server_close()
            server.cut_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def serve_forever(self) -> None:
        """Serve until interrupted (the standalone command)."""
        self.start()
        try:
            while any(thread.is_alive() for thread in self._threads):
                for thread in self._threads:
                    thread.join(timeout=0.5)
        finally:
            self.stop()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def _url(server: _Server) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"
