"""Kotak's official SDK (kotakneoapi 3.0.9), created as a user creates it, pointed at a sandbox.

Only the SDK's host constants are redirected: the login host (``mis.kotaksecurities.com``,
also its fallback trading host) and the feed-config service (``lapi``); the trading host is
whatever ``baseUrl`` the sandbox's login hands out, as at Kotak. The SDK opens
``./logs/neo-api-client.log`` when first imported unless told not to (tests/conftest.py
does), and caches scrip CSVs and holdings under ``~/.kotak_neo``: the caches go to the test's
temporary folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from neo_api_client import NeoAPI
from neo_api_client.utils import neo_utility

from bridge.kotak.sandbox import SandboxAccount, SandboxServer
from bridge.kotak.sandbox.hosts import Role


@contextmanager
def sdk_against(server: SandboxServer, account: SandboxAccount, folder: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[NeoAPI]:
    monkeypatch.setenv("NEO_SCRIP_CACHE_DIR", str(folder / "scrip_cache"))
    monkeypatch.setenv("NEO_HOLDINGS_CACHE_DIR", str(folder / "holdings_cache"))
    monkeypatch.setattr(neo_utility, "SESSION_PROD_BASE_URL", server.url)
    monkeypatch.setattr(neo_utility, "PROD_BASE_URL", server.url)
    monkeypatch.setattr(neo_utility, "CONFIG_SERVICE_URL_PROD",
                        f"{server.url_of(Role.FILES)}/5config/config")
    client = NeoAPI(consumer_key=account.consumer_key, environment="prod")
    try:
        yield client
    finally:
        client.api_client.rest_client.close()
