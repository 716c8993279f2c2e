"""Reading a webhook body as TradingView, AmiBroker and ChartInk send it.

The body is read raw whatever the Content-Type (TradingView sends ``text/plain`` unless the
message is valid JSON; AmiBroker without ``InternetSetHeaders`` sends JSON labelled as a form),
a UTF-8 byte-order mark and surrounding whitespace are dropped, and a JSON error is answered
with its line and column so the user can fix the alert template.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, quote_plus, unquote_plus

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
        payload = json.loads(text, object_pairs_hook=_no_repeated_keys,
                             parse_constant=_no_constants)
    except _Repeated as exc:
        raise InvalidSignal(f"the field {exc.key!r} is given more than once; give each field "
                            "once (which one was meant cannot be guessed)",
                            {exc.key: ["is given more than once"]}) from exc
    except _NotFinite as exc:
        raise InvalidSignal(f"the body holds {exc.word}, which is not a number a trade can "
                            "use", {"body": [f"{exc.word} is not a finite number"]},
                            code="invalid_json") from exc
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
    _check_storable(payload, "")
    return payload


class _Repeated(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _NotFinite(ValueError):
    def __init__(self, word: str) -> None:
        super().__init__(word)
        self.word = word


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are each given once.

    JSON parsers keep the last of a repeated key, so ``{"action":"BUY","action":"SELL"}``
    would quietly sell, and a wrong secret followed by the right one would pass.
    """
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _Repeated(key)
        seen[key] = value
    return seen


def _no_constants(word: str) -> Any:
    """``NaN``, ``Infinity`` and ``-Infinity``: Python's JSON reads them, no trade can use
    them."""
    raise _NotFinite(word)


def _check_storable(value: Any, path: str) -> None:
    """Refuse text the journal cannot store (a lone UTF-16 surrogate such as ``"\ud800"``
    decodes to a string no database takes), naming the field.

    :raises InvalidSignal: 422, rather than a failed write after the signal was accepted.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            field = path or "body"
            raise InvalidSignal(f"the field {field!r} holds text that is not valid Unicode "
                                f"(character {exc.start + 1})",
                                {field: ["is not valid Unicode text"]}) from exc
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_storable(key, path or "body")
            _check_storable(item, key if not path else f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_storable(item, f"{path or 'body'}[{index}]")


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
    """The body as journaled, the secret removed however it was spelled.

    The literal and JSON-escaped spellings are replaced first; then every JSON string in the
    body is decoded (so ``\u0073ecret``-style escapes are seen through) and, in a form body,
    every percent-encoded key and value, and any that holds the secret is replaced whole.
    """
    if not secret:
        return text
    escaped = json.dumps(secret)[1:-1]
    text = text.replace(secret, "***").replace(escaped, "***")
    text = _JSON_STRING.sub(lambda m: _masked_token(m.group(0), secret), text)
    if not text.lstrip().startswith(("{", "[")):
        text = "&".join(_masked_pair(pair, secret) for pair in text.split("&"))
    return text


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _masked_token(token: str, secret: str) -> str:
    try:
        value = json.loads(token)
    except ValueError:
        return token
    if not isinstance(value, str) or secret not in value:
        return token
    return json.dumps(value.replace(secret, "***"))


def _masked_pair(pair: str, secret: str) -> str:
    key, equals, value = pair.partition("=")
    if secret in unquote_plus(key) or secret in unquote_plus(value):
        return f"{quote_plus(unquote_plus(key).replace(secret, '***'), safe='*')}{equals}" \
               f"{quote_plus(unquote_plus(value).replace(secret, '***'), safe='*')}"
    return pair


def canonical(payload: dict[str, Any]) -> str:
    """The payload in one spelling, for "the same body" (key order and spacing ignored)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
