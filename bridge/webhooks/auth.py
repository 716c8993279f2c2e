"""Who may send signals: the shared secret, AmiBroker's signature, TradingView's addresses,
and limits per address."""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections import deque
from datetime import datetime, timedelta

from bridge.journal.journal import Journal

#: TradingView's published webhook source addresses (help article 43000529348).
TRADINGVIEW_IPS = frozenset({"52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7"})
SIGNATURE_WINDOW_S = 60


def client_address(remote_addr: str, forwarded_for: str | None, trusted_proxies: int) -> str:
    """The caller's address, believing ``X-Forwarded-For`` only through trusted hops.

    Each trusted proxy appends the address it received from; with ``n`` of them the caller is
    the ``n``-th entry from the right. Anything further left was written by the caller.
    """
    if trusted_proxies <= 0 or not forwarded_for:
        return remote_addr
    hops = [part.strip() for part in forwarded_for.split(",") if part.strip()]
    if len(hops) < trusted_proxies:
        return remote_addr
    return hops[-trusted_proxies]


def caller(address: str, credential: str | None, shared: bool) -> str:
    """Whom a refused request is counted against: its address; but on an address many people
    share (TradingView sends every user's alerts from the same four), the address and the
    credential it presented, so nobody's wrong secrets can lock the owner's alerts out."""
    if not shared:
        return address
    digest = hashlib.sha256((credential or "").encode("utf-8", "replace")).hexdigest()
    return f"{address}|{digest[:16]}"


def signature_digest(signature: str) -> str:
    """A used signature's record (its hash, so the journal never holds a valid one)."""
    return hashlib.sha256(signature.strip().lower().encode("utf-8", "replace")).hexdigest()


def secret_matches(given: str, expected: str) -> bool:
    """Compare in constant time (a timing difference must not reveal the secret)."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def signature_valid(secret: str, timestamp: str, signature: str, body: bytes,
                    now: float | None = None) -> bool:
    """Check ``X-Signature: sha256=<hex HMAC of "<X-Timestamp>.<body>">`` within 60 s."""
    try:
        stamp = float(timestamp)
    except ValueError:
        return False
    # "nan" parses, and every comparison with it is false: it would pass the window check.
    if not math.isfinite(stamp):
        return False
    if abs((now if now is not None else time.time()) - stamp) > SIGNATURE_WINDOW_S:
        return False
    expected = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + b"." + body,
                        hashlib.sha256).hexdigest()
    given = signature.strip()
    given = given[len("sha256="):] if given.lower().startswith("sha256=") else given
    return hmac.compare_digest(expected, given.lower())


class InboundLimiter:
    """Requests per address per minute, in this process (a flood guard, not an order limit)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, address: str) -> bool:
        now = time.monotonic()
        with self._lock:
            window = self._seen.setdefault(address, deque())
            while window and now - window[0] > 60:
                window.popleft()
            if len(window) >= self.per_minute:
                return False
            window.append(now)
            if len(self._seen) > 10_000:
                self._forget(now)
            return True

    def _forget(self, now: float) -> None:
        for address in [a for a, w in self._seen.items() if not w or now - w[-1] > 60]:
            del self._seen[address]


class FailureBook:
    """Wrong secrets per address, counted in the journal so every process shares them.

    Every signal asks whether its address is blocked, and every accepted one would clear the
    address's record; both go through a short per-process cache, so the common case (an
    address with nothing on record) costs no query and no write. A block decided in another
    process is seen here within ``ttl`` seconds; one decided here is seen at once.
    """

    def __init__(self, journal: Journal, limit: int, window: timedelta, block: timedelta,
                 ttl: float = 1.0) -> None:
        self.journal = journal
        self.limit = limit
        self.window = window
        self.block = block
        self.ttl = ttl
        self._known: dict[str, tuple[float, bool, datetime | None]] = {}
        self._lock = threading.Lock()

    def blocked_until(self, address: str) -> datetime | None:
        return self._record(address)[1]

    def failed(self, address: str) -> None:
        blocked = self.journal.auth.note_auth_failure(address, self.limit, self.window, self.block)
        self._remember(address, True, blocked)

    def succeeded(self, address: str) -> None:
        on_record, blocked = self._record(address)
        if on_record and blocked is None:
            self.journal.auth.clear_auth_failures(address)
            self._remember(address, False, None)

    def _record(self, address: str) -> tuple[bool, datetime | None]:
        now = time.monotonic()
        with self._lock:
            known = self._known.get(address)
        # Only "nothing on record" is taken from the cache: an address with failures is
        # asked of the journal every time, so a block made by another process holds here at
        # once instead of after one more try.
        if known is not None and known[0] > now and not known[1]:
            return known[1], known[2]
        on_record, blocked = self.journal.auth.auth_record(address)
        self._remember(address, on_record, blocked)
        return on_record, blocked

    def _remember(self, address: str, on_record: bool, blocked: datetime | None) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._known) > 10_000:
                self._known = {a: k for a, k in self._known.items() if k[0] > now}
            self._known[address] = (now + self.ttl, on_record, blocked)
