"""Liveness and readiness.

``/healthz``: the process answers. ``/readyz``: it can do its job now: the journal accepts
writes, each account holds a valid Kotak session, a scrip master is loaded, and a scheduler
leader is alive (its heartbeat is recent), so the next login and square-off will happen. When
not ready it answers 503 with every reason, in words an operator can act on.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from bridge.config import SchedulerPlace
from bridge.journal.schema import check_writable
from bridge.kotak.instruments import InstrumentsUnavailable
from bridge.schedule.runner import ROLE, STALE_AFTER
from bridge.web_context import current_services
from bridge.wiring import Services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    services = current_services()
    checks: dict[str, Any] = {}
    reasons: list[str] = []
    try:
        check_writable(services.engine)
        checks["journal"] = "writable"
    except SQLAlchemyError as exc:
        checks["journal"] = "not writable"
        reasons.append(f"the journal database is not writable: {type(exc).__name__}")
    for account, client in services.brokers.items():
        status = client.sessions.status()
        checks[f"kotak_session:{account}"] = {
            "valid": status.valid, "detail": status.detail,
            "expires_at": status.expires_at.isoformat() if status.expires_at else None,
        }
        if not status.valid:
            reasons.append(f"account {account}: no valid Kotak session ({status.detail})")
        elif status.login_blocked:
            # Trading works today, but the next daily login will not run by itself.
            reasons.append(f"account {account}: {status.detail}; until then the bridge does "
                           f"not log in by itself: log in at "
                           f"{services.settings.redirect_url} or with `make login`")
    try:
        index = services.instruments.current()
        checks["instruments"] = {"count": len(index), "day": index.trading_day.isoformat()}
    except InstrumentsUnavailable as exc:
        checks["instruments"] = "not loaded"
        reasons.append(str(exc))
    _scheduler_check(services, checks, reasons)
    depth, oldest = services.journal.queue.queue_depth()
    checks["queue"] = {"queued": depth, "oldest_received_at": oldest.isoformat()
                       if oldest else None, "kill_switch": services.journal.switches.kill_switch()}
    body = {"status": "not_ready" if reasons else "ready",
            "mode": services.settings.mode.value, "checks": checks, "reasons": reasons}
    return jsonify(body), 503 if reasons else 200


def _scheduler_check(services: Services, checks: dict[str, Any], reasons: list[str]) -> None:
    place = services.settings.schedule.place
    if place is SchedulerPlace.OFF:
        checks["scheduler"] = {"place": place.value}
        return
    leader = services.jobs.leader(ROLE)
    now = services.clock.now()
    age = (now - leader.heartbeat_at).total_seconds() if leader is not None else None
    checks["scheduler"] = {
        "place": place.value, "leader": leader.holder if leader else None,
        "leader_since": leader.since.isoformat() if leader else None,
        "heartbeat_age_s": round(age, 1) if age is not None else None,
    }
    if leader is None or age is None or age > STALE_AFTER.total_seconds():
        where = ("the web workers" if place is SchedulerPlace.EMBEDDED
                 else "`bridge scheduler` (deploy/bridge-scheduler.service)")
        reasons.append(f"no scheduler is leading (expected in {where}): the daily login and "
                       "the square-off will not run")
