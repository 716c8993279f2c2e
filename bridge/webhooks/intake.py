"""Reading a webhook body as TradingView, AmiBroker and ChartInk send it.

The body is read raw whatever the Content-Type (TradingView sends ``text/plain`` unless the
message is valid JSON; AmiBroker without ``InternetSetHeaders`` sends JSON labelled as a form),
a UTF-8 byte-order mark and surrounding whitespace are dropped, and a JSON error is answered
with its line and column so the user can fix the alert template.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from bridge.errors import InvalidSignal
from bridge.schemas import SECRET_FIELDS


def decode(raw: bytes) -> str:
    """The body as text, BOM and surrounding whitespace removed.

    :raises InvalidSignal: not UTF-8, or empty.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidSignal(f"the body is not UTF-8 text (byte {exc.start})",
                            {"body": ["must be UTF-8 text"]}, code="invalid_json") from exc
    text = text.strip().strip("\ufeff").strip()
    if not text:
        raise InvalidSignal("the body is empty: send the signal as a JSON object",
                            {"body": ["is empty"]}, code="invalid_json")
    return text


def parse(text: str, *, allow_form: bool = False) -> dict[str, Any]:
    """Parse a JSON object (or, where allowed, a form body ``a=1&b=2``).

    :raises InvalidSignal: with the line and column of a JSON error.
    """
    if allow_form and not text.startswith(("{", "[")) and "=" in text:
        return _form(text)
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidSignal(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            {"body": [f"{exc.msg} at line {exc.lineno} column {exc.colno}"],
             "line": exc.lineno, "column": exc.colno}, code="invalid_json") from exc
    except (ValueError, RecursionError) as exc:
        raise InvalidSignal("the body is not usable JSON (numbers too long or nesting too "
                            "deep)", {"body": ["is not usable JSON"]},
                            code="invalid_json") from exc
    if not isinstance(payload, dict):
        raise InvalidSignal("the body must be a JSON object ({...}) of signal fields",
                            {"body": [f"is a JSON {type(payload).__name__}, not an object"]},
                            code="invalid_json")
    return payload


def _form(text: str) -> dict[str, Any]:
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise InvalidSignal("the body is neither JSON nor a form (key=value&...)",
                            {"body": ["is neither JSON nor key=value pairs"]},
                            code="invalid_json") from exc
    payload: dict[str, Any] = {}
    for key, value in pairs:
        if key in payload:
            raise InvalidSignal(f"the form repeats the field {key!r}",
                                {key: ["is given more than once"]})
        payload[key] = value
    return payload


def take_secret(payload: dict[str, Any]) -> tuple[str | None, bool]:
    """Remove ``secret``/``apikey`` from the payload; return (the secret, whether it was valid
    text). Both given and different counts as wrong."""
    found = [payload.pop(name) for name in SECRET_FIELDS if name in payload]
    if not found:
        return None, True
    if not all(isinstance(value, str) for value in found) or len(set(found)) > 1:
        return "", False
    return str(found[0]), True


def masked(text: str, secret: str) -> str:
    """The body as journaled: the secret (and its JSON-escaped form) replaced."""
    if not secret:
        return text
    escaped = json.dumps(secret)[1:-1]
    return text.replace(secret, "***").replace(escaped, "***")


def canonical(payload: dict[str, Any]) -> str:
    """The payload in one spelling, for "the same body" (key order and spacing ignored)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
