"""The copies of one fan-out follow their orders only once every copy has been sent.

Every copy runs on its own thread of one process, and all of them share that process's
interpreter: a copy already sent that asks Kotak how its order went takes the interpreter
from a copy still waiting to go. Holding the follow-ups back until the last copy has left
(or the answer's deadline) gets the last account's order to Kotak sooner, which is the
slippage the advisor's clients pay; the follow-ups then run side by side as before.
"""

from __future__ import annotations

import threading
import time


class SendBarrier:
    """Counts the copies of one fan-out still to be sent."""

    def __init__(self, copies: int) -> None:
        self._left = copies
        self._condition = threading.Condition()

    def arrival(self) -> Arrival:
        """One copy's part: it arrives once, however its sending ends."""
        return Arrival(self)

    def _arrive(self) -> None:
        with self._condition:
            self._left -= 1
            if self._left <= 0:
                self._condition.notify_all()

    def _wait(self, until: float) -> None:
        with self._condition:
            while self._left > 0:
                left = until - time.monotonic()
                if left <= 0:
                    return
                self._condition.wait(left)


class Arrival:
    """One copy's arrival at its fan-out's :class:`SendBarrier`."""

    def __init__(self, barrier: SendBarrier) -> None:
        self._barrier = barrier
        self._arrived = False
        self._lock = threading.Lock()

    def arrive(self) -> None:
        """This copy has sent what it will send (idempotent)."""
        with self._lock:
            if self._arrived:
                return
            self._arrived = True
        self._barrier._arrive()

    def arrive_and_wait(self, until: float) -> None:
        """Arrive, then wait until every copy has, or ``until`` (monotonic)."""
        self.arrive()
        self._barrier._wait(until)
