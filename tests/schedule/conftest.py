"""The live-mode bridge of the signal tests, for the scheduler's tests."""

import dataclasses
from decimal import Decimal

import pytest

from bridge.kotak.sandbox import SandboxAccount
from tests.signals.conftest import make_bridge

__all__ = ["account", "make_bridge"]


@pytest.fixture
def account() -> SandboxAccount:
    """A trader with room for the futures positions of the square-off drills."""
    return dataclasses.replace(SandboxAccount.generate("AB123"), cash=Decimal(500_000_000))
