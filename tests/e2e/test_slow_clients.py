"""Slow clients never delay an alert.

200 hostile connections trickle in: half send their headers a line every 1-2 s, half send
whole headers and then their body a byte every 1-2 s; each is reopened at its next turn when
the server drops it, so the pressure lasts. Ten more take an answer and never close. Meanwhile
20 real TradingView alerts, one after another, must each be answered "placed" within 1 s:
straight to gunicorn with the shipped config (bridge/frontdoor.py's worker), then through
nginx with the shipped limits (deploy/nginx/bridge-limits*.conf). The hostile connections come
from 127.0.0.2, the alerts from 127.0.0.1: on the internet they have different addresses too,
and nginx counts requests per address.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest
import requests

from bridge.frontdoor import Framing, Verdict
from bridge.webhooks.auth import TRADINGVIEW_IPS
from tests.e2e.helpers import ROOT, free_port, start, start_sandbox, stop, wait_for

SECRET = "e2e-slow-secret-0123456789"
NGINX = Path("/usr/sbin/nginx")
HOSTILE_ADDRESS = "127.0.0.2"
SLOW_HEADS = SLOW_BODIES = 100
NEVER_CLOSING = 10
ALERTS = 20
ANSWER_S = 1.0
GAP_S = 0.4  # 20 alerts then span ~9 s: past the 5 s after which slow heads are dropped
WARM_UP_S = 1.5
log = logging.getLogger(__name__)


# --- the hostile crowd -------------------------------------------------------------------------

_SLOW_HEAD = b"POST /webhook/tradingview HTTP/1.1\r\nHost: 127.0.0.1\r\n"
_SLOW_BODY = (b"POST /webhook/tradingview HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Content-Type: text/plain\r\nContent-Length: 4096\r\n\r\n")
_NEVER_CLOSING = b"GET /healthz HTTP/1.0\r\n\r\n"


class Crowd:
    """The hostile connections, driven from one thread. Every 1-2 s each sends its next piece
    (a header line, a body byte); one the server has dropped is reopened then."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.kinds = (["head"] * SLOW_HEADS + ["body"] * SLOW_BODIES
                      + ["quiet"] * NEVER_CLOSING)
        self.socks: list[socket.socket | None] = [None] * len(self.kinds)
        self.due = [0.0] * len(self.kinds)
        self.pieces = [0] * len(self.kinds)
        self.opened = self.dropped = self.failed_opens = 0
        self.answers: Counter[str] = Counter()  # what the server said before dropping one
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.random = random.Random(7)
        self.thread = threading.Thread(target=self._drive, name="crowd", daemon=True)

    def __enter__(self) -> Crowd:
        now = time.monotonic()
        for i in range(len(self.kinds)):
            self._open(i)
            self.due[i] = now + self.random.uniform(0.2, 2.0)
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.done.set()
        self.thread.join(10)
        for i in range(len(self.socks)):
            self._close(i)

    def open_now(self) -> int:
        return sum(1 for sock in self.socks if sock is not None)

    def _open(self, i: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(2)
            sock.bind((HOSTILE_ADDRESS, 0))
            sock.connect(("127.0.0.1", self.port))
            sock.sendall({"head": _SLOW_HEAD, "body": _SLOW_BODY}.get(self.kinds[i],
                                                                       _NEVER_CLOSING))
            sock.setblocking(False)
        except OSError:
            sock.close()
            self.failed_opens += 1
            return
        self.socks[i] = sock
        self.pieces[i] = 0
        self.opened += 1

    def _close(self, i: int) -> None:
        sock, self.socks[i] = self.socks[i], None
        if sock is not None:
            sock.close()

    def _dropped(self, i: int) -> bool:
        """Whether the server closed (or refused) this connection; reads what it answered."""
        sock = self.socks[i]
        if sock is None:
            return True
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return False
        except OSError:
            return True
        if self.kinds[i] == "quiet" and data:
            return False  # its answer; what it waits for next is the server's close
        if data:
            self.answers[data.split(b"\r\n", 1)[0].decode(errors="replace")] += 1
        return True

    def _turn(self, i: int) -> None:
        if self._dropped(i):
            self._close(i)
            self.dropped += 1
            self._open(i)
            return
        sock = self.socks[i]
        assert sock is not None
        self.pieces[i] += 1
        n = self.pieces[i]
        piece = {"head": f"X-Slow-{n}: {n}\r\n".encode(), "body": b"x"}.get(self.kinds[i])
        if piece is not None:
            try:
                sock.send(piece)
            except OSError:
                self._close(i)

    def _drive(self) -> None:
        try:
            while not self.done.is_set():
                now = time.monotonic()
                for i, due in enumerate(self.due):
                    if due <= now:
                        self._turn(i)
                        self.due[i] = now + self.random.uniform(1.0, 2.0)
                self.done.wait(0.02)
        except BaseException as error:  # reported by the test, not lost in a thread
            self.error = error


# --- the rig: sandbox, gunicorn with the shipped config, nginx ----------------------------------

@dataclass
class Bridge:
    url: str
    port: int
    log: Path


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    folder = tmp_path_factory.mktemp("slow")
    sandbox, _, printed = start_sandbox(folder / "sandbox.log", "--order-rate", "10")
    bridge_port = free_port()
    try:
        env = {**os.environ, **printed, "WEBHOOK_SECRET": SECRET,
               "DATABASE_URL": f"sqlite:///{folder / 'bridge.db'}",
               "DATA_DIR": str(folder / "data"), "BRIDGE_BIND": f"127.0.0.1:{bridge_port}",
               "KOTAK_ORDER_RATE": "10", "MARKET_HOURS": "ignore",
               "ENV_FILE": str(folder / "none.env"), "LOG_LEVEL": "WARNING"}
        for shipped in ("WEB_CONCURRENCY", "GUNICORN_THREADS"):  # 2 workers x 8 threads
            env.pop(shipped, None)
        bridge_log = folder / "bridge.log"
        process = start([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
                         "wsgi:app"], env, bridge_log)
        try:
            wait_for(f"http://127.0.0.1:{bridge_port}/readyz", process, bridge_log)
            yield Bridge(f"http://127.0.0.1:{bridge_port}", bridge_port, bridge_log)
        finally:
            stop(process)
        assert "Traceback" not in bridge_log.read_text()
    finally:
        stop(sandbox)


def _nginx_conf(folder: Path, port: int, upstream: str) -> str:
    limits = ROOT / "deploy" / "nginx"
    # As root, nginx's workers would run as nobody, who cannot enter pytest's private folder.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes 1;
pid {folder}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {limits / "bridge-limits-http.conf"};
    server {{
        listen 127.0.0.1:{port};
        include {limits / "bridge-limits.conf"};
        location / {{
            proxy_pass http://{upstream};
        }}
    }}
}}
"""


@pytest.fixture
def nginx(bridge: Bridge, tmp_path: Path) -> Iterator[Bridge]:
    if not NGINX.exists():
        pytest.skip("Debian's nginx is not installed (/usr/sbin/nginx); .ci/run installs it")
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(_nginx_conf(tmp_path, port, f"127.0.0.1:{bridge.port}"))
    nginx_log = tmp_path / "nginx.log"
    process = start([str(NGINX), "-p", f"{tmp_path}/", "-c", str(conf), "-e", "stderr",
                     "-g", "daemon off;"], dict(os.environ), nginx_log)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", process, nginx_log, deadline_s=20)
        yield Bridge(f"http://127.0.0.1:{port}", port, nginx_log)
    finally:
        stop(process)


# --- the alerts ---------------------------------------------------------------------------------

@dataclass
class Answer:
    alert_id: str
    seconds: float
    code: int | None
    status: str | None

    @property
    def good(self) -> bool:
        return self.code == 200 and self.status == "placed" and self.seconds < ANSWER_S


def _alert(url: str, alert_id: str) -> Answer:
    body = {"secret": SECRET, "symbol": "NSE:SBIN", "action": "BUY", "quantity": 1,
            "alert_id": alert_id}
    started = time.monotonic()
    try:
        response = requests.post(f"{url}/webhook/tradingview", data=json.dumps(body),
                                 headers={"Content-Type": "text/plain"}, timeout=3)
    except requests.RequestException:
        return Answer(alert_id, time.monotonic() - started, None, None)
    seconds = time.monotonic() - started
    try:
        status = response.json().get("status")
    except ValueError:
        status = None
    return Answer(alert_id, seconds, response.status_code, status)


def _alerts_beside_the_crowd(target: Bridge, tag: str) -> tuple[list[Answer], Crowd, int]:
    with Crowd(target.port) as crowd:
        time.sleep(WARM_UP_S)
        answers: list[Answer] = []
        fewest_open = len(crowd.kinds)
        for n in range(ALERTS):
            fewest_open = min(fewest_open, crowd.open_now())
            answers.append(_alert(target.url, f"slow-{tag}-{n}"))
            if sum(1 for answer in answers if not answer.good) >= 3:
                break  # failing: stop early rather than wait out every timeout
            time.sleep(GAP_S)
    return answers, crowd, fewest_open


def _check(answers: list[Answer], crowd: Crowd, fewest_open: int,
           record: Callable[[str, object], None], tag: str) -> None:
    slowest = max(answer.seconds for answer in answers)
    record(f"{tag}_slowest_answer_s", round(slowest, 3))
    log.info("%s: slowest of %d alerts %.3f s; crowd opened %d, dropped %d, answers %s, "
             "fewest open %d", tag, len(answers), slowest, crowd.opened, crowd.dropped,
             dict(crowd.answers), fewest_open)
    assert crowd.error is None, crowd.error
    assert crowd.failed_opens == 0
    # The pressure was on all along: nearly every hostile connection open at each alert.
    assert fewest_open >= 0.9 * len(crowd.kinds), fewest_open
    assert len(answers) == ALERTS and all(answer.good for answer in answers), \
        [answer for answer in answers if not answer.good]


@pytest.mark.e2e
@pytest.mark.slow
def test_alerts_are_answered_at_once_beside_200_slow_clients(
        bridge: Bridge, record_property: Callable[[str, object], None]) -> None:
    answers, crowd, fewest_open = _alerts_beside_the_crowd(bridge, "direct")

    _check(answers, crowd, fewest_open, record_property, "direct")
    # The front door dropped the slow heads at its deadline, with a 408.
    assert crowd.answers["HTTP/1.1 408 Request Timeout"] > 0, crowd.answers


@pytest.mark.e2e
@pytest.mark.slow
def test_alerts_are_answered_at_once_through_nginx_beside_200_slow_clients(
        nginx: Bridge, record_property: Callable[[str, object], None]) -> None:
    answers, crowd, fewest_open = _alerts_beside_the_crowd(nginx, "nginx")

    _check(answers, crowd, fewest_open, record_property, "nginx")
    assert crowd.dropped > 0  # nginx dropped the slow heads after its 5 s


# --- offline checks of the same pieces ----------------------------------------------------------

def test_nginx_exempts_exactly_tradingviews_addresses_from_the_per_address_count() -> None:
    text = (ROOT / "deploy" / "nginx" / "bridge-limits-http.conf").read_text()

    exempt = {line.split()[0] for line in text.splitlines() if line.strip().endswith('"";')}
    assert exempt == set(TRADINGVIEW_IPS)


@pytest.mark.parametrize("request_bytes", [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: 1\r\n\r\n",
    b"\r\nPOST / HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n2;x=y\r\nhi\r\n0\r\n\r\n",
])
def test_a_request_is_whole_at_its_last_byte_and_not_before(request_bytes: bytes) -> None:
    framing, received = Framing(), bytearray()
    for byte in request_bytes[:-1]:
        received.append(byte)
        assert framing.advance(received) is Verdict.WAIT, bytes(received)
    received.append(request_bytes[-1])
    assert framing.advance(received) is Verdict.WHOLE


@pytest.mark.parametrize(("request_bytes", "verdict"), [
    (b"GET / HTTP/1.1\nHost: a\n", Verdict.MALFORMED),
    (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", Verdict.MALFORMED),
    (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
     Verdict.MALFORMED),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", Verdict.MALFORMED),
    (b"POST / HTTP/1.1\r\nContent-Length: 300000\r\n\r\n", Verdict.TOO_LARGE),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFF\r\n", Verdict.TOO_LARGE),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000, Verdict.HEAD_TOO_LARGE),
])
def test_what_gunicorn_refuses_or_is_too_large_is_not_waited_for(
        request_bytes: bytes, verdict: Verdict) -> None:
    assert Framing().advance(request_bytes) is verdict
