"""Transport faults the sandbox can inject, for tests and drills.

Each fault matches requests by endpoint name (``place``, ``modify``, ``cancel``, ``orders``,
``order``, ``history``, ``trades``, ``positions``, ``holdings``, ``limits``, ``margin``,
``login``, ``validate``, ``client-ip``, ``oauth``, ``otp``, ``logout``, ``scrip-files``,
``scrip-file``, ``config``, ``quotes``, or ``*``) and applies to the next ``times`` of them
(``None``: until cleared):

=============  =============================================================================
kind           effect
=============  =============================================================================
latency        wait ``seconds`` before handling the request
http_error     answer ``status`` (500/502/503/504 ...) with an nginx-style HTML page, without
               handling the request
drop           close the connection without an answer; ``when="before"`` handling (nothing
               happened) or ``"after"`` (the order exists, the client cannot know)
stall          hold the answer ``seconds`` (longer than the client's read timeout), before or
               after handling
rate_limit     answer HTTP 429 "Too many requests to the API" without handling
=============  =============================================================================

Steady 429s above a rate are configuration (``SandboxConfig.order_rate``), not a fault.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

KINDS = frozenset({"latency", "http_error", "drop", "stall", "rate_limit"})


@dataclass
class Fault:
    kind: str
    endpoint: str = "*"
    times: int | None = 1
    seconds: float = 0.0
    status: int = 502
    when: str = "before"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(KINDS)}")
        if self.when not in ("before", "after"):
            raise ValueError("a fault's 'when' is 'before' or 'after'")
        if self.kind == "http_error" and not 400 <= self.status <= 599:
            raise ValueError("an http_error fault needs a 4xx/5xx status")


class FaultPlan:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, endpoint: str) -> list[Fault]:
        """Return (and use up) the faults that apply to one request of ``endpoint``."""
        taken: list[Fault] = []
        with self._lock:
            for fault in list(self._faults):
                if fault.endpoint not in ("*", endpoint):
                    continue
                taken.append(fault)
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
        return taken

    def active(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)
