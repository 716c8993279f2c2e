"""The signal journal: every signal, every order sent for it, and every change to either.

A signal is written before the caller is answered, and its orders before they are sent
(state ``sending`` just before the HTTP call), so a crash at any point leaves a record that
recovery can finish: queued signals are sent or expired, ``sending`` orders become
``unknown`` and are settled from the broker's order book by their tag, never sent again.

:class:`Journal` builds one store per concern on one engine and clock and holds them as
attributes (``journal.signals.admit_many(...)``, ``journal.queue.take_head(...)``); it has
no methods of its own. It lives in this module rather than in the package's ``__init__`` so
that importing one part of the journal (its tables, its schema, the sessions store) does not
import every store with it.
"""

from __future__ import annotations

from sqlalchemy import Engine

from bridge.clock import Clock
from bridge.journal.auth_failures import AuthFailureStore
from bridge.journal.entries import EntryStopStore
from bridge.journal.history import HistoryStore
from bridge.journal.orders import OrderStore
from bridge.journal.processes import ProcessStore
from bridge.journal.queue import QueueStore
from bridge.journal.signals import SignalStore
from bridge.journal.switches import SwitchStore
from bridge.journal.tokens import Turns


class Journal:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        # The signal, order and queue stores take and answer rate-limit tokens: one record
        # of this process's tokens, so that an answer recorded by one wakes senders of another.
        self.turns = turns = Turns()
        self.signals = SignalStore(engine, clock, turns)
        self.orders = OrderStore(engine, clock, turns)
        self.queue = QueueStore(engine, clock, turns)
        self.processes = ProcessStore(engine, clock)
        self.auth = AuthFailureStore(engine, clock)
        self.switches = SwitchStore(engine, clock)
        self.entries = EntryStopStore(engine, clock)
        self.history = HistoryStore(engine, clock)
