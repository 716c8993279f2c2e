"""Secrets never reach a log line, whatever path they take into it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bridge.log import JsonFormatter, RedactFilter, Redactor


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, Redactor]]:
    stream = io.StringIO()
    redactor = Redactor(["webhook-secret-value", "654321"])
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactFilter(redactor))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream, redactor
    logger.removeHandler(handler)


@pytest.mark.parametrize("message", [
    "alert with secret webhook-secret-value",
    "body {'secret': 'webhook-secret-value'}",
    "mpin=654321",
    'payload {"mpin": "654321", "totp": "112233", "password": "hunter22"}',
    "Auth: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
    "Authorization: Bearer abcdefghijklmnop",
    "POST /webhook/chartink/webhook-secret-value -> 200",
])
def test_secrets_in_messages_are_masked(captured: tuple[logging.Logger, io.StringIO, Redactor],
                                        message: str) -> None:
    logger, stream, _ = captured

    logger.info(message)

    line = stream.getvalue()
    for secret in ("webhook-secret-value", "654321", "112233", "hunter22", "abcdefghijklmnop",
                   "eyJzdWIiOiJ4In0"):
        assert secret not in line
    assert "***" in line


def test_secrets_in_arguments_and_tracebacks_are_masked(
        captured: tuple[logging.Logger, io.StringIO, Redactor]) -> None:
    logger, stream, _ = captured

    logger.warning("login with %s", "webhook-secret-value")
    try:
        raise RuntimeError("boom with 654321 inside")
    except RuntimeError:
        logger.exception("failed")

    text = stream.getvalue()
    assert "webhook-secret-value" not in text and "654321" not in text
    assert "RuntimeError" in text


def test_tokens_learned_at_login_are_masked_afterwards(
        captured: tuple[logging.Logger, io.StringIO, Redactor]) -> None:
    logger, stream, redactor = captured
    redactor.add("7f3c1e2a-session-sid")

    logger.info("using sid 7f3c1e2a-session-sid for orders")

    assert "7f3c1e2a-session-sid" not in stream.getvalue()


Captured = tuple[logging.Logger, io.StringIO, Redactor]


def test_ordinary_text_is_left_alone(captured: Captured) -> None:
    logger, stream, _ = captured

    logger.info("placed order 261124000000001 for SBIN-EQ qty 10 tokens=5")

    assert "placed order 261124000000001 for SBIN-EQ qty 10 tokens=5" in stream.getvalue()


def test_json_lines_carry_the_masked_message() -> None:
    record = logging.LogRecord("bridge", logging.INFO, __file__, 1, "secret=%s", ("abc123",),
                               None)
    RedactFilter(Redactor()).filter(record)

    entry = json.loads(JsonFormatter().format(record))

    assert entry["message"] == "secret=***" and entry["level"] == "INFO"
