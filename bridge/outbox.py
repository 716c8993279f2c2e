"""Delivering the operator's notices to Telegram and to a webhook, off the order path.

What is sent: every notice the bridge records through :class:`bridge.notify.Notifier`: an
order Kotak rejected (``order_rejected``), an order whose outcome is unknown after sending
and then how the order book settled it (``order_unknown``), a failed or renewed login
(``login_failed``, ``login_renewed``), the square-off result (``squareoff``), a kill-switch
change (``kill_switch``), a failed scrip-master refresh or scheduled job. Telegram gets plain
text led by the level and kind (``❌ order rejected: ...``, ``✅ login renewed: ...``); the
webhook gets the JSON ``{"kind", "level", "text", "at"}`` (``at``: ISO 8601, UTC).

How: notices sit in the journal's ``notices`` table, the outbox. Every process that serves
signals runs one :class:`Courier`, a daemon thread that every couple of seconds looks for due
notices, claims each with a conditional UPDATE of its lease (of several workers or hosts,
exactly one wins), posts it to each configured channel that does not have it yet, and records
the outcome per channel. A failed post (no connection, timeout, HTTP 5xx or 429) is tried
again after 2 s, 4 s, 8 s ... at most 5 min apart; Telegram's ``retry_after`` is waited out.
Any other 4xx (a wrong token, an unknown chat) is a refusal for good: logged, not retried. A
notice still not delivered 24 h after it was raised is given up, and so is a backlog older
than that when delivery is first switched on. A courier that dies mid-send leaves its lease
to expire and another sends the notice again: at least once, nearly always exactly once.

Orders never wait on this: an order's path only writes the notice row, and every HTTP call
happens on the courier's thread with 3 s connect and 5 s read timeouts.

Secrets: texts are redacted before they are recorded (``bridge.notify``), so no message
carries the webhook secret, a password, the MPIN or the TOTP seed. The bot token lives only
in Telegram's URL, and neither a URL nor an exception's text (which quotes the URL) is ever
logged or recorded: failures are reported by channel name and HTTP status.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from bridge.clock import Clock
from bridge.config import Settings
from bridge.journal.jobs import JobBook, Notice, Outgoing
from bridge.log import Redactor

log = logging.getLogger(__name__)

#: (connect, read) seconds for every post
TIMEOUT = (3.0, 5.0)
#: notices taken per look at the outbox
BATCH = 20
TELEGRAM_LIMIT = 4096
_ICONS = {"error": "❌", "warning": "⚠️", "info": "✅"}
_LABELS = {"squareoff": "square-off"}

Timeout = tuple[float, float]


@dataclass(frozen=True)
class Attempt:
    """How one post went."""

    ok: bool
    permanent: bool = False  # refused for good: never try this channel again for it
    retry_after: float | None = None  # the receiver asked for this pause, in seconds
    error: str = ""  # channel-neutral: a status or an exception's class, never a URL


@dataclass(frozen=True)
class Channel:
    name: str
    send: Callable[[requests.Session, Notice, Timeout], Attempt]


@dataclass(frozen=True)
class Backoff:
    first: float = 2.0
    cap: float = 300.0
    give_up_after: timedelta = timedelta(hours=24)

    def delay(self, attempts: int) -> float:
        """The pause after the ``attempts``-th failed try."""
        return min(self.first * 2.0 ** min(max(attempts, 1) - 1, 32), self.cap)


# --- channels ---------------------------------------------------------------------------


def telegram_text(notice: Notice) -> str:
    icon = _ICONS.get(notice.level, "•")
    label = _LABELS.get(notice.kind, notice.kind.replace("_", " "))
    return f"{icon} {label}: {notice.text}"[:TELEGRAM_LIMIT]


def telegram(api_url: str, token: str, chat_id: str) -> Channel:
    """Telegram's Bot API ``sendMessage``, plain text (no parse mode: nothing to escape)."""
    url = f"{api_url.rstrip('/')}/bot{token}/sendMessage"

    def send(session: requests.Session, notice: Notice, timeout: Timeout) -> Attempt:
        return _post(session, url, {"chat_id": chat_id, "text": telegram_text(notice),
                                    "disable_web_page_preview": True}, timeout)

    return Channel("telegram", send)


def webhook(url: str) -> Channel:
    """A JSON POST to any URL (a chat relay, the operator's own script)."""

    def send(session: requests.Session, notice: Notice, timeout: Timeout) -> Attempt:
        return _post(session, url, {"kind": notice.kind, "level": notice.level,
                                    "text": notice.text, "at": notice.at.isoformat()},
                     timeout)

    return Channel("webhook", send)


def channels_for(settings: Settings) -> list[Channel]:
    channels = []
    if settings.telegram_bot_token and settings.telegram_chat_id:
        channels.append(telegram(settings.telegram_api_url,
                                 settings.telegram_bot_token.reveal(),
                                 settings.telegram_chat_id))
    if settings.notify_webhook_url:
        channels.append(webhook(settings.notify_webhook_url.reveal()))
    return channels


def _post(session: requests.Session, url: str, body: dict[str, Any],
          timeout: Timeout) -> Attempt:
    try:
        response = session.post(url, json=body, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        # The class only: the message quotes the URL, and Telegram's holds the bot token.
        return Attempt(False, error=type(exc).__name__)
    status = response.status_code
    if 200 <= status < 300:
        return Attempt(True)
    answer = _json(response)
    detail = answer.get("description")
    error = f"HTTP {status}: {detail if isinstance(detail, str) else response.reason}"[:300]
    if status == 429:
        return Attempt(False, retry_after=_retry_after(response, answer), error=error)
    # A redirect or a client error will not heal by itself (408 is the client's slowness).
    if 300 <= status < 500 and status != 408:
        return Attempt(False, permanent=True, error=error)
    return Attempt(False, error=error)


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _retry_after(response: requests.Response, answer: dict[str, Any]) -> float | None:
    """Telegram's ``parameters.retry_after``, else an HTTP ``Retry-After`` in seconds."""
    parameters = answer.get("parameters")
    value = parameters.get("retry_after") if isinstance(parameters, dict) else None
    if value is None:
        value = response.headers.get("Retry-After")
    try:
        return max(float(value), 0.0) if value is not None else None
    except (TypeError, ValueError):
        return None


# --- the courier ------------------------------------------------------------------------


class Courier:
    """Delivers the outbox's notices to every channel, on its own daemon thread."""

    def __init__(self, book: JobBook, channels: Sequence[Channel], clock: Clock, *,
                 redactor: Redactor | None = None, backoff: Backoff | None = None,
                 poll: float = 2.0, lease: timedelta = timedelta(minutes=2),
                 timeout: Timeout = TIMEOUT) -> None:
        self.book = book
        self.channels = list(channels)
        self.clock = clock  # the notices' clock: how old a notice is
        self.redactor = redactor or Redactor()
        self.backoff = backoff or Backoff()
        self.poll = poll
        self.lease = lease  # longer than a post to every channel can take
        self.timeout = timeout
        self._session = requests.Session()
        self._paused: dict[str, float] = {}  # channel -> monotonic end of its 429 pause
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="bridge-courier", daemon=True)
        self._thread.start()
        log.info("notice courier started (%s)", ", ".join(c.name for c in self.channels))

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._session.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                full = self.run_once() >= BATCH
            except Exception:
                log.exception("notice courier error (it carries on)")
                full = False
            if not full:
                self._stop.wait(self.poll)

    def run_once(self) -> int:
        """Deliver the notices due now; returns how many this courier took."""
        taken = 0
        for due in self.book.due_notices(_wall(), BATCH):
            if self._stop.is_set():
                break
            now = _wall()
            claimed = self.book.claim_notice(due.notice.id, now, now + self.lease)
            if claimed is not None:
                self._deliver(claimed)
                taken += 1
        return taken

    def _deliver(self, entry: Outgoing) -> None:
        notice = entry.notice
        sent, refused = set(entry.sent_to), set(entry.refused_by)
        errors: list[str] = []
        wait = 0.0
        stale = self._too_old(notice)
        for channel in self.channels:
            if stale or channel.name in sent or channel.name in refused:
                continue
            attempt = self._try(channel, notice)
            if attempt.ok:
                sent.add(channel.name)
                log.info("notice %d [%s] sent to %s", notice.id, notice.kind, channel.name)
                continue
            error = self.redactor.redact(attempt.error)
            errors.append(f"{channel.name}: {error}")
            if attempt.permanent:
                refused.add(channel.name)
                log.error("notice %d [%s]: %s refused it (%s); not retried", notice.id,
                          notice.kind, channel.name, error)
            else:
                wait = max(wait, attempt.retry_after or 0.0)
        pending = [c.name for c in self.channels if c.name not in sent | refused]
        attempts = entry.attempts + (0 if stale else 1)

        def record(**outcome: Any) -> None:
            self.book.record_delivery(notice.id, attempts=attempts, sent_to=sent,
                                      refused_by=refused, last_error="; ".join(errors) or None,
                                      **outcome)

        if not pending:
            record(delivered=bool(sent), gave_up=not sent)
        elif stale and not attempts:
            log.info("notice %d [%s] raised %s is too old to send; skipped", notice.id,
                     notice.kind, notice.at.isoformat(timespec="seconds"))
            record(gave_up=True)
        elif stale or self._too_old(notice):
            log.error("notice %d [%s] given up after %d tries, not delivered to %s",
                      notice.id, notice.kind, attempts, ", ".join(pending))
            record(gave_up=True)
        else:
            delay = max(self.backoff.delay(attempts), wait)
            log.warning("notice %d [%s] not yet delivered to %s (%s); next try in %.1f s",
                        notice.id, notice.kind, ", ".join(pending), "; ".join(errors), delay)
            record(next_try_at=_wall() + timedelta(seconds=delay))

    def _try(self, channel: Channel, notice: Notice) -> Attempt:
        paused = self._paused.get(channel.name, 0.0) - time.monotonic()
        if paused > 0:
            return Attempt(False, retry_after=paused, error="holding off: rate limited")
        try:
            attempt = channel.send(self._session, notice, self.timeout)
        except Exception as exc:  # a channel's fault must not stop the others
            attempt = Attempt(False, error=type(exc).__name__)
        if attempt.retry_after:
            self._paused[channel.name] = time.monotonic() + attempt.retry_after
        return attempt

    def _too_old(self, notice: Notice) -> bool:
        return self.clock.now() - notice.at > self.backoff.give_up_after


def courier_for(settings: Settings, book: JobBook, clock: Clock,
                redactor: Redactor | None = None) -> Courier | None:
    """A courier for the configured channels; ``None`` when none is (it is not started)."""
    channels = channels_for(settings)
    return Courier(book, channels, clock, redactor=redactor) if channels else None


def _wall() -> datetime:
    """Leases and retry times are real time, whatever clock the notices carry."""
    return datetime.now(UTC)
