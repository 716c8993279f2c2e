"""The dashboard's pages and buttons.

Pages are rendered on the server from :class:`~bridge.dashboard.board.Board`; the overview
asks ``/live`` every few seconds for the same parts re-rendered, so a new signal shows up
without a reload and with no JavaScript framework, build step or CDN (the script and style
sheet ship in ``static/``). Buttons are plain forms posted with the session's CSRF token.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from bridge.clock import IST, today_ist
from bridge.config import Mode, Secret, Settings
from bridge.dashboard import alerts, guard
from bridge.dashboard.board import STATUS_MEANINGS, Board
from bridge.domain import Exchange, Product
from bridge.journal.jobs import RunStatus
from bridge.journal.rows import SignalStatus
from bridge.kotak.errors import KotakError, LoginBlocked
from bridge.kotak.instruments import InstrumentError, InstrumentIndex
from bridge.orders.entries import WHY_DASHBOARD, EntryStops
from bridge.web_context import current_services
from bridge.wiring import Services

if TYPE_CHECKING:
    from bridge.schedule.jobs import JobActions

log = logging.getLogger(__name__)

POLL_SECONDS = 3
MANUAL_SQUAREOFF = "squareoff:manual"

bp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
               static_url_path="/dashboard/static")
bp.before_request(guard.check)


def register(app: Flask, services: Services) -> None:
    guard.install(app, services)
    app.extensions["bridge.board"] = Board(services)
    app.extensions["bridge.squareoff"] = ManualSquareOff(services)
    app.jinja_env.filters["ist"] = _ist
    app.jinja_env.filters["money"] = _money
    app.jinja_env.globals["status_meanings"] = STATUS_MEANINGS
    app.jinja_env.globals["entries_stopped"] = _entries_stopped
    app.register_blueprint(bp)



def _board() -> Board:
    board: Board = current_app.extensions["bridge.board"]
    return board


# --- signing in and out ---------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    return guard.login()


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    return guard.logout()


# --- pages ----------------------------------------------------------------------------------

def _filters() -> tuple[str, str]:
    status = request.args.get("status", "")
    strategy = request.args.get("strategy", "")[:64]
    if status not in {s.value for s in SignalStatus}:
        status = ""
    return status, strategy


def _parts(status: str, strategy: str) -> dict[str, Any]:
    board = _board()
    return {"strip": board.strip(), "signals": board.signals(status=status, strategy=strategy),
            "orders": board.orders_today(), "positions": board.positions(),
            "squareoff": board.last_squareoff()}


@bp.get("/")
def index() -> ResponseReturnValue:
    status, strategy = _filters()
    return render_template(
        "index.html", status=status, strategy=strategy, statuses=[s.value for s in SignalStatus],
        strategies=_board().strategies(), exchanges=[e.value for e in Exchange],
        poll_seconds=POLL_SECONDS, **_parts(status, strategy))


@bp.get("/live")
def live() -> ResponseReturnValue:
    """The overview's changing parts, re-rendered, for the page's poller."""
    status, strategy = _filters()
    parts = _parts(status, strategy)
    return jsonify({
        "glance": render_template("_glance.html", strip=parts["strip"]),
        "strip": render_template("_strip.html", strip=parts["strip"]),
        "signals": render_template("_signals.html", signals=parts["signals"]),
        "orders": render_template("_orders.html", orders=parts["orders"]),
        "positions": render_template("_positions.html", positions=parts["positions"]),
        "squareoff": render_template("_squareoff.html", squareoff=parts["squareoff"]),
        "entries": render_template("_entries_block.html"),
    })


@bp.get("/signals/<int:signal_id>")
def signal(signal_id: int) -> ResponseReturnValue:
    found = _board().signal(signal_id)
    if found is None:
        return render_template("refused.html", reason=f"No signal {signal_id} in the journal "
                               "(it may be older than the retention period)."), 404
    line, events = found
    return render_template("signal.html", line=line, events=events)


@bp.get("/helper")
def helper() -> ResponseReturnValue:
    """Build the TradingView alert message, ready to copy: for a symbol, for an option by
    strike offset, or for a multi-leg option position."""
    mode = request.args.get("mode", "plain")
    if mode not in ("plain", "option", "legs"):
        mode = "plain"
    settings = current_services().settings
    base = settings.public_url or f"http://{settings.bind}"
    context: dict[str, Any] = {
        "mode": mode, "webhook": f"{base}/webhook/tradingview", "error": "", "text": "",
        "products": [p.value for p in Product], "indices": list(alerts.INDICES),
        "offsets": [(offset, offset) for offset in alerts.OFFSETS],
        "expiries": alerts.EXPIRIES, "actions": alerts.ACTIONS,
        "option_products": [("MIS", "MIS (intraday)"), ("NRML", "NRML (carry forward)")],
        "shapes": alerts.SHAPES, "directions": alerts.DIRECTIONS, "distances": range(1, 11),
        "leg_failure": settings.risk.leg_failure}
    if mode == "option":
        context.update(_option_helper())
    elif mode == "legs":
        context.update(_legs_helper())
    else:
        context.update(_plain_helper())
    return render_template("helper.html", **context)


def _plain_helper() -> dict[str, Any]:
    form = {"symbol": request.args.get("symbol", "").strip()[:60],
            "kind": request.args.get("kind", "strategy"),
            "size": request.args.get("size", "lots"),
            "lots": request.args.get("lots", "1"),
            "product": request.args.get("product", Product.MIS.value),
            "strategy": request.args.get("strategy", "").strip()[:64]}
    error, text, instrument = "", "", None
    if form["kind"] not in ("strategy", "buy", "sell"):
        form["kind"] = "strategy"
    if form["size"] not in alerts.STRATEGY_SIZES:
        form["size"] = "lots"
    if form["product"] not in {p.value for p in Product}:
        form["product"] = Product.MIS.value
    if form["symbol"]:
        try:
            lots = int(form["lots"])
            if not 1 <= lots <= 10_000:
                raise ValueError
            instrument, text = _board().template(
                form["symbol"], kind=form["kind"], lots=lots, product=form["product"],
                strategy=form["strategy"], size_from=form["size"])
        except ValueError:
            error = "Lots must be a whole number from 1 to 10000."
        except InstrumentError as exc:
            error = str(exc)
    return {"form": form, "error": error, "text": text, "instrument": instrument,
            "strategy_sizes": alerts.STRATEGY_SIZES,
            "units": int(form["lots"]) * instrument.lot_size if instrument and text else 0}


def _option_form() -> dict[str, str]:
    """The option and multi-leg forms' fields, as typed (defaults: one lot of NIFTY)."""
    args = request.args
    return {"underlying": args.get("underlying", "NIFTY").strip()[:30],
            "expiry": args.get("expiry", "nearest"),
            "expiry_on": args.get("expiry_on", "").strip()[:10],
            "lots": args.get("lots", "1").strip()[:6],
            "product": args.get("product", Product.MIS.value),
            "strategy": args.get("strategy", "").strip()[:64],
            "offset": args.get("offset", "ATM"), "option_type": args.get("option_type", "CE"),
            "action": args.get("action", "BUY"), "shape": args.get("shape", "straddle"),
            "direction": args.get("direction", "SELL"), "near": args.get("near", "2"),
            "far": args.get("far", "4")}


def _lot_size(underlying: str) -> alerts.LotSize:
    services = current_services()
    try:
        index: InstrumentIndex | None = services.instruments.current()
    except InstrumentError:
        index = None
    return alerts.lot_size(index, underlying, today_ist(services.clock))


def _option_helper() -> dict[str, Any]:
    form = _option_form()
    try:
        underlying = alerts.underlying_of(form["underlying"])
        expiry = alerts.expiry_of(form["expiry"], form["expiry_on"])
        lots = alerts.lots_of(form["lots"])
        built = alerts.option_alert(
            secret=current_services().settings.webhook_secret.reveal(),
            underlying=underlying, offset=form["offset"], option_type=form["option_type"],
            expiry=expiry, action=form["action"], lots=lots, lot=_lot_size(underlying),
            product=form["product"], strategy=form["strategy"])
    except alerts.TemplateError as exc:
        return {"form": form, "error": str(exc)}
    return {"form": form, "built": built, "text": built.text}


def _legs_helper() -> dict[str, Any]:
    form = _option_form()
    try:
        underlying = alerts.underlying_of(form["underlying"])
        expiry = alerts.expiry_of(form["expiry"], form["expiry_on"])
        lots = alerts.lots_of(form["lots"])
        near, far = alerts.distance_of(form["near"]), alerts.distance_of(form["far"])
        built = alerts.legs_alert(
            secret=current_services().settings.webhook_secret.reveal(),
            underlying=underlying, shape=form["shape"], direction=form["direction"],
            near=near, far=far, expiry=expiry, lots=lots, lot=_lot_size(underlying),
            product=form["product"], strategy=form["strategy"])
    except alerts.TemplateError as exc:
        return {"form": form, "error": str(exc)}
    return {"form": form, "built": built, "text": built.text}


#: the OpenAlgo v1 calls the bridge answers, as a client names them
API_CALLS = {
    "Orders": ["placeorder", "placesmartorder", "optionsorder", "optionsmultiorder",
               "basketorder", "splitorder", "modifyorder", "cancelorder", "cancelallorder",
               "closeposition"],
    "Reads": ["orderstatus", "openposition", "orderbook", "tradebook", "positionbook",
              "holdings", "funds", "quotes", "expiry", "optionsymbol", "ping"],
}


@bp.get("/api-access")
def api_access() -> ResponseReturnValue:
    """The REST API's key (masked until asked) and the address to give an OpenAlgo client."""
    settings = current_services().settings
    key = _api_key(settings)
    response = make_response(render_template(
        "api.html", key=key, masked=_masked(key), public=bool(settings.public_url),
        host=settings.public_url or f"http://{settings.bind}", calls=API_CALLS))
    # The page holds a credential: no copy of it may stay in a browser's or proxy's cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def _api_key(settings: Settings) -> str:
    """``API_KEY``, or "" when it is empty (the API is off) or the settings predate it."""
    value = getattr(settings, "api_key", None)
    return value.reveal() if isinstance(value, Secret) else ""


def _masked(key: str) -> str:
    """Dots for all but the last four characters (enough to tell two keys apart)."""
    if len(key) <= 8:
        return "\u2022" * len(key)
    return "\u2022" * 12 + key[-4:]


# --- actions --------------------------------------------------------------------------------

@bp.post("/actions/killswitch")
def killswitch() -> ResponseReturnValue:
    state = request.form.get("state")
    if state not in ("on", "off"):
        return render_template("refused.html", reason="state must be on or off"), 400
    current_services().desk.set_kill_switch(state == "on", by="dashboard")
    flash("Kill switch ON: new entries are refused; exits still go."
          if state == "on" else "Kill switch off: entries are accepted again.")
    return redirect(url_for("dashboard.index"))


@bp.post("/actions/squareoff")
def squareoff() -> ResponseReturnValue:
    """Square off now, or show what a square-off would do (dry run).

    The square-off form is the one confirmation: its "Square off now" button posts
    ``confirm=yes``. New intraday entries stay allowed unless the trader ticked
    ``block_entries`` (the scheduled square-off always stops them: the market is closing).
    """
    dry_run = request.form.get("dry_run") == "yes"
    if not dry_run and request.form.get("confirm") != "yes":
        return render_template("refused.html", reason=(
            "Nothing was squared off: press 'Square off now' on the square-off form.")), 400
    chosen = request.form.get("exchange", "")
    if chosen and chosen not in {e.value for e in Exchange}:
        return render_template("refused.html", reason=f"unknown exchange {chosen!r}"), 400
    block = request.form.get("block_entries", "")
    if block not in ("", "yes"):
        return render_template("refused.html", reason=(
            f"block_entries must be 'yes' or left out, not {block[:20]!r}")), 400
    exchanges = [Exchange(chosen)] if chosen else list(Exchange)
    runner: ManualSquareOff = current_app.extensions["bridge.squareoff"]
    if dry_run:
        status, lines = runner.preview(exchanges, block_entries=block == "yes")
        return render_template("squareoff_result.html", status=status, lines=lines,
                               exchanges=[e.value for e in Exchange], chosen=chosen,
                               block_entries=block == "yes")
    if runner.start(exchanges, block_entries=block == "yes"):
        flash("Square-off started: the report appears under 'Last square-off' when it ends. "
              + ("New intraday entries are stopped until the next trading day."
                 if block == "yes" else "New intraday entries stay allowed."))
    else:
        flash("A square-off started from this dashboard is still running.")
    return redirect(url_for("dashboard.index"))


@bp.post("/actions/entries")
def allow_entries() -> ResponseReturnValue:
    """Accept new intraday entries again today after a square-off stopped them."""
    lifted = _entry_stops().allow("dashboard")
    if lifted:
        where = ", ".join(sorted({block.exchange for block in lifted}))
        flash(f"New intraday entries are allowed again on {where}: the next alert may open "
              "a position.")
    else:
        flash("New intraday entries were not stopped: nothing to allow.")
    return redirect(url_for("dashboard.index"))


def _entry_stops() -> EntryStops:
    services = current_services()
    return EntryStops(services.journal, services.notifier, services.clock, services.calendar)


def _entries_stopped() -> dict[str, Any]:
    """For ``_entries_block.html``: today's stops on new intraday entries, in words."""
    stops = _entry_stops()
    blocks = stops.today()
    return {"blocks": blocks, "lines": stops.lines(blocks)}


@bp.post("/actions/relogin")
def relogin() -> ResponseReturnValue:
    """Log in again now with the stored credentials, or send the person to the login page."""
    services = current_services()
    account = request.form.get("account") or next(iter(services.brokers))
    client = services.brokers.get(account)
    if client is None:
        return render_template("refused.html", reason=f"no account {account!r}"), 400
    if client.sessions.credentials.missing_for_unattended():
        return redirect(url_for("dashboard.kotak_login", account=account))
    try:
        session = client.sessions.login(attended=True)
    except KotakError as exc:
        flash(f"Kotak login for {account} failed: {exc.message}")
        return redirect(url_for("dashboard.kotak_login", account=account))
    flash(f"Logged in to Kotak ({account}); the session is valid until "
          f"{_ist(session.expires_at)}.")
    return redirect(url_for("dashboard.index"))


@bp.route("/kotak/callback", methods=["GET", "POST"])
def kotak_login() -> ResponseReturnValue:
    """The login page at ``REDIRECT_URL``: a person types the TOTP (or the legacy OTP) and
    the MPIN when the unattended login is not configured or has failed. A paper account's
    sandbox login needs neither: one button logs it in with the sandbox's own credentials."""
    services = current_services()
    account = request.values.get("account") or next(iter(services.brokers))
    client = services.brokers.get(account)
    if client is None:
        return render_template("refused.html", reason=f"no account {account!r}"), 400
    manager = client.sessions
    settings = services.accounts.accounts.get(account)
    paper = settings is not None and settings.mode is Mode.PAPER
    context = {"account": account, "accounts": list(services.brokers),
               "flow": manager.credentials.flow.value, "paper": paper,
               "mpin_stored": bool(manager.credentials.mpin), "status": manager.status(),
               "result": "", "ok": False, "otp_sent": False}
    if request.method == "GET":
        return render_template("kotak_login.html", **context)
    step = "paper" if paper else request.form.get("step", "login")
    totp = request.form.get("totp", "").strip()
    mpin = request.form.get("mpin", "").strip()
    otp = request.form.get("otp", "").strip()
    for name, value in (("TOTP", totp), ("MPIN", mpin), ("OTP", otp)):
        if value and not (value.isdigit() and 4 <= len(value) <= 8):
            context["result"] = f"The {name} is the digits only (6 of them)."
            return render_template("kotak_login.html", **context), 422
    try:
        if step == "send_otp":
            manager.begin_otp()
            context.update(otp_sent=True, result="Kotak has sent an OTP to your phone.")
            return render_template("kotak_login.html", **context)
        if step == "otp":
            session = manager.complete_otp(otp)
        elif step == "paper":
            session = manager.login(attended=True)
        else:
            session = manager.login(attended=True, totp=totp, mpin=mpin)
    except LoginBlocked as exc:
        context["result"] = exc.message
        return render_template("kotak_login.html", **context), 422
    except KotakError as exc:
        context["result"] = f"Kotak refused the login: {exc.message}"
        return render_template("kotak_login.html", **context), 502
    context.update(ok=True, status=manager.status(),
                   result=f"Logged in. The Kotak session is valid until "
                          f"{_ist(session.expires_at)}.")
    return render_template("kotak_login.html", **context)


class ManualSquareOff:
    """A square-off pressed on the dashboard: run once at a time per process, off the
    request (it waits for fills), and recorded as a job run so the report shows up."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._lock = threading.Lock()

    def _actions(self) -> JobActions:
        # Imported here: the scheduler's jobs import the wiring, which the app imports first.
        from bridge.schedule.jobs import JobActions

        self.services.instruments.ensure(self.services.broker())
        return JobActions(self.services)

    def preview(self, exchanges: list[Exchange], *,
                block_entries: bool) -> tuple[str, list[str]]:
        try:
            outcome = self._actions().square_off(exchanges, dry_run=True,
                                                 block_entries=block_entries)
        except (KotakError, InstrumentError) as exc:
            return "failed", [f"the dry run could not read the book: {exc}"]
        lines = [line for report in outcome.report.get("reports", [])
                 for line in report.get("lines", [])]
        return outcome.status.value, lines

    def start(self, exchanges: list[Exchange], *, block_entries: bool) -> bool:
        if not self._lock.acquire(blocking=False):
            return False
        thread = threading.Thread(target=self._run, args=(exchanges, block_entries),
                                  daemon=True, name="dashboard-squareoff")
        thread.start()
        return True

    def _run(self, exchanges: list[Exchange], block_entries: bool) -> None:
        jobs = self.services.jobs
        try:
            now = self.services.clock.now()
            # A run is keyed by its second: one that ended within this second holds it, so a
            # second press right after takes the next free second rather than doing nothing.
            for later in range(5):
                run = jobs.claim(MANUAL_SQUAREOFF, now + timedelta(seconds=later),
                                 f"dashboard:{os.getpid()}")
                if run is not None:
                    break
            else:
                log.error("square-off from the dashboard not started: no free run key")
                return
            try:
                outcome = self._actions().square_off(exchanges, block_entries=block_entries,
                                                     why=WHY_DASHBOARD, by="dashboard")
            except Exception as exc:
                log.exception("square-off from the dashboard failed")
                jobs.finish(run, RunStatus.FAILED, f"failed: {exc}")
                return
            jobs.finish(run, outcome.status, outcome.summary, outcome.report)
        finally:
            self._lock.release()


def _ist(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    local = moment.astimezone(IST)
    today = current_services().clock.now().astimezone(IST).date()
    return f"{local:%H:%M:%S}" if local.date() == today else f"{local:%d %b %H:%M}"


def _money(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return f"{value:+,.2f}"
