"""What went wrong talking to Kotak, and what the caller may do about it.

The tree::

    KotakError
    ├── SessionInvalid       no usable session, or Kotak refused it: log in again. Nothing executed.
    ├── LoginFailed          Kotak refused a login step (wrong TOTP, MPIN, password, key ...).
    ├── LoginBlocked         not attempted: a person must act first (a previous attempt failed,
    │                        or unattended login is not configured). Kotak locks after 3 failures.
    ├── BrokerUnavailable    the request did not reach Kotak or was not processed: safe to retry.
    │   └── RateLimited      HTTP 429; safe to retry after ``retry_after`` seconds.
    ├── BrokerRejected       Kotak processed the request and said no (``code``, ``message``,
    │                        and a plain ``explanation`` for the codes we know).
    ├── RequestInvalid       refused before sending: the request cannot be written in Kotak's
    │                        form. Nothing reached Kotak.
    ├── ProtocolError        an answer we cannot read (HTML, bad JSON, wrong shape) to a request
    │                        that changes nothing at Kotak. Retrying is pointless until fixed.
    └── OutcomeUnknown       an order-changing request was sent and no readable answer came back.
                             Never retried: reconcile from the order book (our tag is on the order).

Every error carries ``retry_safe``: whether sending the same request again cannot double
anything. Order-changing calls are never retried automatically, whatever this says.
"""

from __future__ import annotations

from dataclasses import dataclass


class KotakError(Exception):
    """Base of every connector error."""

    retry_safe = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SessionInvalid(KotakError):
    """The session is missing, expired, or Kotak refused it; a new login is needed."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class LoginFailed(KotakError):
    """Kotak refused a login step. Counts toward the account lock-out."""

    def __init__(self, step: str, message: str, code: str = "") -> None:
        super().__init__(f"Kotak login failed at {step}: {message}")
        self.step = step
        self.code = code
        self.reason = message


class LoginBlocked(KotakError):
    """A login was not attempted because a person must act first."""


class BrokerUnavailable(KotakError):
    """Kotak was not reached, or answered that it could not process the request."""

    retry_safe = True


class RateLimited(BrokerUnavailable):
    """Kotak refused the request for exceeding its rate limit (HTTP 429)."""

    retry_after: float | None

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Rejection:
    """A Kotak error code and what it means for the trader."""

    code: str
    message: str
    explanation: str


class BrokerRejected(KotakError):
    """Kotak processed the request and refused it."""

    def __init__(self, code: str, message: str, explanation: str = "") -> None:
        text = f"Kotak refused ({code}): {message}" if code else f"Kotak refused: {message}"
        if explanation:
            text = f"{text}. {explanation}"
        super().__init__(text)
        self.code = code
        self.broker_message = message
        self.explanation = explanation


class RequestInvalid(KotakError):
    """The request could not be written in Kotak's form (a price that rounds to nothing, a
    bad tag ...): it was refused before anything was sent."""


class ProtocolError(KotakError):
    """Kotak's answer could not be understood; ``status`` is the HTTP status when that is
    what said so (404: no such call at this address)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class OutcomeUnknown(KotakError):
    """An order-changing request was sent but its result is unknown; never resend blindly."""

    def __init__(self, message: str, cause: str = "") -> None:
        super().__init__(message)
        self.cause = cause
