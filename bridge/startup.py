"""What happens once when the bridge starts, before it serves anything.

Run by gunicorn's master (``deploy/gunicorn.conf.py``) before workers fork, so it happens once
however many workers there are: report setting warnings, log in when no valid session is held
(unattended, within the lock-out rule), and make sure today's scrip master is loaded. Nothing
here stops the start: a failure is logged and shown by ``/readyz``.
"""

from __future__ import annotations

import logging

from bridge.config import Mode, Settings
from bridge.kotak.errors import KotakError, LoginBlocked
from bridge.kotak.instruments import InstrumentError, InstrumentsUnavailable
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
        index = services.instruments.current()
        log.info("scrip master in use: %d instruments for %s", len(index), index.trading_day)
    except InstrumentsUnavailable:
        try:
            services.instruments.refresh(services.broker())
        except (KotakError, InstrumentError) as exc:
            log.error("scrip master could not be loaded at start: %s", exc)


def banner(settings: Settings, *, show_secret: bool) -> str:
    """The lines a person needs to wire up their alerts."""
    base = f"http://{settings.bind}"
    secret = settings.webhook_secret.reveal() if show_secret else "(see WEBHOOK_SECRET in .env)"
    chartink = (f"{base}/webhook/chartink/{settings.webhook_secret.reveal()}" if show_secret
                else f"{base}/webhook/chartink/<WEBHOOK_SECRET>")
    mode = ("PAPER (orders go to the built-in Kotak sandbox; no money moves)"
            if settings.mode is Mode.PAPER else "LIVE (orders go to Kotak)")
    return "\n".join([
        "",
        "Kotak signal bridge",
        f"  mode:            {mode}",
        f"  TradingView:     {base}/webhook/tradingview",
        f"  AmiBroker:       {base}/webhook/amibroker",
        f"  ChartInk:        {chartink}",
        f"  webhook secret:  {secret}",
        f"  health:          {base}/healthz  {base}/readyz",
        "  (TradingView calls only ports 80/443: put nginx with TLS in front, see deploy/)",
        "",
    ])
