"""The paper-mode smoke test: `make run` starts the bridge on a fresh .env, and an order
placed through the client lands in the paper broker's order book and positions."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from bridge.config import Settings, environment, load_settings
from bridge.domain import OrderRequest, OrderStatus, Product, Side
from bridge.wiring import build_services
from tests.e2e.helpers import ROOT, free_port, start, stop, wait_for, wait_for_text

pytestmark = pytest.mark.e2e


Running = tuple[str, Path, dict[str, str], subprocess.Popen[bytes]]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    port = free_port()
    env_file = tmp_path / ".env"
    overrides = {"ENV_FILE": str(env_file), "DATA_DIR": str(tmp_path / "data"),
                 "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}",
                 "BRIDGE_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2"}
    log = tmp_path / "make-run.log"
    process = start(["make", "--no-print-directory", "run"], {**os.environ, **overrides}, log)
    try:
        wait_for(f"http://127.0.0.1:{port}/readyz", process, log)
        yield f"http://127.0.0.1:{port}", log, overrides, process
    finally:
        stop(process)


def test_make_run_serves_paper_mode_and_orders_reach_the_paper_book(
        running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    base, log, overrides, process = running
    env_file = Path(overrides["ENV_FILE"])
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines()
                  if "=" in line and not line.startswith("#"))
    secret, password = values["WEBHOOK_SECRET"], values["ADMIN_PASSWORD"]
    assert len(secret) >= 24
    printed = wait_for_text(log, "Check the whole setup", process)
    # One banner, after the server's start-up lines, with the values that work as pasted.
    assert printed.count("Kotak signal bridge") == 1 and "<WEBHOOK_SECRET>" not in printed
    assert f"webhook secret:  {secret}" in printed and f"(password: {password})" in printed
    assert printed.rindex("Booting worker") < printed.index("Kotak signal bridge")
    assert " IST INFO gunicorn.error: Listening at: http://127.0.0.1:" in printed
    assert "+0000]" not in printed
    ready = requests.get(f"{base}/readyz", timeout=5).json()
    assert ready["status"] == "ready" and ready["mode"] == "paper"

    for key, value in overrides.items():
        monkeypatch.setenv(key, value)
    settings: Settings = load_settings(environment())
    services = build_services(settings)
    try:
        client = services.broker()
        assert client.sessions.status().valid  # the server's login, found in the journal
        sbin = services.instruments.current().resolve("NSE:SBIN")

        order_id = client.place_order(OrderRequest(sbin, Side.BUY, 7, Product.MIS,
                                                   tag="smoke"))

        (order,) = [o for o in client.order_book() if o.order_id == order_id]
        assert order.status is OrderStatus.COMPLETE and order.tag == "smoke"
        (position,) = client.positions()
        assert position.trading_symbol == "SBIN-EQ" and position.net_quantity == 7
        assert services.paper is not None
        assert services.paper.requests.snapshot("login") == []  # no second login
    finally:
        services.close()
    assert "Traceback" not in log.read_text()


def _fresh_copy(target: Path) -> Path:
    """The project as a new clone of this checkout would hold it (tracked and new files, none
    of the ignored ones: no .venv, no .env, no instance/)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
        check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _text(html: str) -> str:
    """A page as a person reads it: tags dropped, white space folded, entities read."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def _until(what: str, probe: Callable[[], str | None], deadline_s: float = 60) -> str:
    """Ask ``probe`` again until it answers (not None); a busy machine may take a while."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{what} within {deadline_s}s")


class _Browser:
    """The dashboard as a browser uses it: signed in once, every form posted with the CSRF
    token its page carries, redirects followed."""

    def __init__(self, base: str, password: str) -> None:
        import requests

        self.base, self.http = base, requests.Session()
        signed_in = self.post("/login", "/login", {"password": password})
        assert signed_in.status_code == 200 and signed_in.url == f"{base}/", signed_in.text

    def get(self, path: str) -> str:
        answer = self.http.get(f"{self.base}{path}", timeout=15)
        assert answer.status_code == 200, answer.text
        return answer.text

    def post(self, page: str, action: str, form: dict[str, str]) -> Any:
        """Post the form whose action is ``action`` on ``page``, as its button would."""
        html = self.get(page)
        target = re.search(rf'action="({re.escape(action)}(\?[^"]*)?)"', html)
        assert target is not None, f"no form posting to {action} on {page}"
        token = re.search(r'name="csrf" value="([^"]+)"', html[target.end():])
        assert token is not None, f"no CSRF token in the form posting to {action}"
        return self.http.post(f"{self.base}{unescape(target.group(1))}", timeout=30,
                              data={"csrf": token.group(1), **form})

    def live(self) -> dict[str, str]:
        """The overview's changing parts, as its poller fetches them."""
        answer = self.http.get(f"{self.base}/live", timeout=15)
        assert answer.status_code == 200, answer.text
        parts: dict[str, str] = answer.json()
        return parts

    def live_until(self, part: str, text: str, deadline_s: float = 60) -> str:
        """The overview's ``part`` as a person reads it, once it says ``text``."""
        def probe() -> str | None:
            shown = _text(self.live()[part])
            return shown if text in shown else None

        return _until(f"{text!r} in the overview's {part}", probe, deadline_s)

    def account_net_until(self, text: str) -> str:
        """The overview's account net (Kotak's book, not the by-strategy view), once it says
        ``text``: it is read from Kotak again after a few seconds (BROKER_TTL)."""
        def probe() -> str | None:
            shown = _text(self.live()["positions"]).split("By strategy")[0]
            return shown if text in shown else None

        return _until(f"{text!r} in the account net", probe)

    def settled(self, alert_id: str) -> tuple[str, str]:
        """Wait until the alert's row leaves received/queued/dispatching: its status and the
        path of its page."""
        pending = ("received", "queued", "dispatching")

        def row() -> str | None:
            found = re.search(rf'<tr class="status-(\w+)" data-alert-id="{re.escape(alert_id)}"'
                              r'.*?href="(/signals/\d+)"', self.live()["signals"], re.S)
            if found is None or found.group(1) in pending:
                return None
            return f"{found.group(1)} {found.group(2)}"

        status, path = _until(f"{alert_id} settled on the dashboard", row).split()
        return status, path


@pytest.mark.slow
@pytest.mark.timeout(480)  # builds a venv from nothing, on a machine shared with others
def test_fresh_clone_first_hour_curl_lot_refusal_squareoff_and_lifted_block(
        tmp_path: Path) -> None:
    """A new user's first hour, from only Python 3.11 and the project's files: `make run`
    builds its own venv and .env and prints a banner whose curls work as pasted; a NIFTY
    future off the lot size is refused, the dashboard naming the lot; a square-off from the
    dashboard that also stops new intraday entries flattens the paper book; a new MIS alert
    is refused saying how to lift the stop, and placed once the user lifts it there."""
    import requests

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    project = _fresh_copy(tmp_path / "bridge")
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env.update({"BRIDGE_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2",
                "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    log = tmp_path / "make-run.log"
    base = f"http://127.0.0.1:{port}"
    process = start(["make", "--no-print-directory", "run"], env, log, cwd=project)
    try:
        wait_for(f"{base}/readyz", process, log, deadline_s=300)
        printed = wait_for_text(log, "Check the whole setup", process)
        # The banner is printed once, last; the lines nearest the cursor are the ones pasted.
        banner = printed[printed.rindex("Kotak signal bridge"):]
        banner = banner[:banner.index("Check the whole setup")]
        assert printed.count("Kotak signal bridge") == 1
        assert f"dashboard:       {base}/" in banner
        curls = [line.strip() for line in banner.splitlines() if line.strip().startswith("curl ")]
        assert len(curls) == 2 and "/webhook/tradingview" in curls[0], curls
        assert "/api/v1/ping" in curls[-1], curls

        def pasted(curl_line: str) -> Any:
            sent = subprocess.run(["bash", "-c", curl_line], capture_output=True, text=True,
                                  timeout=30, check=True)
            return json.loads(sent.stdout)

        answer = pasted(curls[0])
        # placed, or queued when the paper broker took longer than RESPONSE_BUDGET_MS on a
        # busy machine (the dispatcher sends it a moment later)
        assert answer["status"] in ("placed", "queued"), answer
        order_id = answer["orders"][0]["order_id"] if answer["orders"] else None
        pong = pasted(curls[-1])  # the last thing printed works too
        assert (pong["status"], pong["data"]["message"], pong["data"]["mode"]) == \
            ("success", "pong", "paper"), pong

        # The password the banner printed opens the dashboard.
        shown = re.search(r"\(password: ([^)\s]+)\)", banner)
        secret = re.search(r"webhook secret:  (\S+)", banner)
        assert shown is not None and secret is not None
        browser = _Browser(base, shown.group(1))
        status, _ = browser.settled("try-1")
        assert status == "placed", status
        shown_order = browser.live_until("signals", "complete")
        assert "try-1" in shown_order and (order_id is None or order_id in shown_order)

        def alert(alert_id: str, **fields: Any) -> tuple[int, Any]:
            sent = requests.post(f"{base}/webhook/tradingview", timeout=30, json={
                "secret": secret.group(1), "action": "buy", "alert_id": alert_id, **fields})
            return sent.status_code, sent.json()

        # 1. A NIFTY future off its lot size: refused, and the signal's page names the lot.
        code, answer = alert("nifty-50", symbol="NIFTY1!", exchange="NFO", quantity=50)
        assert (code, answer["status"]) == (422, "rejected"), answer
        status, path = browser.settled("nifty-50")
        assert status == "rejected"
        shown_refusal = _text(browser.get(path))
        assert "quantity 50 is not a whole number of lots: NFO:NIFTY" in shown_refusal
        assert "has a lot size of 65 (use 65 or 130)" in shown_refusal

        # 2. The curl's intraday SBIN stands in the paper book; square off from the dashboard,
        # ticking "Also stop new intraday entries until tomorrow" (one confirmation).
        browser.account_net_until("NSE:SBIN-EQ MIS 1 ")
        form = browser.get("/")
        assert "Also stop new intraday entries until tomorrow" in _text(form)
        pressed = browser.post("/", "/actions/squareoff",
                               {"exchange": "", "block_entries": "yes", "confirm": "yes"})
        assert pressed.status_code == 200 and pressed.url == f"{base}/", pressed.text
        assert "New intraday entries are stopped until the next trading day" in \
            _text(pressed.text)
        report = browser.live_until("squareoff", "FLAT (verified", deadline_s=90)
        assert "succeeded" in report and "close SELL 1 NSE:SBIN-EQ" in report, report
        browser.account_net_until("NSE:SBIN-EQ MIS 0 ")

        # 3. A new intraday entry is refused, saying how to lift the stop.
        code, answer = alert("mis-after", symbol="NSE:SBIN", quantity=1, product="MIS")
        assert (code, answer["error"]["code"]) == (409, "after_squareoff"), answer
        assert "Allow new entries again" in answer["error"]["message"]
        status, path = browser.settled("mis-after")
        assert status == "rejected"
        assert "Allow new entries again" in _text(browser.get(path))
        assert "New intraday (MIS) entries are stopped" in _text(browser.get("/"))

        # 4. The user lifts the stop from the dashboard.
        lifted = browser.post("/", "/actions/entries", {})
        assert lifted.status_code == 200 and lifted.url == f"{base}/", lifted.text
        lifted_page = _text(lifted.text)
        assert "New intraday entries are allowed again on" in lifted_page
        assert "New intraday (MIS) entries are stopped" not in lifted_page

        # 5. The same alert, with a new alert_id, is placed and shows on the dashboard.
        code, answer = alert("mis-again", symbol="NSE:SBIN", quantity=1, product="MIS")
        assert code in (200, 202) and answer["status"] in ("placed", "queued"), answer
        status, path = browser.settled("mis-again")
        assert status == "placed", status
        entry = _text(browser.get(path))
        assert "BUY 1 NSE:SBIN-EQ MIS" in entry, entry
        assert all(order["order_id"] in entry for order in answer["orders"]
                   if order["order_id"] is not None)
    finally:
        stop(process)
    assert "Traceback" not in log.read_text()


def test_a_wrong_database_url_stops_the_start_with_one_line_naming_it(tmp_path: Path) -> None:
    env = {**os.environ, "ENV_FILE": str(tmp_path / "none.env"),
           "WEBHOOK_SECRET": "start-test-secret-0123456789", "DATA_DIR": str(tmp_path),
           "BRIDGE_BIND": f"127.0.0.1:{free_port()}",
           "DATABASE_URL": f"postgresql://bridge:pa55-word@127.0.0.1:{free_port()}/bridge"}

    done = subprocess.run([str(ROOT / ".venv/bin/gunicorn"), "-c", "deploy/gunicorn.conf.py",
                           "wsgi:app"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)

    assert done.returncode == 2
    said = (done.stdout + done.stderr).strip().splitlines()
    assert len(said) == 1 and said[0].startswith("the bridge cannot start: DATABASE_URL")
    assert "pa55-word" not in said[0] and "does not answer" in said[0]
