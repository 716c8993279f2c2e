"""Taking a signal in: journal it, refuse repeats, check it, and send it or queue it.

:meth:`SignalDesk.submit` is what every webhook calls once the caller is authenticated:

1. validate the payload and resolve the instrument (a refusal is journaled, 422);
2. check the rules that need no broker call (409, journaled);
3. in one transaction: write the signal, check its idempotency key (its ``alert_id``, else
   a hash of its body for ``DEDUP_WINDOW_S``; a repeat is journaled as ``duplicate`` and
   answered with the first signal's outcome, never executed), queue it, and, if it heads
   its account's queue and a rate-limit token is free, claim it;
4. a claimed signal is sent at once and the caller waits for the result within the time
   budget; otherwise it is answered ``queued`` and a dispatcher sends it in order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from marshmallow import ValidationError

from bridge.accounts import AccountSettings
from bridge.clock import Clock
from bridge.config import Settings
from bridge.domain import Signal, SignalSource
from bridge.errors import InvalidSignal, RuleRefusal
from bridge.journal.journal import Journal
from bridge.journal.rows import (
    Admission,
    AdmitRequest,
    ErrorInfo,
    OrderRow,
    SignalRow,
    SignalStatus,
)
from bridge.notify import Notifier
from bridge.orders import fanout
from bridge.orders.barrier import SendBarrier
from bridge.orders.dispatch import Dispatcher
from bridge.orders.service import OrderService, Prepared, SignalFailed, instrument_key
from bridge.schemas import field_messages, load_signal

log = logging.getLogger(__name__)

#: what reading and writing out a fan-out's answer costs per account (measured: ~1 ms)
ANSWER_S_PER_COPY = 0.001


@dataclass(frozen=True)
class Intake:
    """An authenticated request, as the web layer hands it over."""

    source: SignalSource
    account: str
    remote_addr: str
    raw_body: str  # as received, the secret masked
    deadline: float  # monotonic time by which the caller must be answered
    payload: dict[str, Any] | None = None  # TradingView/AmiBroker fields, secret removed
    signal: Signal | None = None  # ready-made (ChartInk)
    dedup_basis: str = ""  # what "the same body" means for this signal
    received_at: datetime | None = None  # when the request arrived (default: now)


@dataclass(frozen=True)
class Outcome:
    """What the caller is told: the journal's view of the signal right now."""

    signal_id: int | None
    alert_id: str | None
    status: SignalStatus
    error: ErrorInfo | None
    orders: list[OrderRow] = field(default_factory=list)
    original: SignalRow | None = None  # for a duplicate: the first signal
    #: a signal fanned out to several accounts: each account's own outcome
    accounts: list[tuple[str, Outcome]] = field(default_factory=list)
    #: the signal as journaled: for an option by offset, the contract picked and why
    signal: Signal | None = None


@dataclass(frozen=True)
class _Admitted:
    """A journaled signal, and the future of its sending when it started at once."""

    signal_id: int
    alert_id: str
    duplicate_of: int | None = None
    future: Future[None] | None = None


class SignalDesk:
    def __init__(self, journal: Journal, service: OrderService, dispatcher: Dispatcher,
                 settings: Settings, clock: Clock, *,
                 notifier: Notifier | None = None, answers: Journal | None = None) -> None:
        self.journal = journal
        #: the journal on connections of its own, for a fan-out's answer (see wiring)
        self.answers = answers or journal
        self.service = service
        self.dispatcher = dispatcher
        self.settings = settings
        self.clock = clock
        self.notifier = notifier

    def set_kill_switch(self, on: bool, by: str) -> None:
        """Switch close-only mode (entries refused, exits allowed); ``by`` says who did
        (``cli``, ``dashboard`` ...). A change is a notice to the operator."""
        was = self.journal.switches.kill_switch()
        self.journal.switches.set_kill_switch(on)
        if was == on:
            return
        log.warning("kill switch turned %s by %s", "ON" if on else "off", by)
        if self.notifier is not None:
            self.notifier.send("kill_switch", "warning" if on else "info", (
                f"kill switch turned ON by {by}: new entries are refused, exits still go"
                if on else f"kill switch turned off by {by}: signals trade normally again"))

    def submit(self, intake: Intake) -> Outcome:
        signal = intake.signal
        try:
            if signal is None:
                signal = load_signal(intake.payload or {}, intake.source)
            prepared = self.service.prepare(signal)
        except ValidationError as exc:
            messages = field_messages(exc)
            return self._refused(intake, signal, SignalStatus.REJECTED, ErrorInfo(
                "invalid_signal", "the signal is not valid: " + _summary(messages), messages))
        except InvalidSignal as exc:
            return self._refused(intake, signal, SignalStatus.REJECTED,
                                 ErrorInfo(exc.code, exc.message, exc.details))
        except SignalFailed as exc:
            return self._refused(intake, signal, exc.status, exc.error)

        try:
            self.service.precheck(prepared)
        except RuleRefusal as exc:
            return self._refused(intake, signal, SignalStatus.REJECTED,
                                 ErrorInfo(exc.code, exc.message, exc.details))
        accounts = self.service.accounts
        if not accounts.fans_out:
            return self._finish(self._admit(intake, prepared, intake.account), intake)
        targets = accounts.for_strategy(signal.strategy)
        if not targets:
            return self._refused(intake, signal, SignalStatus.REJECTED, ErrorInfo(
                "no_account", f"no enabled account follows strategy {signal.strategy!r}",
                {"strategy": ["not subscribed by any enabled account (ACCOUNTS_FILE)"]}))
        return self._fan_out(intake, prepared, targets)

    def _fan_out(self, intake: Intake, prepared: Prepared,
                 targets: list[AccountSettings]) -> Outcome:
        """Admit the signal once per account, in one transaction, sending every account's
        copy at once; each is its account's own signal from here on, so one account's
        trouble (a rejection, a timeout, an expired session) is that account's outcome."""
        done: dict[str, Outcome | _Admitted] = {}
        copies: list[tuple[str, Prepared]] = []
        for account in targets:
            try:
                copy = fanout.for_account(prepared.signal, prepared.instrument, account,
                                          prepared.legs)
            except RuleRefusal as exc:
                done[account.name] = self._refused(
                    intake, prepared.signal, SignalStatus.REJECTED,
                    ErrorInfo(exc.code, exc.message, exc.details), account=account.name)
                continue
            copies.append((account.name, dataclasses.replace(prepared, signal=copy)))
        slots = self.dispatcher.free_slots()
        claimant = self.dispatcher.claimant()
        requests = [self._request(intake, copy, name, claimant if index < slots else None)
                    for index, (name, copy) in enumerate(copies)]
        admissions = self.journal.signals.admit_many(requests)
        # Read every account's session at once, just before the copies go.
        self.service.prime_sessions([name for name, _ in copies])
        barrier = SendBarrier(sum(1 for a in admissions
                                  if a.claim is not None and a.duplicate_of is None))
        for (name, _), request, admission in zip(copies, requests, admissions, strict=True):
            done[name] = self._started(request, admission, intake, intake.deadline, barrier)
        # The copies run side by side on the dispatcher's pool: wait for them together,
        # within the time budget, then read every account's state at once.
        started = [a for a in done.values() if isinstance(a, _Admitted)]
        # Reading and writing out the answer takes about a millisecond per account: it
        # comes out of the wait rather than being added after the budget.
        wait_futures([a.future for a in started if a.future is not None],
                     timeout=max(intake.deadline - ANSWER_S_PER_COPY * len(started)
                                 - time.monotonic(), 0.0))
        found = self.answers.signals.signals_with_orders(
            [a.signal_id for a in started if a.duplicate_of is None])
        parts: list[tuple[str, Outcome]] = []
        for account in targets:
            state = done.get(account.name)
            if isinstance(state, _Admitted):
                if state.duplicate_of is not None:
                    state = self._duplicate(state.signal_id, state.alert_id,
                                            state.duplicate_of, intake.deadline)
                else:
                    row, orders = found[state.signal_id]
                    state = Outcome(signal_id=row.id, alert_id=row.alert_id,
                                    status=row.status, error=row.error, orders=orders,
                                    signal=row.signal)
            if state is not None:
                parts.append((account.name, state))
        status = fanout.combined_status([outcome.status for _, outcome in parts])
        first = next((o for _, o in parts if o.status is status), None)
        return Outcome(signal_id=None, alert_id=prepared.signal.alert_id or (
            first.alert_id if first else None), status=status,
            error=first.error if first else None,
            orders=[order for _, outcome in parts for order in outcome.orders],
            accounts=parts, signal=first.signal if first else prepared.signal)

    def _request(self, intake: Intake, prepared: Prepared, account: str,
                 claimant: str | None) -> AdmitRequest:
        signal = prepared.signal
        key, key_expires = self._key(signal, intake, account)
        return AdmitRequest(
            alert_id=signal.alert_id or f"sig-{secrets.token_hex(6)}",
            source=intake.source.value, account=account, remote_addr=intake.remote_addr,
            raw_body=intake.raw_body, signal=signal, received_at=intake.received_at,
            priority=prepared.priority,
            expires_at=self.clock.now() + timedelta(seconds=self.settings.intake.signal_ttl_s),
            instrument=instrument_key(prepared.instrument), key=key, key_expires=key_expires,
            claimant=claimant, rate=self.service.accounts.rate(account),
            entry=self.service.entry_query(signal, prepared.instrument),
            plan=self.service.planner(prepared))

    def _started(self, request: AdmitRequest, admission: Admission, intake: Intake,
                 follow_until: float, barrier: SendBarrier | None = None) -> _Admitted:
        """Act on an admission: a repeat is reported, a claim starts sending, the rest
        waits for the dispatcher."""
        if admission.duplicate_of is not None:
            self.service.report.settled(admission.signal_id)
            return _Admitted(admission.signal_id, request.alert_id, admission.duplicate_of)
        if admission.claim is None:
            self.dispatcher.wake()
            return _Admitted(admission.signal_id, request.alert_id)
        return _Admitted(admission.signal_id, request.alert_id, future=self.dispatcher.run(
            admission.claim, follow_until, barrier.arrival() if barrier is not None else None))

    def _admit(self, intake: Intake, prepared: Prepared, account: str) -> _Admitted:
        """Journal the signal for ``account`` and, when it may go now, start sending it."""
        request = self._request(intake, prepared, account, self.dispatcher.claimant())
        return self._started(request, self.journal.signals.admit_many([request])[0], intake,
                             intake.deadline)

    def _finish(self, admitted: _Admitted, intake: Intake) -> Outcome:
        """What to answer for an admitted signal, waiting within the time budget."""
        if admitted.duplicate_of is not None:
            return self._duplicate(admitted.signal_id, admitted.alert_id,
                                   admitted.duplicate_of, intake.deadline)
        if admitted.future is None:
            return self._while_dispatching(admitted.signal_id, intake.deadline)
        try:
            admitted.future.result(timeout=max(intake.deadline - time.monotonic(), 0.0))
        except FutureTimeout:
            log.info("signal %d still with the broker after the time budget; the journal "
                     "gets the rest", admitted.signal_id)
        return self.outcome(admitted.signal_id)

    def _while_dispatching(self, signal_id: int, deadline: float) -> Outcome:
        """Wait for a signal another thread is already sending; one still queued behind the
        rate limit is answered at once (202), so a burst never ties up request threads."""
        pause = 0.01
        outcome = self.outcome(signal_id)
        while (outcome.status is SignalStatus.DISPATCHING
               and time.monotonic() + pause < deadline):
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
            outcome = self.outcome(signal_id)
        return outcome

    def outcome(self, signal_id: int) -> Outcome:
        row, orders = self.journal.signals.signal_with_orders(signal_id)
        if row is None:
            raise LookupError(f"signal {signal_id} is not in the journal")
        return Outcome(signal_id=row.id, alert_id=row.alert_id, status=row.status,
                       error=row.error, orders=orders, signal=row.signal)

    def _key(self, signal: Signal, intake: Intake,
             account: str) -> tuple[str | None, datetime | None]:
        """The idempotency key, per account (a repeat of a fanned-out signal is a repeat in
        every account, and finishes one cut short by a crash): the alert_id for good, else
        the body for the dedup window."""
        if signal.alert_id:
            return f"id:{account}:{signal.alert_id}", None
        if self.settings.dedup_window_s and intake.dedup_basis:
            digest = hashlib.sha256(f"{intake.source.value}\n{intake.dedup_basis}".encode())
            return (f"body:{account}:{digest.hexdigest()}",
                    self.clock.now() + timedelta(seconds=self.settings.dedup_window_s))
        return None, None

    def _duplicate(self, signal_id: int, alert_id: str, original_id: int,
                   deadline: float) -> Outcome:
        # A repeat that arrives while the first is still on its way waits for its outcome.
        original = self.journal.signals.signal(original_id)
        pause = 0.02
        while (original is not None and original.status.pending
               and time.monotonic() + pause < deadline):
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
            original = self.journal.signals.signal(original_id)
        return Outcome(signal_id=signal_id, alert_id=alert_id, status=SignalStatus.DUPLICATE,
                       error=None, orders=self.journal.orders.orders_of(original_id),
                       original=original,
                       signal=original.signal if original is not None else None)

    def _refused(self, intake: Intake, signal: Signal | None, status: SignalStatus,
                 error: ErrorInfo, *, account: str = "") -> Outcome:
        alert_id = (signal.alert_id if signal is not None and signal.alert_id else
                    _payload_alert_id(intake.payload) or f"sig-{secrets.token_hex(6)}")
        symbol = signal.symbol if signal is not None else str(
            (intake.payload or {}).get("symbol", ""))[:96]
        signal_id = self.journal.signals.add_signal(
            alert_id=alert_id, source=intake.source.value, account=account or intake.account,
            remote_addr=intake.remote_addr, raw_body=intake.raw_body, signal=signal,
            status=status, priority=1, expires_at=None, error=error, symbol=symbol,
            received_at=intake.received_at)
        self.service.report.settled(signal_id)
        return Outcome(signal_id=signal_id, alert_id=alert_id, status=status, error=error)


def _payload_alert_id(payload: dict[str, Any] | None) -> str:
    value = (payload or {}).get("alert_id")
    return value[:80] if isinstance(value, str) else ""


def _summary(messages: dict[str, Any]) -> str:
    parts = []
    for name, problems in messages.items():
        first = problems[0] if isinstance(problems, list) and problems else problems
        parts.append(f"{name}: {first}")
    return "; ".join(parts)[:500]
