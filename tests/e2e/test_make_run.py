"""The paper-mode smoke test: `make run` starts the bridge on a fresh .env, and an order
placed through the client lands in the paper broker's order book and positions."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

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


@pytest.mark.slow
@pytest.mark.timeout(420)  # builds a venv from nothing, on a machine shared with others
def test_fresh_clone_make_run_then_the_printed_curl_shows_in_the_dashboard(
        tmp_path: Path) -> None:
    """Only Python 3.11 and the project's files: `make run` builds its own venv and .env,
    prints a curl line; that curl places a paper order the dashboard then shows."""
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
    process = start(["make", "--no-print-directory", "run"], env, log, cwd=project)
    try:
        wait_for(f"http://127.0.0.1:{port}/readyz", process, log, deadline_s=300)
        printed = wait_for_text(log, "Check the whole setup", process)
        assert f"dashboard:       http://127.0.0.1:{port}/" in printed
        # The curl nearest the cursor that places an order: it must work as pasted.
        curl_line = [line.strip() for line in printed.splitlines()
                     if line.strip().startswith("curl ") and "/webhook/" in line][-1]
        sent = subprocess.run(["bash", "-c", curl_line], capture_output=True, text=True,
                              timeout=30, check=True)
        answer = json.loads(sent.stdout)
        # placed, or queued when the paper broker took longer than RESPONSE_BUDGET_MS on a
        # busy machine (the dispatcher sends it a moment later)
        assert answer["status"] in ("placed", "queued"), answer
        order_id = answer["orders"][0]["order_id"]

        # The password the banner printed opens the dashboard.
        shown = re.search(r"\(password: ([^)\s]+)\)", printed)
        assert shown is not None
        browser = requests.Session()
        base = f"http://127.0.0.1:{port}"
        token = re.search(r'name="csrf" value="([^"]+)"',
                          browser.get(f"{base}/login", timeout=10).text)
        assert token is not None
        signed_in = browser.post(f"{base}/login", timeout=10,
                                 data={"csrf": token.group(1), "password": shown.group(1)})
        assert signed_in.status_code == 200 and signed_in.url == f"{base}/"
        page, deadline = signed_in.text, time.monotonic() + 30
        while "complete" not in page and time.monotonic() < deadline:
            time.sleep(0.5)
            page = browser.get(f"{base}/", timeout=10).text
        assert "try-1" in page and "complete" in page
        assert order_id is None or order_id in page
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
