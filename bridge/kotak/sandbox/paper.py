"""Paper mode's broker: an in-process sandbox whose books live in a SQLite file.

The bridge's ordinary Kotak client is pointed at :data:`PAPER_HOST` (a reserved ``.invalid``
name that can never resolve, so nothing can leak to a real network), and that host is served
by an :class:`~bridge.kotak.sandbox.adapter.InProcessAdapter`. Login, orders and books run
through exactly the code that talks to Kotak in live mode.

The paper account's credentials are fixed and public: they protect nothing, since the paper
broker is reachable only from inside the bridge's own processes. Every gunicorn worker runs
its own sandbox over the same state file, so they all see one book.

The market is the sandbox's sample one (the NIFTY 100, index and stock derivatives, MCX
futures), plus any shares the user lists in ``<DATA_DIR>/paper-instruments.csv``, one a line::

    symbol,price,lot,step,name
    IRCTC,780
    POLYCAB,6500,125,100,POLYCAB INDIA LIMITED

``price`` in rupees (where the price walk starts), ``lot`` the F&O lot (0 or left out: cash
only; with a lot, three monthly futures), ``step`` the option strike step (0 or left out: no
options), ``name`` optional. Read at start: a restart takes changes in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import requests

from bridge.clock import Clock
from bridge.kotak.sandbox.adapter import InProcessAdapter
from bridge.kotak.sandbox.broker import Sandbox
from bridge.kotak.sandbox.conditions import SandboxAccount, SandboxConfig
from bridge.kotak.sandbox.hosts import Hosts, Role
from bridge.kotak.sandbox.scripmaster import Listing, ListingError, read_listings
from bridge.kotak.sandbox.state import SqliteStateStore

log = logging.getLogger(__name__)

#: the user's own additions to the paper market, in the data folder
INSTRUMENTS_FILE = "paper-instruments.csv"
PAPER_HOST = "https://kotak-paper.invalid"
#: one host name per Kotak host, kept apart as Kotak keeps them (see hosts.py)
PAPER_HOSTS = Hosts({
    Role.LOGIN: PAPER_HOST,
    Role.TRADING: "https://trade.kotak-paper.invalid",
    Role.FILES: "https://files.kotak-paper.invalid",
    Role.OAUTH: "https://oauth.kotak-paper.invalid",
    Role.GATEWAY: "https://gw.kotak-paper.invalid",
})
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


def paper_account(name: str) -> SandboxAccount:
    """The paper broker's account for the bridge's account ``name``: ``PAPER`` for the
    default one, and for others fixed credentials derived from the name, so each account
    keeps its own book across restarts."""
    if name == "default":
        return PAPER_ACCOUNT
    digest = hashlib.sha256(name.encode()).hexdigest()
    return dataclasses.replace(
        PAPER_ACCOUNT, ucc="P" + digest[:9].upper(),
        mobile="9" + str(int(digest[:12], 16))[-9:].rjust(9, "0"),
        consumer_key=f"paper-access-token-{name}", name=f"PAPER {name.upper()}")


def paper_broker(state_file: Path, clock: Clock, order_rate: int,
                 names: Iterable[str] = ("default",)) -> Sandbox:
    """The paper broker over ``state_file``, trading the sample market plus the shares of
    :data:`INSTRUMENTS_FILE` in the same folder (the data folder).

    :raises ListingError: that file has bad lines (each named, with the file).
    """
    # Prices walk, so that limit orders, stops and P&L behave as in a live market; the walk
    # is a function of the clock, so every worker sees the same prices.
    listings = user_listings(state_file.parent / INSTRUMENTS_FILE)
    return Sandbox([paper_account(name) for name in names],
                   config=SandboxConfig(order_rate=order_rate, price_walk=True,
                                        listings=listings),
                   store=SqliteStateStore(state_file), clock=clock)


def user_listings(path: Path) -> tuple[Listing, ...]:
    """The shares the user added to the paper market (none when the file is absent).

    :raises ListingError: the file is unreadable or has bad lines, each named.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return ()
    except (OSError, UnicodeDecodeError) as exc:
        raise ListingError([f"{path}: cannot be read ({exc})"]) from exc
    try:
        listings, notes = read_listings(text)
    except ListingError as exc:
        raise ListingError([f"{path} {problem}" for problem in exc.problems]) from exc
    for note in notes:
        log.warning("%s %s", path, note)
    if listings:
        log.info("paper market: %d shares added from %s (%s)", len(listings), path,
                 ", ".join(listing.symbol for listing in listings[:10])
                 + (" ..." if len(listings) > 10 else ""))
    return listings


def unknown_symbol_hint(data_dir: Path) -> str:
    """What a trader needs when paper mode does not know a symbol: the market is a sample,
    how to see what it lists, and how to add to it."""
    return (f"paper mode trades a built-in sample market (the NIFTY 100, index and stock "
            f"F&O, MCX futures), not Kotak's whole list: check a name with `bridge "
            f"instruments lookup NAME` or the dashboard's alert template page, and add a "
            f"share to {data_dir / INSTRUMENTS_FILE} (one line: symbol,price[,lot,step,name]; "
            f"see README, Paper mode), then restart")


def mount(session: requests.Session, sandbox: Sandbox) -> None:
    """Route the paper hosts on ``session`` to ``sandbox`` in this process."""
    sandbox.hosts = PAPER_HOSTS
    for role, url in PAPER_HOSTS.items():
        session.mount(f"{url}/", InProcessAdapter(sandbox, role=role))
