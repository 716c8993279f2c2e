"""The broker's rate-limit tokens: one row of ``broker_calls`` per order request, granted
within the account's rolling second, stamped when the request is answered; and this process's
share of the turn-taking (which tokens it holds, and the condition their answers wake).

Kept apart from the queue so that admission (:mod:`bridge.journal.signals`) and the order
records (:mod:`bridge.journal.orders`) can take and stamp a token inside their own
transactions: these are functions of a connection, not methods of a store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy import Connection, text

from bridge.journal import statements as st
from bridge.journal.rows import new_id

#: a rolling second, padded so requests stamped just over a second apart here cannot land
#: inside one second at the broker
RATE_WINDOW_S = 1.05
#: a token granted but never used (its sender died) stops counting after this long
UNSENT_TOKEN_S = 5.0
#: how often the next request in line looks at other processes' answers; requests further
#: back look less often (this much per request ahead, up to TURN_POLL_MAX_S)
TURN_POLL_S = 0.005
TURN_POLL_MAX_S = 0.05
#: a request behind one of this process's requests is woken by its answer; this is a backstop
LOCAL_TURN_WAIT_S = 0.25


class Turns:
    """The rate-limit tokens granted in this process and not yet answered, and the condition
    their answers wake the waiting senders with (:meth:`QueueStore.start_sending`)."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.mine: set[int] = set()  # rate-limit tokens granted here, not yet answered
        #: each of those tokens' account, and when it was granted (monotonic)
        self._accounts: dict[int, tuple[str, float]] = {}
        #: told of every answer (the dispatcher: an account may send its next signal)
        self.on_answer: Callable[[], None] = lambda: None

    def granted(self, token: int | None, account: str) -> None:
        if token is not None:
            with self.condition:
                self.mine.add(token)
                self._accounts[token] = (account, time.monotonic())

    def answered(self, token: int) -> None:
        with self.condition:
            self.mine.discard(token)
            self._accounts.pop(token, None)
            self.condition.notify_all()
        self.on_answer()

    def held(self, tokens: set[int]) -> set[int]:
        """Those of ``tokens`` granted here and not yet answered."""
        with self.condition:
            return self.mine.intersection(tokens)

    def await_answers(self, tokens: set[int], until: float) -> bool:
        """Wait until every one of ``tokens`` granted here has been answered or given back,
        or ``until`` (monotonic); return whether they all were.

        No journal read while waiting: a token granted here leaves :attr:`mine` only once
        its answer is stamped in the journal, so the wait ends exactly when a read would
        show these tokens answered."""
        with self.condition:
            while self.mine.intersection(tokens):
                left = until - time.monotonic()
                if left <= 0:
                    return False
                self.condition.wait(min(left, LOCAL_TURN_WAIT_S))
        return True

    def busy_accounts(self) -> set[str]:
        """The accounts with a request of this process still waiting for its answer (one
        granted more than :data:`UNSENT_TOKEN_S` ago no longer holds its account back, as
        it no longer holds back the account's next request)."""
        since = time.monotonic() - UNSENT_TOKEN_S
        with self.condition:
            return {account for account, at in self._accounts.values() if at > since}


def stamp_answers(conn: Connection, tokens: list[int], dialect: str) -> None:
    """Within a write transaction: the requests of ``tokens`` were answered now."""
    if tokens:
        now = now_seconds(conn, dialect)
        conn.execute(st.UPDATE_CALL, [{"where_id": token, "at": now, "done": True}
                                      for token in tokens])


def in_flight_before(conn: Connection, account: str, token: int, dialect: str) -> list[int]:
    """The requests granted before ``token`` that still wait for their answers (a few)."""
    if dialect == "postgresql":
        found = conn.execute(st.EARLIER_IN_FLIGHT_PG, {
            "account": account, "token": token, "unsent_s": UNSENT_TOKEN_S})
    else:
        found = conn.execute(st.EARLIER_IN_FLIGHT, {
            "account": account, "token": token,
            "stale_start": now_seconds(conn, dialect) - UNSENT_TOKEN_S})
    return [int(token_id) for token_id in found.scalars()]


class Grant(NamedTuple):
    """A broker call granted (``token``), or the seconds to ``wait`` before one may go."""

    token: int | None
    wait: float
    #: no earlier request of the account is still waiting for its answer: this one may
    #: go at once, without asking the journal whose turn it is (:func:`in_flight_before`)
    first_in_line: bool


def grant_token(conn: Connection, account: str, rate: int, dialect: str) -> Grant:
    """Within an exclusive transaction: grant one broker call, or say when one may go.

    A granted token counts as "happening now" until its request has been answered
    (:meth:`QueueStore.finish_sending` stamps it then), so the window holds at the moment
    requests reach the broker, not at the moment signals were claimed.
    """
    now, window = rate_window(conn, account, dialect)
    used, unanswered = conn.execute(st.RATE_COUNT, window).one()
    return grant_counted(conn, account, rate, now, window, used, unanswered)


def rate_window(conn: Connection, account: str, dialect: str) -> tuple[float, dict[str, Any]]:
    """Now (epoch seconds) and the parameters of ``account``'s rate window (st.RATE_COUNT,
    and the same columns in st.ADMIT_READS)."""
    now = now_seconds(conn, dialect)
    return now, {"account": account, "window_start": now - RATE_WINDOW_S,
                 "stale_start": now - UNSENT_TOKEN_S}


def grant_counted(conn: Connection, account: str, rate: int, now: float,
                  window: dict[str, Any], used: int, unanswered: int, *,
                  mark_sent: bool = False) -> Grant:
    """:func:`grant_token` once the window is counted (``used`` calls, ``unanswered`` of
    them still waiting for their answers). ``mark_sent``: the token's request goes at once
    when it is first in line, so it is recorded as sent with the grant (one statement less
    than marking it after)."""
    if used >= rate:
        rows = conn.execute(st.RATE_WINDOW, window).all()
        moments = [float(row.at) if row.done else now for row in rows]
        if len(moments) >= rate:
            return Grant(None, window_wait(moments, rate, now), False)
        unanswered = sum(1 for row in rows if not row.done)  # one stamped in between
    # The window counts every unanswered request that still counts (the same rule as
    # in_flight_before's), all granted before this one.
    first = not unanswered
    result = conn.execute(st.INSERT_CALL, {"account": account, "at": now,
                                           "sent": mark_sent and first, "done": False})
    return Grant(new_id(result), 0.0, first)


def window_wait(moments: list[float], rate: int, now: float) -> float:
    """Seconds until a full window has room for one more call: ``moments`` are the calls
    it counts (an unanswered one as ``now``), at least ``rate`` of them."""
    ordered = sorted(moments)
    return max(ordered[len(ordered) - rate] + RATE_WINDOW_S - now, 0.01)


def now_seconds(conn: Connection, dialect: str) -> float:
    """Epoch seconds; PostgreSQL's clock, so every host of a shared journal agrees."""
    if dialect == "postgresql":
        return float(conn.execute(text("SELECT extract(epoch from clock_timestamp())"))
                     .scalar() or 0.0)
    return time.time()
