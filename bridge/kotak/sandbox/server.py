"""Serve a sandbox on a loopback port from a background thread (tests, drills)."""

from __future__ import annotations

import threading
from types import TracebackType

from werkzeug.serving import BaseWSGIServer, make_server

from bridge.kotak.sandbox.broker import Sandbox


class SandboxServer:
    """A sandbox listening on ``host:port`` (port 0: any free port) until stopped."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self._server: BaseWSGIServer = make_server(host, port, sandbox, threaded=True)
        # A short poll interval keeps stop() quick (serve_forever checks for shutdown at it).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="kotak-sandbox", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    @property
    def port(self) -> int:
        return int(self._server.port)

    def start(self) -> SandboxServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        """Serve in the calling thread (the standalone command)."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
