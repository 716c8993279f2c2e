"""Paper mode's broker: an in-process sandbox whose books live in a SQLite file.

The bridge's ordinary Kotak client is pointed at :data:`PAPER_HOST` (a reserved ``.invalid``
name that can never resolve, so nothing can leak to a real network), and that host is served
by an :class:`~bridge.kotak.sandbox.adapter.InProcessAdapter`. Login, orders and books run
through exactly the code that talks to Kotak in live mode.

The paper account's credentials are fixed and public: they protect nothing, since the paper
broker is reachable only from inside the bridge's own processes. Every gunicorn worker runs
its own sandbox over the same state file, so they all see one book.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import requests

from bridge.clock import Clock
from bridge.kotak.sandbox.adapter import InProcessAdapter
from bridge.kotak.sandbox.broker import Sandbox
from bridge.kotak.sandbox.conditions import SandboxAccount, SandboxConfig
from bridge.kotak.sandbox.state import SqliteStateStore

PAPER_HOST = "https://kotak-paper.invalid"
PAPER_ACCOUNT = SandboxAccount(
    ucc="PAPER",
    mobile="9000000000",
    mpin="123456",
    totp_secret="PAPERBROKERTOTPSEEDFORPAPERMODEX",
    password="paper-password",
    consumer_key="paper-access-token",
    consumer_secret="paper-consumer-secret",
    otp="1234",
    pan="PAPER1234P",
    cash=Decimal(1_000_000),
    name="PAPER TRADER",
)


def paper_broker(state_file: Path, clock: Clock, order_rate: int) -> Sandbox:
    return Sandbox([PAPER_ACCOUNT], config=SandboxConfig(order_rate=order_rate),
                   store=SqliteStateStore(state_file), clock=clock)


def mount(session: requests.Session, sandbox: Sandbox) -> None:
    """Route :data:`PAPER_HOST` on ``session`` to ``sandbox`` in this process."""
    session.mount(f"{PAPER_HOST}/", InProcessAdapter(sandbox))
