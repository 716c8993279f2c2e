"""Starting real processes for end-to-end tests, with deadlines on every wait."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(command: list[str], env: dict[str, str], log: Path,
          cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own process group, output to ``log``."""
    with log.open("wb") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path,
             deadline_s: float = 90.0, status: int = 200) -> requests.Response:
    """Poll ``url`` until it answers ``status``; fail with the process log if it never does."""
    deadline = time.monotonic() + deadline_s
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"process exited ({process.returncode}):\n{log.read_text()}")
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == status:
                return response
            last = f"HTTP {response.status_code}: {response.text[:300]}"
        except requests.ConnectionError:
            last = "connection refused"
        except requests.Timeout:  # a worker still loading on a busy machine: ask again
            last = "no answer within 2 s"
        time.sleep(0.25)
    raise AssertionError(f"{url} not ready in {deadline_s}s ({last}):\n{log.read_text()}")


def wait_for_text(log: Path, text: str, process: subprocess.Popen[bytes],
                  deadline_s: float = 30.0) -> str:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        content = log.read_text(errors="replace") if log.exists() else ""
        if text in content:
            return content
        if process.poll() is not None:
            raise AssertionError(f"process exited ({process.returncode}):\n{content}")
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared:\n{log.read_text(errors='replace')}")


def start_sandbox(log: Path, *options: str,
                  env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str,
                                                              dict[str, str]]:
    """Start ``python -m bridge.kotak.sandbox`` on a free port; return the process, its login
    host's URL and the settings it printed for a live-mode bridge (``KOTAK_*``, ``BROKER_*``)."""
    port = free_port()
    process = start([sys.executable, "-m", "bridge.kotak.sandbox", "--port", str(port),
                     *options], {**(env if env is not None else os.environ), "PYTHONPATH": "."},
                    log)
    try:
        text = wait_for_text(log, "(legacy OTP:", process)
    except BaseException:
        stop(process)
        raise
    printed = {key.strip(): value.strip() for key, _, value in
               (line.partition("=") for line in text.splitlines()) if key.strip().isupper()}
    return process, f"http://127.0.0.1:{port}", printed
