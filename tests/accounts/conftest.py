"""A bridge fanning signals out to many sandbox accounts: the default account plus N more
listed in an accounts file, their secrets in ACCOUNT_* variables, all on one loopback
sandbox, and optionally one account on a sandbox of its own (to fail it alone)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bridge.accounts import secret_env_name
from bridge.kotak.sandbox import Sandbox, SandboxAccount, SandboxConfig, SandboxServer
from tests.signals.conftest import Bridge, start_bridge

STRATEGY = "fan"


@dataclass
class Fleet:
    bridge: Bridge
    accounts: dict[str, SandboxAccount]  # bridge account name -> sandbox account
    sandboxes: dict[str, Sandbox] = field(default_factory=dict)  # name -> its sandbox

    def placed(self, name: str) -> list[dict[str, Any]]:
        sandbox = self.sandboxes[name]
        ucc = self.accounts[name].ucc
        return [json.loads(r.jdata) for r in sandbox.requests.snapshot("place")
                if r.ucc == ucc]


def account_entry(account: SandboxAccount, server: SandboxServer | None = None,
                  **sizing: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"ucc": account.ucc, "mobile": account.mobile, "mode": "live",
                             **sizing}
    if server is not None:
        entry.update(login_url=server.url, oauth_url=server.oauth_url,
                     gateway_url=server.gateway_url)
    return entry


def secrets_of(name: str, account: SandboxAccount) -> dict[str, str]:
    return {secret_env_name(name, "BROKER_API_KEY"): account.consumer_key,
            secret_env_name(name, "MPIN"): account.mpin,
            secret_env_name(name, "TOTP_SECRET"): account.totp_secret}


@pytest.fixture
def make_fleet(server: SandboxServer, account: SandboxAccount, database_url: str,
               tmp_path: Path) -> Iterator[Any]:
    """``make_fleet(n, sizing=..., lone=...)``: the default account and ``n`` more on the
    shared sandbox; ``lone``, when given, one more account on a sandbox of its own."""
    started: list[Bridge] = []
    servers: list[SandboxServer] = []

    def make(n: int, sizing: dict[str, dict[str, Any]] | None = None,
             lone: str = "", **overrides: str) -> Fleet:
        sizing = sizing or {}
        accounts = {"default": account}
        sandboxes = {"default": server.sandbox}
        entries: dict[str, Any] = {}
        env: dict[str, str] = {}
        for number in range(n):
            name = f"acc{number:03d}"
            member = SandboxAccount.generate(f"FA{number:03d}")
            server.sandbox.add_account(member)
            accounts[name], sandboxes[name] = member, server.sandbox
            entries[name] = account_entry(member, **sizing.get(name, {}))
            env.update(secrets_of(name, member))
        if lone:
            member = SandboxAccount.generate("LONE1")
            lean = SandboxConfig(order_rate=0, market="lean")
            own = SandboxServer(Sandbox([member], config=lean)).start()
            servers.append(own)
            accounts[lone], sandboxes[lone] = member, own.sandbox
            entries[lone] = account_entry(member, own, **sizing.get(lone, {}))
            env.update(secrets_of(lone, member))
        if "default" in sizing:
            entries["default"] = sizing["default"]
        path = tmp_path / "accounts.json"
        path.write_text(json.dumps({"accounts": entries,
                                    "strategies": {STRATEGY: list(accounts)}}))
        bridge = start_bridge(server, account, database_url, tmp_path / "data",
                              ACCOUNTS_FILE=str(path), SESSION_STAGGER_S="0",
                              **env, **overrides)
        started.append(bridge)
        return Fleet(bridge, accounts, sandboxes)

    yield make
    for bridge in started:
        bridge.services.close()
    for own in servers:
        own.stop()


def units(order: dict[str, Any]) -> int:
    return int(Decimal(order["qt"]))
