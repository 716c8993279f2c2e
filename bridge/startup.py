"""What happens once when the bridge starts, before it serves anything.

Run by gunicorn's master (``deploy/gunicorn.conf.py``) before workers fork, so it happens once
however many workers there are: report setting warnings, log in when no valid session is held
(unattended, within the lock-out rule), and make sure today's scrip master is loaded. Nothing
here stops the start: a failure is logged and shown by ``/readyz``.
"""

from __future__ import annotations

import json
import logging
import shlex

from bridge.config import Mode, Settings
from bridge.kotak.errors import KotakError, LoginBlocked
from bridge.kotak.instruments import InstrumentError
from bridge.wiring import Services

log = logging.getLogger(__name__)


def prepare(services: Services) -> None:
    settings = services.settings
    for warning in settings.warnings:
        log.warning("setting: %s", warning)
    for account, client in services.brokers.items():
        status = client.sessions.status()
        if status.valid:
            log.info("kotak session of account %s: %s", account, status.detail)
            continue
        try:
            client.sessions.login()
        except LoginBlocked as exc:
            log.warning("no kotak session for account %s and no unattended login: %s",
                        account, exc.message)
        except KotakError as exc:
            log.error("kotak login for account %s failed at start: %s", account, exc.message)
    try:
        if settings.mode is Mode.PAPER:
            # The paper market is built in this process, in a moment: build it afresh, so
            # shares added to the data folder's paper-instruments.csv count from this start
            # (today's cached copy predates them).
            services.instruments.refresh(services.broker())
        index = services.instruments.ensure(services.broker())
        log.info("scrip master in use: %d instruments for %s", len(index), index.trading_day)
    except (KotakError, InstrumentError) as exc:
        log.error("scrip master could not be loaded at start: %s", exc)


def banner(settings: Settings, *, show_secret: bool) -> str:
    """The lines a person needs to wire up their alerts and open the dashboard, ready to copy.

    With ``show_secret`` (``make run``, ``bridge banner``: the person at their own machine,
    reading what their own .env holds) the webhook secret, the dashboard password and the API
    key are printed as they are, so the curl lines work as pasted; without, only named."""
    local = f"http://{settings.bind}"
    base = settings.public_url or local
    secret = settings.webhook_secret.reveal() if show_secret else "<WEBHOOK_SECRET>"
    mode = ("PAPER (orders go to the built-in Kotak sandbox; no money moves)"
            if settings.mode is Mode.PAPER else "LIVE (orders go to Kotak)")
    if not settings.admin_password:
        dashboard = f"{base}/  (locked until ADMIN_PASSWORD is set in .env)"
    elif show_secret:
        dashboard = f"{base}/  (password: {settings.admin_password.reveal()})"
    else:
        dashboard = f"{base}/  (password: ADMIN_PASSWORD in .env)"
    # TradingView fills the {{...}} placeholders when the alert fires; the alert_id makes a
    # re-sent alert a duplicate instead of a second order.
    message = json.dumps({"secret": secret, "symbol": "NSE:SBIN",
                          "action": "{{strategy.order.action}}", "quantity": 1,
                          "alert_id": "{{ticker}}-{{strategy.order.id}}-{{timenow}}"})
    trial = json.dumps({"secret": secret, "symbol": "NSE:SBIN", "action": "buy",
                        "quantity": 1, "alert_id": "try-1"}, separators=(",", ":"))
    api_key = settings.api_key.reveal() if show_secret else "<API_KEY>"
    api = (f"{base}/api/v1/  (OpenAlgo-compatible; key: API_KEY in .env)" if settings.api_key
           else "off (set API_KEY in .env to turn it on)")
    lines = [
        "",
        "Kotak signal bridge",
        f"  mode:            {mode}",
        f"  TradingView:     {base}/webhook/tradingview",
        f"  AmiBroker:       {base}/webhook/amibroker",
        f"  ChartInk:        {base}/webhook/chartink/{secret}",
        f"  webhook secret:  {secret if show_secret else '(WEBHOOK_SECRET in .env)'}",
        f"  REST API:        {api}",
        f"  dashboard:       {dashboard}",
        f"  Kotak login:     {base}/kotak/callback",
        f"  health:          {base}/healthz  {base}/readyz",
    ]
    if not settings.public_url:
        lines.append("  (TradingView calls only public addresses on ports 80/443: put nginx or "
                     "Caddy with TLS in front and set PUBLIC_URL, see deploy/README.md)")
    lines += [
        "",
        "TradingView alert message (strategy alert; paste into the alert's Message box):",
        f"  {message}",
        ("Try it from this machine" if settings.mode is Mode.PAPER else
         "Try it from this machine (LIVE: this buys 1 SBIN at Kotak for real)")
        + " (send it again with a new alert_id: a repeat is answered as a duplicate):",
        f"  curl -X POST {local}/webhook/tradingview -H 'Content-Type: text/plain' "
        f"-d {shlex.quote(trial)}",
    ]
    if settings.api_key:
        # The ping places nothing: it proves the key and the address an OpenAlgo client
        # (host=<this address>, api_key=<API_KEY>) will use.
        ping = json.dumps({"apikey": api_key}, separators=(",", ":"))
        lines += [
            "REST API (OpenAlgo's clients work with host set to this address); check the key:",
            f"  curl -X POST {local}/api/v1/ping -H 'Content-Type: application/json' "
            f"-d {shlex.quote(ping)}",
        ]
    lines += [
        "Check the whole setup: make doctor  (or .venv/bin/bridge doctor)",
        "",
    ]
    return "\n".join(lines)
