"""`bridge doctor`, run as a person would, against a temporary SQLite journal and
small loopback servers standing in for the IP echo service, Kotak's login host and the
public address (plain http, and https with a self-signed certificate)."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sqlite3
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import insert

from bridge.cli import cli
from bridge.journal.db import create_db_engine
from bridge.journal.schema import create_schema
from bridge.journal.tables import orders
from bridge.kotak.sandbox import SandboxAccount, SandboxServer

SECRET = "doctor-test-secret-0123456789"
API_KEY = "access-token-never-shown-42"
PUBLIC_IP = "203.0.113.7"
BRIDGE_HEALTH = '{"status": "ok"}'


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


NOWHERE = f"http://127.0.0.1:{_closed_port()}/"  # nothing listens there


@dataclass
class Fake:
    """What the loopback server answers: path -> (status, body), and how wrong its clock is."""

    url: str = ""
    routes: dict[str, tuple[int, str]] = field(default_factory=dict)
    clock_offset_s: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, *, with_body: bool) -> None:
        fake = self.server.fake
        status, body = fake.routes.get(self.path, (404, "not found"))
        data = body.encode()
        self.send_response_only(status)  # not send_response: it stamps its own Date
        self.send_header("Date", formatdate(time.time() + fake.clock_offset_s, usegmt=True))
        self.send_header("Content-Type", "application/json" if body.startswith("{")
                         else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if with_body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: Fake


def _serve(tls: ssl.SSLContext | None = None) -> Iterator[Fake]:
    server = _Server(("127.0.0.1", 0), _Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls is not None else "http"
    server.fake = Fake(url=f"{scheme}://127.0.0.1:{server.server_port}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def fake() -> Iterator[Fake]:
    yield from _serve()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"WEBHOOK_SECRET": SECRET, "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'bridge.db'}",
            "ENV_FILE": str(tmp_path / "none.env"), "ADMIN_PASSWORD": "admin-password-123"}


def doctor(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["doctor", "--timeout", "2", *args], env=env,
                                catch_exceptions=False)
    assert SECRET not in result.output and API_KEY not in result.output
    # Findings are single long lines; compare them as a reader would, whatever the spacing.
    return result.exit_code, " ".join(result.output.split())


def test_public_url_on_plain_http_is_a_problem_even_when_it_answers(
        env: dict[str, str], fake: Fake) -> None:
    fake.routes = {"/ip": (200, PUBLIC_IP), "/healthz": (200, BRIDGE_HEALTH)}

    code, out = doctor({**env, "PUBLIC_URL": fake.url, "TRUSTED_PROXIES": "1"},
                       "--ip-echo-url", f"{fake.url}/ip")

    assert code == 1
    assert f"problem public address: PUBLIC_URL {fake.url} is not https" in out
    assert "TradingView only calls ports 80 and 443" in out
    assert "127.0.0.1, which only this machine can reach" in out
    assert f"ok public address: {fake.url}/healthz answers 200" in out
    assert f"this machine's public IP is {PUBLIC_IP}" in out and "static IP" in out
    assert "ok database: the journal (SQLite" in out
    assert "problem(s)" in out


def test_a_paper_setup_without_public_url_passes_with_a_pointer_to_the_guide(
        env: dict[str, str], fake: Fake) -> None:
    fake.routes = {"/ip": (200, json.dumps({"ip": PUBLIC_IP}))}
    assert CliRunner().invoke(cli, ["login"], env=env).exit_code == 0

    code, out = doctor(env, "--ip-echo-url", f"{fake.url}/ip")

    assert code == 0
    assert "warning public address: PUBLIC_URL is not set: TradingView cannot reach " \
           "http://127.0.0.1:5000" in out and "deploy/README.md" in out
    assert f"public IP is {PUBLIC_IP}" in out and "Paper mode does not need it" in out
    assert "ok clock: right to within 2 s" in out
    assert "ok settings: valid; mode paper" in out
    assert "ok kotak session: account default: paper session valid until" in out
    assert "no problems" in out


@pytest.mark.parametrize(("offset", "level", "code"), [(120, "problem", 1), (10, "warning", 0)])
def test_a_wrong_clock_is_explained_with_totp(env: dict[str, str], fake: Fake, offset: int,
                                              level: str, code: int) -> None:
    fake.routes = {"/ip": (200, PUBLIC_IP)}
    fake.clock_offset_s = offset

    exit_code, out = doctor(env, "--ip-echo-url", f"{fake.url}/ip")

    assert exit_code == code
    assert f"{level} clock: this machine's clock is {offset} s behind 127.0.0.1" in out
    assert "TOTP codes last 30 s" in out and "timedatectl set-ntp true" in out


def test_bad_settings_are_each_listed_and_the_rest_is_not_tried(env: dict[str, str]) -> None:
    code, out = doctor({**env, "BRIDGE_MODE": "papr", "KOTAK_MPIN": "98765"},
                       "--ip-echo-url", NOWHERE)

    assert code == 1
    assert "problem settings: BRIDGE_MODE='papr'" in out
    assert "problem settings: KOTAK_MPIN must be the 6-digit Neo MPIN" in out
    assert "98765" not in out and "database" not in out


def test_a_locked_journal_is_explained(env: dict[str, str], tmp_path: Path) -> None:
    engine = create_db_engine(env["DATABASE_URL"])
    create_schema(engine)
    engine.dispose()
    holder = sqlite3.connect(tmp_path / "data" / "bridge.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        code, out = doctor(env, "--ip-echo-url", NOWHERE, "--timeout", "0.3")
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert code == 1
    assert "problem database: the journal" in out and "is locked" in out
    assert "a second copy of the bridge" in out and "use PostgreSQL" in out
    assert "checks need the database and were skipped" in out


def test_a_data_folder_the_user_cannot_write_is_explained(
        env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    real_access = os.access

    def access(path: object, mode: int, **kw: object) -> bool:
        # The test may run as root, whom the kernel lets write anywhere: deny it here.
        if Path(str(path)) == folder and mode & os.W_OK:
            return False
        return real_access(path, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", access)
    code, out = doctor(env, "--ip-echo-url", NOWHERE)

    assert code == 1
    assert f"problem database: the folder {folder} is not writable by user" in out
    assert "sudo chown -R" in out and "-wal and -shm" in out


def test_live_mode_names_the_missing_login_and_kotaks_ip_refusals(
        env: dict[str, str], fake: Fake) -> None:
    fake.routes = {"/ip": (200, PUBLIC_IP), "/": (404, "")}
    engine = create_db_engine(env["DATABASE_URL"])
    create_schema(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(insert(orders).values(
            account="default", tag="t1", exchange="NSE", trading_symbol="SBIN-EQ", side="BUY",
            quantity=1, product="MIS", order_type="MKT", is_exit=False, status="rejected",
            error_code="broker_rejected", created_at=now, updated_at=now,
            reason="Kotak refused (100008): unauthorized. This machine's IP address is not "
                   "whitelisted"))
    engine.dispose()
    live = {**env, "BRIDGE_MODE": "live", "BROKER_API_KEY": API_KEY, "KOTAK_UCC": "AB123",
            "KOTAK_MOBILE": "9876543210", "KOTAK_LOGIN_URL": fake.url}

    code, out = doctor(live, "--ip-echo-url", f"{fake.url}/ip")

    assert code == 1
    assert "problem kotak session: account default: no valid Kotak session" in out
    assert "`make login`" in out
    assert "warning kotak login: account default: no unattended login (missing " \
           "KOTAK_TOTP_SECRET, KOTAK_MPIN), so a person must log in every trading day" in out
    assert "Kotak refused 1 order(s) in the last 7 days with error 100008" in out
    assert f"register {PUBLIC_IP} as the static IP" in out
    assert "problem scheduler: no scheduler is running" in out
    assert "problem scrip master" in out
    assert "ok clock: right to within 2 s (127.0.0.1" in out


def test_an_unreachable_ip_echo_is_only_a_warning(env: dict[str, str]) -> None:
    code, out = doctor(env, "--ip-echo-url", NOWHERE)

    assert code == 0
    assert "warning public IP: could not learn this machine's public IP from " \
           f"{NOWHERE} (could not connect)" in out


def test_https_on_a_plain_http_port_says_tls_is_missing(env: dict[str, str],
                                                         fake: Fake) -> None:
    fake.routes = {"/healthz": (200, BRIDGE_HEALTH)}
    public = fake.url.replace("http://", "https://")

    code, out = doctor({**env, "PUBLIC_URL": public, "TRUSTED_PROXIES": "1"},
                       "--ip-echo-url", NOWHERE)

    assert code == 1
    assert "answers, but not with TLS (plain http on the https port?)" in out


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bridge.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


def test_an_untrusted_certificate_is_explained(env: dict[str, str], tmp_path: Path) -> None:
    for tls_fake in _serve(_self_signed(tmp_path)):
        tls_fake.routes = {"/healthz": (200, BRIDGE_HEALTH)}
        code, out = doctor({**env, "PUBLIC_URL": tls_fake.url, "TRUSTED_PROXIES": "1"},
                           "--ip-echo-url", NOWHERE)

        assert code == 1
        assert "problem public address: the certificate of 127.0.0.1 is not accepted" in out
        assert "Let's Encrypt" in out


def test_live_mode_with_a_session_and_unattended_login(
        env: dict[str, str], fake: Fake, server: SandboxServer, account: SandboxAccount) -> None:
    fake.routes = {"/ip": (200, PUBLIC_IP)}
    live = {**env, "BRIDGE_MODE": "live", "BROKER_API_KEY": account.consumer_key,
            "KOTAK_UCC": account.ucc, "KOTAK_MOBILE": account.mobile,
            "KOTAK_MPIN": account.mpin, "KOTAK_TOTP_SECRET": account.totp_secret,
            **server.settings()}
    assert CliRunner().invoke(cli, ["login"], env=live).exit_code == 0
    logins = len(server.sandbox.requests.snapshot("login"))
    assert logins == 1

    code, out = doctor(live, "--ip-echo-url", f"{fake.url}/ip")

    assert "ok kotak session: account default: logged in to Kotak, valid until" in out
    assert "ok kotak login: account default: unattended login is set up" in out
    # Kotak's own view of the address (get-client-ip) beside the echo service's.
    assert "ok kotak IP: account default: Kotak sees this machine at 127.0.0.1" in out
    assert (f"warning public IP: {fake.url}/ip sees this machine at {PUBLIC_IP}, but Kotak "
            "sees 127.0.0.1") in out
    assert account.mpin not in out and account.totp_secret not in out
    assert len(server.sandbox.requests.snapshot("login")) == logins  # the doctor never logs in
    assert code == 1  # no scheduler and no scrip master: nothing is running here
