"""Run the sandbox standalone: ``python -m bridge.kotak.sandbox --port 8899``.

It accepts only the credentials given on the command line; any left out are generated and
printed at start, together with the settings that point a live-mode bridge at it.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from bridge.clock import IST, Clock, ManualClock, SystemClock
from bridge.kotak.sandbox import (
    Sandbox,
    SandboxAccount,
    SandboxConfig,
    SandboxServer,
    SqliteStateStore,
)
from bridge.kotak.sandbox.hosts import Role
from bridge.kotak.sandbox.state import MemoryStateStore, StateStore


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bridge.kotak.sandbox",
                                     description="A local Kotak Neo Trade API for drills.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8899)
    for name in ("consumer-key", "consumer-secret", "mobile", "password", "mpin",
                 "totp-secret", "otp", "pan"):
        parser.add_argument(f"--{name}", default="")
    parser.add_argument("--ucc", default="SANDX")
    parser.add_argument("--cash", type=Decimal, default=Decimal(1_000_000),
                        help="opening cash of the account, rupees")
    parser.add_argument("--order-rate", type=int, default=10,
                        help="order requests per second per account before HTTP 429 (0: off)")
    parser.add_argument("--accept-delay", type=float, default=0.0,
                        help="seconds an order stays 'open pending' before the exchange answers")
    parser.add_argument("--oauth-expires-in", type=int, default=3600)
    parser.add_argument("--server-id", default="server1", help="hsServerId of legacy logins")
    parser.add_argument("--whitelist", nargs="*", default=[],
                        help="IPs allowed to place orders (default: any)")
    parser.add_argument("--bind-session-ip", action="store_true",
                        help="refuse orders from another IP than the session's (stCode 1037)")
    parser.add_argument("--allow-slm", action="store_true",
                        help="accept SL-M orders (Kotak refuses them from API sessions)")
    parser.add_argument("--no-market-protection", action="store_true",
                        help="fill MKT orders as MKT instead of protected limits")
    parser.add_argument("--frozen-prices", action="store_true",
                        help="keep every price at the catalogue's level (or as set through "
                             "POST /_sandbox/prices) instead of letting prices walk")
    parser.add_argument("--walk-seed", type=int, default=SandboxConfig.walk_seed,
                        help="seed of the price walk: the same seed replays the same prices")
    parser.add_argument("--walk-volatility", type=float, default=SandboxConfig.walk_volatility,
                        help="standard deviation of an underlying's move over one hour "
                             "(0.0025 = 0.25 %%)")
    parser.add_argument("--manual-clock", action="store_true",
                        help="freeze the clock; move it with POST /_sandbox/clock")
    parser.add_argument("--state", type=Path, default=None,
                        help="keep the books in this SQLite file across restarts")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    account = SandboxAccount.generate(
        args.ucc, mobile=args.mobile, mpin=args.mpin, totp_secret=args.totp_secret,
        password=args.password, consumer_key=args.consumer_key,
        consumer_secret=args.consumer_secret, otp=args.otp, pan=args.pan)
    account = dataclasses.replace(account, cash=args.cash)
    config = SandboxConfig(
        order_rate=args.order_rate, accept_delay=args.accept_delay,
        oauth_expires_in=args.oauth_expires_in, server_id=args.server_id,
        reject_slm=not args.allow_slm, protect_market=not args.no_market_protection,
        whitelist=tuple(args.whitelist), bind_session_ip=args.bind_session_ip,
        price_walk=not args.frozen_prices, walk_seed=args.walk_seed,
        walk_volatility=args.walk_volatility)
    clock: Clock = ManualClock(datetime.now(IST)) if args.manual_clock else SystemClock()
    store: StateStore = SqliteStateStore(args.state) if args.state else MemoryStateStore()
    sandbox = Sandbox([account], config=config, store=store, clock=clock)
    server = SandboxServer(sandbox, args.host, args.port, one_entry=True)
    hosts = "".join(f"  {role.value:8} {server.url_of(role)}\n" for role in Role)
    sys.stdout.write(
        f"Kotak sandbox on {server.url} (Ctrl-C stops it), one port per Kotak host (the "
        f"first also answers as the oauth host and the gateway):\n{hosts}\n"
        f"{_prices_line(config)}\n\n"
        "Credentials it accepts (and settings for a live-mode bridge pointed at it):\n"
        f"  BRIDGE_MODE=live\n"
        f"  KOTAK_LOGIN_URL={server.url}\n  KOTAK_OAUTH_URL={server.oauth_url}\n"
        f"  KOTAK_GATEWAY_URL={server.gateway_url}\n"
        f"  BROKER_API_KEY={account.consumer_key}\n"
        f"  BROKER_API_SECRET={account.consumer_secret}\n"
        f"  KOTAK_UCC={account.ucc}\n  KOTAK_MOBILE={account.mobile}\n"
        f"  KOTAK_PAN={account.pan}\n  KOTAK_MPIN={account.mpin}\n"
        f"  KOTAK_TOTP_SECRET={account.totp_secret}\n  KOTAK_PASSWORD={account.password}\n"
        f"  (legacy OTP: {account.otp})\n\n")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        return 0
    return 0


def _prices_line(config: SandboxConfig) -> str:
    if not config.price_walk:
        return "Prices stay at the catalogue's levels (--frozen-prices)."
    return (f"Prices walk (seed {config.walk_seed}, {config.walk_volatility:.2%} an hour); "
            'POST /_sandbox/walk {"running": false} freezes them.')


if __name__ == "__main__":
    sys.exit(main())
