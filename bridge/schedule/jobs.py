"""What each scheduled job does. Every job returns an :class:`Outcome` for the journal and
tells the operator (a notice) whatever needs their attention.

Each is safe to run again after a crash in the middle: a login returns the session another
process already made, a square-off starts from the position book, a refresh replaces the
scrip master only once the new one is complete.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bridge.clock import IST, ist_text
from bridge.domain import Exchange
from bridge.journal.jobs import RunStatus
from bridge.kotak.auth import AuthFlow
from bridge.kotak.errors import KotakError, LoginBlocked, SessionInvalid
from bridge.kotak.instruments import InstrumentError
from bridge.orders.squareoff import SquareOff, SquareOffReport
from bridge.schedule.plan import TOKEN_EVERY, TOKEN_LEAD, JobSpec, Kind, open_exchanges
from bridge.wiring import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: RunStatus
    summary: str
    report: dict[str, Any] = field(default_factory=dict)


class JobActions:
    def __init__(self, services: Services) -> None:
        self.services = services

    def run(self, spec: JobSpec) -> Outcome:
        if spec.kind is Kind.SESSION:
            return self.renew_sessions()
        if spec.kind is Kind.INSTRUMENTS:
            return self.refresh_instruments()
        if spec.kind is Kind.SQUAREOFF:
            today = self.services.clock.now().astimezone(IST).date()
            return self.square_off(open_exchanges(spec, today, self.services.calendar))
        if spec.kind is Kind.RECONCILE:
            return self.reconcile()
        if spec.kind is Kind.TOKEN:
            return self.renew_tokens()
        return self.housekeeping()

    # --- the jobs -------------------------------------------------------------------------

    def renew_sessions(self) -> Outcome:
        """Log every account in unattended (or keep the valid session another process made),
        then prove the session with a cheap read. One attempt: Kotak locks an account after
        three failed logins, so a failure waits for a person."""
        notes: list[str] = []
        failed = False
        last = len(self.services.brokers) - 1
        for index, (account, client) in enumerate(self.services.brokers.items()):
            manager = client.sessions
            before = manager.peek()
            try:
                session = manager.login()
                client.funds()
            except KotakError as exc:
                failed = True
                if isinstance(exc, SessionInvalid):
                    manager.invalidate(f"refused right after login: {exc.message}")
                note, notice = _login_trouble(account, exc)
                notes.append(note)
                self._notify("login_failed", "error", notice)
                continue
            fresh = before is None or before.token != session.token
            text = (f"account {account}: {'logged in' if fresh else 'session already held'}, "
                    f"valid until {ist_text(session.expires_at)}")
            notes.append(text)
            if fresh:
                self._notify("login_renewed", "info", f"Kotak {text}")
                # Staggered: many accounts logging in at one instant from one address look
                # like an attack to Kotak, and would all be refused together if it objected.
                if index < last:
                    time.sleep(self.services.settings.schedule.session_stagger_s)
        status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
        return Outcome(status, "; ".join(notes) or "no accounts", {"accounts": notes})

    def renew_tokens(self) -> Outcome:
        """Renew each legacy account's OAuth2 token in its last ``TOKEN_LEAD`` (the token
        lapses after Kotak's ``expires_in``; the trade session itself lasts the day)."""
        notes: list[str] = []
        failed = False
        for account, client in self.services.brokers.items():
            manager = client.sessions
            if manager.credentials.flow is not AuthFlow.OAUTH2:
                continue
            try:
                session, renewed = manager.renew_bearer(TOKEN_LEAD)
            except KotakError as exc:
                failed = True
                notes.append(f"account {account}: OAuth2 token renewal failed: {exc.message}")
                self._notify("login_failed", "error",
                             f"Kotak OAuth2 token of account {account} could not be renewed "
                             f"({exc.message}); the bridge tries again in "
                             f"{int(TOKEN_EVERY.total_seconds() // 60)} minutes and on the "
                             "next order")
                continue
            if session is None or session.bearer_expires_at is None:
                notes.append(f"account {account}: no session, nothing to renew")
                continue
            until = ist_text(session.bearer_expires_at)
            notes.append(f"account {account}: OAuth2 token "
                         + (f"renewed, valid until {until}" if renewed else
                            f"valid until {until}, renewed from "
                            f"{ist_text(session.bearer_expires_at - TOKEN_LEAD)}"))
        status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
        return Outcome(status, "; ".join(notes) or "no legacy account", {"accounts": notes})

    def token_renewal_at(self) -> datetime | None:
        """When the earliest legacy OAuth2 token is due for renewal (for ``jobs`` and the
        dashboard: the job looks every few minutes, but this is when it acts)."""
        expiries = [session.bearer_expires_at for client in self.services.brokers.values()
                    if client.sessions.credentials.flow is AuthFlow.OAUTH2
                    and (session := client.sessions.peek()) is not None
                    and session.bearer_expires_at is not None]
        return min(expiries) - TOKEN_LEAD if expiries else None

    def refresh_instruments(self) -> Outcome:
        try:
            report = self.services.instruments.refresh(self.services.broker())
        except (KotakError, InstrumentError) as exc:
            message = exc.message if isinstance(exc, KotakError) else str(exc)
            self._notify("instruments_failed", "warning",
                         f"scrip master refresh failed ({message}); yesterday's stays in use")
            return Outcome(RunStatus.FAILED, f"refresh failed, previous kept: {message}")
        return Outcome(RunStatus.SUCCEEDED,
                       f"{report.total} instruments for {report.trading_day}",
                       {"counts": report.counts, "skipped": list(report.skipped_files)})

    def square_off(self, exchanges: list[Exchange], *, dry_run: bool = False,
                   block_entries: bool = True, why: str = "the scheduled square-off",
                   by: str = "schedule") -> Outcome:
        """Square off every account; ``block_entries`` also stops new intraday entries on
        these exchanges for the day (always for the scheduled one; a person chooses)."""
        if not exchanges:
            return Outcome(RunStatus.SKIPPED, "no exchange of this job trades today")
        services = self.services
        engine = SquareOff(services.orders, services.journal, services.instruments,
                           services.settings, services.clock)
        reports: list[SquareOffReport] = [
            engine.run(account, exchanges, dry_run=dry_run, block_entries=block_entries,
                       why=why, by=by) for account in services.brokers]
        flat = all(report.flat for report in reports)
        summary = " | ".join(report.summary() for report in reports)
        if not dry_run:
            self._notify("squareoff", "info" if flat else "error",
                         "\n".join(line for r in reports for line in r.lines()))
        return Outcome(RunStatus.SUCCEEDED if flat else RunStatus.FAILED, summary,
                       {"reports": [report.to_dict() for report in reports]})

    def reconcile(self) -> Outcome:
        services = self.services
        before = len(services.journal.orders.working_orders())
        services.dispatcher.maintain()
        services.dispatcher.tracker.sweep_all()
        after = len(services.journal.orders.working_orders())
        depth, _ = services.journal.queue.queue_depth()
        return Outcome(RunStatus.SUCCEEDED,
                       f"open or unknown orders {before} -> {after}; {depth} signals queued",
                       {"working_before": before, "working_after": after, "queued": depth})

    def housekeeping(self) -> Outcome:
        services = self.services
        keep = services.settings.schedule.retention_days
        cutoff = services.clock.now() - timedelta(days=keep)
        signals = services.journal.history.prune_history(cutoff)
        runs = services.jobs.prune(cutoff)
        notices = services.jobs.prune_notices(cutoff)
        services.doors.prune(cutoff)
        services.journal.history.prune()
        return Outcome(RunStatus.SUCCEEDED,
                       f"kept {keep} days: removed {signals} signals, {runs} job runs, "
                       f"{notices} notices", {"signals": signals, "runs": runs,
                                              "notices": notices})

    def _notify(self, kind: str, level: str, text: str) -> None:
        self.services.notifier.send(kind, level, text)


def _login_trouble(account: str, exc: KotakError) -> tuple[str, str]:
    """The job's note and the operator's notice for a daily login that did not happen."""
    if isinstance(exc, LoginBlocked):
        return (f"account {account}: {exc.message}",
                f"Kotak login of account {account} not attempted: {exc.message}. Signals are "
                "refused until a person logs in (python -m bridge login, or the login page).")
    if isinstance(exc, SessionInvalid):
        return (f"account {account}: the new session was refused: {exc.message}",
                f"Kotak refused the new session of account {account}: {exc.message}")
    return (f"account {account}: login failed: {exc.message}",
            f"Kotak login of account {account} failed: {exc.message}. No further automatic "
            "attempt today (Kotak locks the account after three failures): log in by hand.")
