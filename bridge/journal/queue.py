"""The dispatch queue per account and the sending of its requests: claiming the head with a
broker rate-limit token in one exclusive transaction (so claim order is send order and no
more than ``rate`` order requests leave in any rolling second), each request's turn, the
queue's depth, the expiry of what waited too long, and the claims of dead processes.

Separate from the signal rows because this is the hot, locked path of the dispatcher and
the recovery loop; it holds this process's turn-taking (:class:`~bridge.journal.tokens.Turns`)
with the order and signal stores, which stamp and take tokens too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, delete, func, insert, select, update

from bridge.clock import Clock
from bridge.journal import statements as st
from bridge.journal.heads import PlanFor, claim_heads
from bridge.journal.rows import (
    Claim,
    ErrorInfo,
    OrderRow,
    OrderState,
    SignalRow,
    SignalStatus,
    TakeOver,
    error_columns,
    signal_row,
    storable,
)
from bridge.journal.tables import UtcDateTime, broker_calls, events, orders, signals
from bridge.journal.tokens import (
    TURN_POLL_MAX_S,
    TURN_POLL_S,
    UNSENT_TOKEN_S,
    Turns,
    grant_token,
    in_flight_before,
    now_seconds,
    stamp_answers,
)
from bridge.journal.txn import exclusive, exclusive_many, writing

#: an order in these states never reached Kotak: never sent (``created``), or sent in an
#: earlier attempt and proven by the order book never to have arrived
_NEVER_ARRIVED = frozenset({OrderState.CREATED.value, OrderState.NOT_PLACED.value})


class QueueStore:
    def __init__(self, engine: Engine, clock: Clock, turns: Turns) -> None:
        self.engine = engine
        self._clock = clock
        self._turns = turns

    def take_head(self, account: str, process_id: str,
                  rate: int) -> tuple[Claim | None, float]:
        """Claim the account's next signal together with a broker rate-limit token.

        Returns the claim, or ``None`` and how long until a token frees (0 when the queue
        had nothing to give).
        """
        claims, waits = self.take_heads({account: rate}, process_id)
        if claims:
            return claims[0], 0.0
        return None, waits.get(account, 0.0)

    def take_heads(self, rates: dict[str, int], process_id: str,
                   plan_for: PlanFor | None = None) -> tuple[list[Claim], dict[str, float]]:
        """:meth:`take_head` for many accounts ({account: rate}) in one transaction; with
        ``plan_for``, a plain signal's orders are recorded with its claim, the first marked
        ``sending`` when its account has nothing in flight (as at admission). Returns the
        claims, and the seconds each account whose head waits for a token must wait."""
        if not rates:
            return [], {}
        with exclusive_many(self.engine, [f"queue:{account}" for account in rates]) as conn:
            claims, waits = claim_heads(conn, self.engine.dialect.name, self._clock.now(),
                                        rates, process_id, plan_for)
        for claim in claims:
            self._turns.granted(claim.token, claim.row.account)
        return claims, waits

    def take_token(self, account: str, rate: int) -> tuple[int | None, float]:
        """Take a broker rate-limit token: its id, or ``None`` and the seconds to wait."""
        with exclusive(self.engine, f"queue:{account}") as conn:
            token, wait, _ = grant_token(conn, account, rate, self.engine.dialect.name)
        self._turns.granted(token, account)
        return token, wait

    def start_sending(self, order: OrderRow, token: int,
                      patience: float = UNSENT_TOKEN_S) -> None:
        """Wait for this order's turn, then mark it ``sending`` (before the HTTP call).

        An account's requests go out one after another in the order their tokens were
        granted: this waits until every earlier request of the account has been answered
        (:meth:`finish_sending`) or given back, or, for a sender that died, ``patience``
        passes.
        """
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                ahead = set(in_flight_before(conn, order.account, token,
                                             self.engine.dialect.name))
            if not ahead:
                break
            # A request with this process's requests ahead of it waits for their answers
            # without asking the journal again (it cannot go before them anyway); when
            # nothing else was ahead, its turn has come: no request granted later can be
            # ahead of it. Only a request with another process's request ahead looks for
            # that answer, by polling, so a burst's waiters do not spend the bridge's time
            # asking the journal whose turn it is.
            local = self._turns.held(ahead)
            if local:
                if self._turns.await_answers(local, deadline) and local == ahead:
                    break
                continue
            with self._turns.condition:
                self._turns.condition.wait(min(TURN_POLL_S * len(ahead), TURN_POLL_MAX_S))
        now = self._clock.now()
        with writing(self.engine) as conn:
            conn.execute(st.UPDATE_CALL, {"where_id": token, "sent": True})
            conn.execute(st.UPDATE_ORDER, {"where_id": order.id,
                                           "status": OrderState.SENDING.value,
                                           "sent_at": now, "updated_at": now})
            conn.execute(st.INSERT_EVENT, {"signal_id": order.signal_id,
                                           "order_id": order.id, "at": now,
                                           "status": OrderState.SENDING.value,
                                           "detail": "sent to Kotak"})

    def finish_sending(self, token: int) -> None:
        """The request was answered (or failed): stamp its token and let the next one go.

        The stamp is taken when the answer is back, which is after the request reached
        Kotak; the next request starts after it. Spacing the one against the other keeps
        the window true at Kotak's door whatever the delays in between.
        """
        with writing(self.engine) as conn:
            stamp_answers(conn, [token], self.engine.dialect.name)
        self._turns.answered(token)

    def release_token(self, token: int) -> None:
        """Give back a token whose request was never sent."""
        with writing(self.engine) as conn:
            conn.execute(delete(broker_calls).where(broker_calls.c.id == token,
                                                    broker_calls.c.sent.is_(False)))
        self._turns.answered(token)

    def queue_depth(self) -> tuple[int, datetime | None]:
        """Signals waiting to be sent, and when the oldest arrived."""
        with self.engine.connect() as conn:
            row = conn.execute(select(
                func.count(), func.min(signals.c.received_at, type_=UtcDateTime())).where(
                signals.c.status == SignalStatus.QUEUED.value)).one()
        return int(row[0] or 0), row[1]

    def accounts_in_flight(self) -> set[str]:
        """Accounts with a request granted (by any process) and not yet answered, as the
        next request of the account would count it (stale ones left out)."""
        with self.engine.connect() as conn:
            since = now_seconds(conn, self.engine.dialect.name) - UNSENT_TOKEN_S
            rows = conn.execute(select(broker_calls.c.account).distinct().where(
                broker_calls.c.done.is_(False), broker_calls.c.at > since)).all()
        return {str(row.account) for row in rows}

    def queued_accounts(self) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(signals.c.account).distinct()
                                .where(signals.c.status == SignalStatus.QUEUED.value)).all()
        return [str(row.account) for row in rows]

    def expire_queued(self) -> list[int]:
        """Mark queued signals past their validity as expired, with any orders they recorded
        and never sent (a dead process's, see :meth:`take_over`); return their ids."""
        now = self._clock.now()
        with self.engine.connect() as conn:
            stale = [int(row.id) for row in conn.execute(
                select(signals.c.id).where(signals.c.status == SignalStatus.QUEUED.value,
                                           signals.c.expires_at.is_not(None),
                                           signals.c.expires_at <= now)).all()]
        expired = []
        for signal_id in stale:
            with writing(self.engine) as conn:
                if _expire_unsent(conn, signal_id, now, (
                        "not sent within its validity window (SIGNAL_TTL_S); nothing was "
                        "placed"), signals.c.status == SignalStatus.QUEUED.value):
                    expired.append(signal_id)
        return expired

    def orphaned_claims(self, live: set[str], grace: timedelta) -> list[SignalRow]:
        """Signals being dispatched by a process that is no longer alive."""
        cutoff = self._clock.now() - grace
        with self.engine.connect() as conn:
            rows = conn.execute(select(signals).where(
                signals.c.status == SignalStatus.DISPATCHING.value,
                signals.c.claimed_at < cutoff)).all()
        return [signal_row(row) for row in rows if row.claimed_by not in live]

    def retry_never_arrived(self, signal_id: int,
                            new_tag: Callable[[], str]) -> SignalStatus | None:
        """Queue a signal again when the order book proved none of its orders arrived.

        Only if every order is ``not_placed`` (or was never sent: ``failed``) and the signal
        is still within its validity window; past it, the signal is expired. Its orders are
        then sent again as recorded, each under a new tag (``new_tag``), as the same order
        rows: one order per planned order, whose timeline keeps the attempt that never
        arrived. As recorded, because while the first attempt's outcome was unknown other
        signals' sizing counted it as working. Returns the new status.
        """
        now = self._clock.now()
        with exclusive(self.engine, f"retry:{signal_id}") as conn:
            row = conn.execute(select(signals).where(signals.c.id == signal_id)).first()
            recorded = conn.execute(select(orders.c.id, orders.c.tag, orders.c.status).where(
                orders.c.signal_id == signal_id).order_by(orders.c.id)).all()
            states = {r.status for r in recorded}
            if (row is None or not states
                    or not states <= {OrderState.NOT_PLACED.value, OrderState.FAILED.value}
                    or OrderState.NOT_PLACED.value not in states
                    or row.status not in (SignalStatus.FAILED.value,
                                          SignalStatus.UNKNOWN.value)):
                return None
            if row.expires_at is not None and row.expires_at <= now:
                status, detail = SignalStatus.EXPIRED, (
                    "its order never reached Kotak and its validity window has passed; "
                    "nothing was placed")
            else:
                status, detail = SignalStatus.QUEUED, (
                    "its order never reached Kotak (checked in the order book): queued "
                    "again, its orders to be sent as recorded with new tags")
            values: dict[str, Any] = {"status": status.value, "claimed_by": None,
                                      "claimed_at": None, "updated_at": now}
            if status is SignalStatus.EXPIRED:
                values.update(error_columns(ErrorInfo("expired", detail, {})))
            else:
                values.update(error_code=None, error_message=None, error_details=None)
            conn.execute(update(signals).where(signals.c.id == signal_id).values(**values))
            timeline = [{"signal_id": signal_id, "order_id": None, "at": now,
                         "status": status.value, "detail": detail}]
            if status is SignalStatus.QUEUED:
                tags = {order.id: new_tag() for order in recorded}
                conn.execute(st.UPDATE_ORDER, [{
                    "where_id": order_id, "status": OrderState.CREATED.value, "tag": tag,
                    "broker_order_id": None, "broker_status": None, "filled_quantity": 0,
                    "average_price": None, "error_code": None, "reason": None,
                    "sent_at": None, "final_at": None, "updated_at": now}
                    for order_id, tag in tags.items()])
                timeline += [{"signal_id": signal_id, "order_id": order.id, "at": now,
                              "status": OrderState.CREATED.value,
                              "detail": f"to be sent again with tag {tags[order.id]} (nothing "
                                        f"under {order.tag} reached Kotak)"}
                             for order in recorded]
            conn.execute(st.INSERT_EVENT, timeline)
        return status

    def take_over(self, signal_id: int, live: set[str]) -> TakeOver:
        """Take over a signal claimed by a process not in ``live``, in one transaction.

        An order is marked ``sending`` (committed) before its request leaves, so while every
        order of the signal is ``created`` (or ``not_placed``: an earlier attempt the order
        book proved never arrived) nothing of it reached Kotak. The signal is then queued
        again, its ``created`` orders kept to be sent as recorded when it is next claimed
        (:meth:`take_head`; their tags never reached Kotak, and other signals' sizing counts
        them already), or, past its validity, expired with them failed. Failing them while
        it is valid would leave an accepted signal ``failed: never sent``. Any other order
        went out (or was refused): :attr:`TakeOver.HALF_SENT`, for the caller to settle.
        """
        now = self._clock.now()
        with writing(self.engine) as conn:
            row = conn.execute(select(signals.c.status, signals.c.claimed_by,
                                      signals.c.expires_at)
                               .where(signals.c.id == signal_id)).first()
            if (row is None or row.status != SignalStatus.DISPATCHING.value
                    or row.claimed_by in live):
                return TakeOver.GONE
            states = set(conn.execute(select(orders.c.status)
                                      .where(orders.c.signal_id == signal_id)).scalars())
            if not states <= _NEVER_ARRIVED:
                return TakeOver.HALF_SENT
            # Only the claim looked at: another survivor may have taken it over meanwhile.
            claim = (signals.c.status == SignalStatus.DISPATCHING.value,
                     signals.c.claimed_by.is_not_distinct_from(row.claimed_by))
            if row.expires_at is not None and row.expires_at <= now:
                expired = _expire_unsent(conn, signal_id, now, (
                    "its process stopped before sending and its validity window has passed; "
                    "nothing was placed"), *claim)
                return TakeOver.EXPIRED if expired else TakeOver.GONE
            if not conn.execute(update(signals).where(signals.c.id == signal_id, *claim).values(
                    status=SignalStatus.QUEUED.value, claimed_by=None, claimed_at=None,
                    updated_at=now, error_code=None, error_message=None,
                    error_details=None)).rowcount:
                return TakeOver.GONE
            conn.execute(insert(events).values(
                signal_id=signal_id, at=now, status=SignalStatus.QUEUED.value,
                detail="its process stopped before sending, so nothing reached Kotak: queued "
                       "again" + (", its recorded orders to be sent as they are"
                                  if OrderState.CREATED.value in states else "")))
        return TakeOver.QUEUED


def _expire_unsent(conn: Connection, signal_id: int, now: datetime, message: str,
                   *only_if: ColumnElement[bool]) -> bool:
    """Within a write transaction: expire a signal that sent nothing (while ``only_if``
    holds) and fail the orders it recorded but never sent, so that none of them is still
    counted as working (sizing) nor failed later in a way that turns the signal ``failed``.
    Returns whether it was expired."""
    if not conn.execute(update(signals).where(signals.c.id == signal_id, *only_if).values(
            status=SignalStatus.EXPIRED.value, claimed_by=None, claimed_at=None,
            updated_at=now, **error_columns(ErrorInfo("expired", message, {})))).rowcount:
        return False
    timeline = [{"signal_id": signal_id, "order_id": None, "at": now,
                 "status": SignalStatus.EXPIRED.value, "detail": storable(message)}]
    reason = "never sent: its signal's validity window passed first"
    for order_id in conn.execute(select(orders.c.id).where(
            orders.c.signal_id == signal_id,
            orders.c.status == OrderState.CREATED.value)).scalars().all():
        conn.execute(st.UPDATE_ORDER, {"where_id": order_id, "status": OrderState.FAILED.value,
                                       "error_code": "not_sent", "reason": reason,
                                       "updated_at": now, "final_at": now})
        timeline.append({"signal_id": signal_id, "order_id": order_id, "at": now,
                         "status": OrderState.FAILED.value, "detail": reason})
    conn.execute(st.INSERT_EVENT, timeline)
    return True
