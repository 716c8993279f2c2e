"""KOTAK_PROXY: every Kotak call goes through the configured forward proxy (a static-IP
egress for a home PC), and no proxy from the environment attaches by itself. The proxy here
is a tiny loopback forwarder in front of the sandbox."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bridge.config import ConfigError, load_settings
from bridge.kotak.sandbox import SandboxAccount, SandboxServer
from bridge.wiring import build_services
from tests.conftest import serving


class _Forwarder(BaseHTTPRequestHandler):
    """A plain http forward proxy: the request line carries the absolute target URI."""

    server: _Proxy

    def _relay(self) -> None:
        target = urlsplit(self.path)
        self.server.seen.append(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {key: value for key, value in self.headers.items()
                   if key.lower() not in ("proxy-connection", "connection")}
        upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
        try:
            upstream.request(self.command, target.path + (f"?{target.query}" if target.query
                                                          else ""), body, headers)
            reply = upstream.getresponse()
            data = reply.read()
        finally:
            upstream.close()
        self.send_response_only(reply.status, reply.reason)
        for key, value in reply.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _relay

    def log_message(self, *_: object) -> None:
        return


class _Proxy(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[str]


@pytest.fixture
def proxy() -> Iterator[_Proxy]:
    server = _Proxy(("127.0.0.1", 0), _Forwarder)
    server.seen = []
    with serving(server):
        yield server


def live_env(server: SandboxServer, account: SandboxAccount, tmp_path: Path) -> dict[str, str]:
    return {"WEBHOOK_SECRET": "proxy-test-secret-0123456789", "BRIDGE_MODE": "live",
            "DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}",
            **server.settings(), "BROKER_API_KEY": account.consumer_key,
            "KOTAK_UCC": account.ucc, "KOTAK_MOBILE": account.mobile,
            "KOTAK_MPIN": account.mpin, "KOTAK_TOTP_SECRET": account.totp_secret}


def test_every_kotak_call_goes_through_kotak_proxy(
        server: SandboxServer, account: SandboxAccount, proxy: _Proxy, tmp_path: Path) -> None:
    port = proxy.server_address[1]
    settings = load_settings({**live_env(server, account, tmp_path),
                              "KOTAK_PROXY": f"http://127.0.0.1:{port}"})
    services = build_services(settings)
    try:
        client = services.broker()
        client.sessions.login()
        services.instruments.refresh(client)
        client.positions()
    finally:
        services.close()

    reached = server.sandbox.requests.snapshot()
    assert len(reached) >= 4  # login, validate, the file list and its files, positions
    assert len(proxy.seen) == len(reached)
    assert all(seen.startswith("http://127.0.0.1:") for seen in proxy.seen)


def test_a_proxy_from_the_environment_does_not_attach_to_kotak_calls(
        server: SandboxServer, account: SandboxAccount, proxy: _Proxy, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.setenv("NO_PROXY", "")
    services = build_services(load_settings(live_env(server, account, tmp_path)))
    try:
        services.broker().sessions.login()
    finally:
        services.close()

    assert server.sandbox.requests.snapshot() and proxy.seen == []


@pytest.mark.parametrize("value", ["socks5://127.0.0.1:1080", "http://127.0.0.1",
                                   "http://user:pa55word@127.0.0.1:3128/path",
                                   "http://127.0.0.1:port"])
def test_a_bad_kotak_proxy_stops_the_start_without_showing_it(value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"WEBHOOK_SECRET": "proxy-test-secret-0123456789", "KOTAK_PROXY": value})

    (problem,) = refused.value.problems
    assert problem.startswith("KOTAK_PROXY ") and "value not shown" in problem
    assert "pa55word" not in problem


def test_the_proxy_password_is_a_secret_the_logs_mask() -> None:
    settings = load_settings({"WEBHOOK_SECRET": "proxy-test-secret-0123456789",
                              "KOTAK_PROXY": "http://me:pa55word-42@203.0.113.7:3128"})

    assert settings.kotak.proxy == "http://me:pa55word-42@203.0.113.7:3128"
    assert "pa55word-42" in settings.secrets()
