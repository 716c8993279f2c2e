"""The sandbox's order engine: what happens to an order after Kotak says "Ok".

Lifecycle, as Kotak reports it (history rows newest first): ``put order req received`` ->
``validation pending`` -> ``open pending`` -> (after ``accept_delay``) the exchange stage:
``rejected`` with a reason (RMS: margin, freeze, tick, circuit, product, or a rule), or
``open`` / ``trigger pending``, then ``complete`` when it fills, or ``cancelled``.

Fill rule (documented for users of paper mode):

* a market order fills at once at the reference price: the last price set for the instrument
  (by the paper broker from the signal's price, or a test), else the catalogue's price moved
  with its underlying (by a price set for the underlying, or by the walk when
  ``SandboxConfig.price_walk`` is on; see market.py); with ``protect_market`` (Kotak's 2026
  behaviour) it is shown as a limit one protection band away, which is marketable and fills
  at the reference price;
* a limit order fills at the reference price when that is at or better than its limit, else
  it stays open until the price moves there (IOC: cancelled instead);
* an SL order waits in ``trigger pending`` until the price crosses its trigger (buy: at or
  above, sell: at or below), then behaves as a limit at its price; SL-M (when not refused)
  fills at the reference price once triggered;
* fills are whole, never partial;
* working orders are matched again at every call of the account, so they react to the walk
  as they react to a set price (at the price of the moment, not the best one since).

Margin is a rough model, enough to make "insufficient funds" real: CNC 100 %, MTF 25 %, MIS
cash 20 %, futures 10 % (MIS) / 15 % (NRML), bought options their premium, sold options 15 %
of strike value. Orders that reduce an open position need none.

At the first call of a new day the account's book rolls over: the day's orders and fills go,
intraday (MIS) positions left open are squared off at the last price (as Kotak's own 15:20
auto square-off would), other positions carry forward into the cf quantities and amounts.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from bridge.domain import Side
from bridge.kotak.protection import protected_limit
from bridge.kotak.sandbox.catalog import Catalog, as_instrument
from bridge.kotak.sandbox.conditions import (
    RMS_REASONS,
    SYNC_REJECTIONS,
    RuleBook,
    SandboxAccount,
    SandboxConfig,
)
from bridge.kotak.sandbox.market import Level, PriceWalk, day_range, end_of_day, reprice
from bridge.kotak.sandbox.scripmaster import SandboxScrip
from bridge.kotak.sandbox.state import (
    BookRecord,
    FillRecord,
    HistoryRow,
    OrderRecord,
    PositionRecord,
    SandboxState,
)

Reply = tuple[int, dict[str, Any]]

WORKING = frozenset({"put order req received", "validation pending", "open pending", "open",
                     "trigger pending", "modify validation pending", "modify pending",
                     "cancel pending"})
FINAL = frozenset({"complete", "rejected", "cancelled"})
_PENDING_STAGE = frozenset({"put order req received", "validation pending", "open pending"})
_CASH = frozenset({"nse_cm", "bse_cm"})
_PLACE_KEYS = ("am", "dq", "es", "mp", "pc", "pr", "pt", "qt", "rt", "tp", "ts", "tt")
_PRODUCTS = frozenset({"CNC", "MIS", "NRML", "MTF"})
_ORDER_TYPES = frozenset({"L", "MKT", "SL", "SL-M"})
_VALIDITIES = frozenset({"DAY", "IOC"})
_CASH_ONLY_PRODUCTS = frozenset({"CNC", "MTF"})
_CIRCUIT = Decimal("0.20")
_FOUR_PLACES = Decimal("0.0001")
#: instruments one quotes call may carry
QUOTE_LIMIT = 50


def ok(body: dict[str, Any]) -> Reply:
    return 200, body


def not_ok(code: str, message: str, *, stat: str = "Not_Ok", status: int = 200) -> Reply:
    return status, {"stat": stat, "stCode": int(code), "errMsg": message}


NO_DATA: Reply = (200, {"stat": "Not_Ok", "stCode": 5203, "errMsg": "No Data",
                        "desc": "data not found"})
ORDER_DONE: Reply = (400, {"stCode": 1021, "errMsg": "order is completed",
                           "stat": "please provide valid order number"})


class _Invalid(Exception):
    """A request the sandbox refuses before creating anything."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply[1].get("errMsg", ""))
        self.reply = reply


class Engine:
    """Orders, fills, positions and funds over a :class:`SandboxState`."""

    def __init__(self, accounts: Mapping[str, SandboxAccount], config: SandboxConfig,
                 rules: RuleBook) -> None:
        self.accounts = accounts
        self.config = config
        self.rules = rules
        self._catalog: Catalog | None = None
        self._catalog_lock = threading.Lock()
        self._quotable: tuple[Catalog, dict[tuple[str, str], SandboxScrip]] | None = None
        self.walk = PriceWalk(config.walk_seed, config.walk_step_s, config.walk_volatility,
                              running=config.price_walk)

    def catalog(self, day: date) -> Catalog:
        catalog = self._catalog
        if catalog is None or catalog.day != day:
            # Catalog shares each day's contracts process-wide: asking for the day before
            # (a book rolling over) and back costs no rebuild.
            with self._catalog_lock:
                if self._catalog is None or self._catalog.day != day:
                    self._catalog = Catalog(day, lean=self.config.market == "lean",
                                            listings=self.config.listings)
                catalog = self._catalog
        return catalog

    # --- prices ---------------------------------------------------------------------------

    def price(self, state: SandboxState, segment: str, trading_symbol: str,
              now: datetime) -> Decimal | None:
        """The instrument's last price at ``now``: the price set for it, else the catalogue's
        moved with its underlying (see :meth:`level`)."""
        known = state.prices.get(f"{segment}|{trading_symbol}")
        if known is not None:
            return known
        scrip = self.catalog(now.date()).get(segment, trading_symbol)
        if scrip is None:
            return None
        return reprice(scrip, self.level(state, scrip, now).now, now.date())

    def level(self, state: SandboxState, scrip: SandboxScrip, now: datetime) -> Level:
        """Where ``scrip``'s underlying stands against the catalogue's level: a derivative
        follows the price set for its underlying's cash row (the index, the NSE share), if
        any; otherwise every contract follows the walk (unmoved while it is off)."""
        if scrip.expiry is not None:
            home = self.catalog(now.date()).home(scrip.underlying)
            pinned = state.prices.get(f"{home.segment}|{home.trading_symbol}") if home else None
            if home is not None and pinned is not None:
                ratio = float(pinned / home.ref_price)
                return Level(ratio, ratio, ratio)
        return self.walk.level(scrip.underlying, now)

    def set_price(self, state: SandboxState, segment: str, trading_symbol: str, price: Decimal,
                  now: datetime) -> None:
        """Move an instrument's reference price; working orders react at once."""
        if price <= 0:
            raise ValueError("price must be positive")
        if self.catalog(now.date()).get(segment, trading_symbol) is None:
            raise ValueError(f"unknown instrument {segment}|{trading_symbol}")
        state.prices[f"{segment}|{trading_symbol}"] = price
        for ucc in list(state.books):
            self.book(state, ucc, now)

    # --- the account's book ---------------------------------------------------------------

    def book(self, state: SandboxState, ucc: str, now: datetime) -> BookRecord:
        """Return the account's book for ``now``: rolled to today, pending orders advanced."""
        book = state.books.get(ucc)
        day = now.date()
        if book is None:
            book = BookRecord(ucc=ucc, day=day, cash=self.accounts[ucc].cash)
            state.books[ucc] = book
        elif book.day < day:
            self._roll(state, book, now)
        for order_id in list(book.working):
            order = book.orders[order_id]
            if order.status in _PENDING_STAGE and now >= order.ready_at:
                self._exchange_stage(state, book, order, now)
            if order.status in ("open", "trigger pending"):
                self._match(state, book, order, now)
        book.working = [oid for oid in book.working if book.orders[oid].status not in FINAL]
        return book

    def seed_position(self, state: SandboxState, ucc: str, segment: str, trading_symbol: str,
                      product: str, quantity: int, price: Decimal, now: datetime) -> None:
        """Put a position on the book as if filled earlier today (for drills and tests)."""
        scrip = self.catalog(now.date()).get(segment, trading_symbol)
        if scrip is None:
            raise ValueError(f"unknown instrument {segment}|{trading_symbol}")
        book = self.book(state, ucc, now)
        state.order_seq += 1
        order = OrderRecord(
            order_id=self._order_id(state, now), ucc=ucc, segment=segment,
            trading_symbol=trading_symbol, symbol=scrip.symbol_name, token=scrip.token,
            side="B" if quantity > 0 else "S", product=product, order_type="L",
            quantity=abs(quantity), price=price, trigger=Decimal(0), validity="DAY",
            disclosed=0, amo=False, tag="seeded", status="open", placed_at=now, updated_at=now,
            ready_at=now, exchange_order_id=self._exchange_id(state),
        )
        book.orders[order.order_id] = order
        self._fill(state, book, order, price, now)

    # --- orders ---------------------------------------------------------------------------

    def place(self, state: SandboxState, ucc: str, data: Mapping[str, Any],
              now: datetime) -> Reply:
        book = self.book(state, ucc, now)
        try:
            fields = _fields(data, _PLACE_KEYS)
            scrip = self._scrip(fields["es"], fields["ts"], now.date())
            side, product, kind, validity = _codes(fields)
            quantity = _quantity(fields["qt"], scrip)
            price, trigger = _prices(fields, kind)
        except _Invalid as exc:
            return exc.reply
        tag = str(data.get("ig") or "")[:40]  # the 1.x client sends null for no tag
        if tag and self.config.unique_tags and tag in book.tags:
            # Kotak refuses a tag already used that day, in words that explain nothing
            # (Kotak-neo-api-v2 #30).
            return not_ok("32", "error from core")
        rule = self.rules.take(scrip.trading_symbol, scrip.symbol_name, side, product)
        if rule is not None and rule.action == "reject" and rule.reason in SYNC_REJECTIONS:
            code, message = SYNC_REJECTIONS[rule.reason]
            return not_ok(code, message)
        state.order_seq += 1
        order = OrderRecord(
            order_id=self._order_id(state, now), ucc=ucc, segment=scrip.segment,
            trading_symbol=scrip.trading_symbol, symbol=scrip.symbol_name, token=scrip.token,
            side=side, product=product, order_type=kind, quantity=quantity, price=price,
            trigger=trigger, validity=validity, disclosed=_whole(fields["dq"], "dq"),
            amo=fields["am"] == "YES", tag=tag, status="",
            placed_at=now, updated_at=now,
            ready_at=now + _seconds(self.config.accept_delay),
        )
        if rule is not None:
            order.fate = rule.action
            order.fate_reason = self._rule_reason(state, book, order, scrip, rule.reason, now)
        self._shape_market_order(state, order, scrip, now)
        for status in ("put order req received", "validation pending", "open pending"):
            self._log(order, status, now)
        book.orders[order.order_id] = order
        book.working.append(order.order_id)
        if tag:
            book.tags.add(tag)
        if now >= order.ready_at:
            self._exchange_stage(state, book, order, now)
        return ok({"stat": "Ok", "nOrdNo": order.order_id, "stCode": 200})

    def modify(self, state: SandboxState, ucc: str, data: Mapping[str, Any],
               now: datetime) -> Reply:
        book = self.book(state, ucc, now)
        order = _working(book, data.get("no"))
        if not isinstance(order, OrderRecord):
            return order
        try:
            # The 1.x client copies the trigger from the order book ("0.00") into a modify,
            # and Kotak takes it: a zero spelled with decimals is refused on place only.
            fields = _fields(data, ("qt", "pr", "pt", "tp", "vd"), zero_decimals=("tp",))
            scrip = self._scrip(order.segment, order.trading_symbol, now.date())
            kind = fields["pt"]
            if kind not in _ORDER_TYPES or fields["vd"] not in _VALIDITIES:
                raise _Invalid(not_ok("1007", "body invalid", stat="bad request"))
            quantity = _quantity(fields["qt"], scrip)
            price, trigger = _prices(fields, kind)
        except _Invalid as exc:
            return exc.reply
        if quantity < order.filled:
            return not_ok("1010", "quantity is less than the filled quantity")
        order.quantity, order.price, order.trigger = quantity, price, trigger
        order.order_type, order.validity = kind, fields["vd"]
        if "dq" in data:
            order.disclosed = _whole(str(data["dq"]), "dq") if str(data["dq"]) else 0
        self._shape_market_order(state, order, scrip, now)
        if order.status not in _PENDING_STAGE:
            self._log(order, "modify validation pending", now)
            waiting = order.order_type in ("SL", "SL-M") and not order.triggered
            self._log(order, "trigger pending" if waiting else "open", now)
            self._match(state, book, order, now)
        return ok({"stat": "Ok", "nOrdNo": order.order_id, "stCode": 200})

    def cancel(self, state: SandboxState, ucc: str, data: Mapping[str, Any],
               now: datetime) -> Reply:
        book = self.book(state, ucc, now)
        order = _working(book, data.get("on"))
        if not isinstance(order, OrderRecord):
            return order
        order.cancelled = order.quantity - order.filled
        self._log(order, "cancel pending", now)
        self._log(order, "cancelled", now)
        return ok({"stat": "Ok", "nOrdNo": order.order_id, "stCode": 200})

    # --- reports --------------------------------------------------------------------------

    def order_book(self, state: SandboxState, ucc: str, now: datetime) -> Reply:
        book = self.book(state, ucc, now)
        if not book.orders:
            return NO_DATA
        orders = sorted(book.orders.values(), key=lambda o: o.order_id, reverse=True)
        catalog = self.catalog(now.date())
        return ok({"stat": "Ok", "stCode": 200,
                   "data": [_order_row(o, catalog.get(o.segment, o.trading_symbol), o.status,
                                       o.updated_at) for o in orders]})

    def order(self, state: SandboxState, ucc: str, order_id: str, now: datetime) -> Reply:
        """One order's report (``GET quick/user/orders/<nOrdNo>``, the SDK's
        ``order_report(order_id)``): the order book's envelope holding that order's row; an
        order number the account does not have is Kotak's "No Data"."""
        book = self.book(state, ucc, now)
        order = book.orders.get(order_id)
        if order is None:
            return NO_DATA
        scrip = self.catalog(now.date()).get(order.segment, order.trading_symbol)
        return ok({"stat": "Ok", "stCode": 200,
                   "data": [_order_row(order, scrip, order.status, order.updated_at)]})

    def history(self, state: SandboxState, ucc: str, data: Mapping[str, Any],
                now: datetime) -> Reply:
        book = self.book(state, ucc, now)
        order = book.orders.get(str(data.get("nOrdNo", "")))
        if order is None:
            return NO_DATA
        scrip = self.catalog(now.date()).get(order.segment, order.trading_symbol)
        rows = [_history_row(order, scrip, row) for row in reversed(order.history)]
        return ok({"stat": "Ok", "stCode": 200, "data": rows})

    def trades(self, state: SandboxState, ucc: str, now: datetime) -> Reply:
        book = self.book(state, ucc, now)
        if not book.fills:
            return NO_DATA
        catalog = self.catalog(now.date())
        return ok({"stat": "ok", "stCode": 200,
                   "data": [_fill_row(f, catalog.get(f.segment, f.trading_symbol))
                            for f in reversed(book.fills)]})

    def positions(self, state: SandboxState, ucc: str, now: datetime) -> Reply:
        book = self.book(state, ucc, now)
        if not book.positions:
            return NO_DATA
        catalog = self.catalog(now.date())
        return ok({"stat": "ok", "stCode": 200,
                   "data": [_position_row(p, catalog.get(p.segment, p.trading_symbol), ucc)
                            for p in book.positions.values()]})

    def holdings(self, state: SandboxState, ucc: str, now: datetime) -> Reply:
        """Delivery holdings: cash-segment CNC/MTF quantity carried from earlier days.

        Kotak's holdings reply has no ``stat`` and writes numbers as JSON numbers, unlike the
        order APIs (section 4.10). Shares bought today are positions, not holdings, until
        they settle; shares sold today leave ``sellableQuantity`` at once.
        """
        book = self.book(state, ucc, now)
        catalog = self.catalog(now.date())
        rows: list[dict[str, Any]] = []
        for p in book.positions.values():
            held = p.cf_buy_qty - p.cf_sell_qty
            if p.segment not in _CASH or p.product not in _CASH_ONLY_PRODUCTS or held <= 0:
                continue
            scrip = catalog.get(p.segment, p.trading_symbol)
            price = self.price(state, p.segment, p.trading_symbol, now) or Decimal(0)
            average = p.cf_buy_amt / p.cf_buy_qty
            rows.append({
                "displaySymbol": p.symbol, "averagePrice": float(round(average, 4)),
                "quantity": held, "exchangeSegment": p.segment, "exchangeIdentifier": p.token,
                "holdingCost": float(round(average * held, 4)),
                "mktValue": float(round(price * held, 2)),
                "scripId": hashlib.md5(p.trading_symbol.encode()).hexdigest(),
                "instrumentToken": int(p.token) if p.token.isdigit() else 0,
                "instrumentType": "Equity",
                "instrumentName": scrip.description if scrip else p.symbol,
                "isAlternateScrip": False,
                "closingPrice": float(scrip.ref_price) if scrip else float(price),
                "symbol": p.symbol,
                "sellableQuantity": max(held - max(p.day_sell_qty - p.day_buy_qty, 0), 0),
            })
        return ok({"data": rows})

    def margin(self, state: SandboxState, ucc: str, data: Mapping[str, Any],
               now: datetime) -> Reply:
        """The check-margin call (section 4.8): what one order would block, against what is
        free. The instrument is named by segment and token (``tok`` = ``pSymbol``)."""
        book = self.book(state, ucc, now)
        try:
            fields = _fields(data, ("exSeg", "prc", "prcTp", "prod", "qty", "tok", "trnsTp"))
            scrip = self._scrip_by_token(fields["exSeg"], fields["tok"], now.date())
            if (fields["trnsTp"] not in ("B", "S") or fields["prod"] not in _PRODUCTS
                    or fields["prcTp"] not in _ORDER_TYPES):
                raise _Invalid(not_ok("1007", "body invalid", stat="bad request"))
            quantity = _quantity(fields["qty"], scrip)
            price = _number(fields["prc"])
        except _Invalid as exc:
            return exc.reply
        probe = OrderRecord(
            order_id="", ucc=ucc, segment=scrip.segment, trading_symbol=scrip.trading_symbol,
            symbol=scrip.symbol_name, token=scrip.token, side=fields["trnsTp"],
            product=fields["prod"], order_type=fields["prcTp"], quantity=quantity,
            price=price, trigger=Decimal(0), validity="DAY", disclosed=0, amo=False, tag="",
            status="", placed_at=now, updated_at=now, ready_at=now)
        required = self._order_margin(state, book, probe, scrip, now)
        used = self._used_margin(state, book, now)
        available = book.cash + sum(self._pnl(state, book, now)) - used
        short = max(required - available, Decimal(0))
        return ok({
            "avlCash": _six(book.cash), "totMrgnUsd": _six(used + required),
            "mrgnUsd": _six(used), "ordMrgn": _six(required),
            "rmsVldtd": "OK" if short == 0 else "NOT_OK", "reqdMrgn": _six(required),
            "avlMrgn": _six(max(available, Decimal(0))), "insufFund": _six(short),
            "stat": "Ok", "stCode": 200,
        })

    def limits(self, state: SandboxState, ucc: str, now: datetime) -> Reply:
        book = self.book(state, ucc, now)
        used = self._used_margin(state, book, now)
        realised, unrealised = self._pnl(state, book, now)
        net = book.cash + realised + min(unrealised, Decimal(0)) - used
        body: dict[str, Any] = {key: "0" for key in _LIMIT_KEYS}
        body.update({
            "Category": "CLIENT_SPECIAL", "EntityId": "", "BoardLotLimit": "5000",
            "CollateralValue": _money(book.cash), "MarginUsed": _money(used),
            "Net": _money(net), "RealizedMtomPrsnt": _money(realised),
            "UnrealizedMtomPrsnt": _money(unrealised),
            "TimeStamp": str(int(now.timestamp() * 1000)), "stCode": 200, "stat": "Ok",
        })
        return ok(body)

    # --- market data ----------------------------------------------------------------------

    def quotes(self, state: SandboxState, pairs: Sequence[str],
               now: datetime) -> list[dict[str, Any]] | Reply:
        """Answer a quotes call for ``segment|token`` pairs (an index ``segment|name``).

        Success is the elements of Kotak's reply, a bare array (HTTP 200): one per instrument
        it knows, every number a string. An unknown pair is left out; a call that knows none
        is Kotak's 1009 with HTTP 200 (section 4.11). Whether Kotak drops an unknown pair from
        an otherwise good call or refuses the call is unverified; leaving it out is the choice
        made here. More than 50 pairs is refused as invalid input (Kotak's limit; its exact
        answer is unverified). The previous close (and the open) is the catalogue's price; the
        day's high and low span it, the last price and the range the walk has covered since
        midnight (see market.py), and no tick history beyond that.
        """
        if len(pairs) > QUOTE_LIMIT:
            return not_ok("1002", f"a maximum of {QUOTE_LIMIT} instruments is allowed",
                          status=400)
        quotable = self._quotable_scrips(now.date())
        rows: list[dict[str, Any]] = []
        for pair in pairs:
            segment, _, key = pair.partition("|")
            scrip = quotable.get((segment, key))
            if scrip is not None:
                rows.append(self._quote_row(state, scrip, now))
        if not rows:
            return 200, {"stat": "Not_Ok", "emsg": "invalid instrument", "stCode": 1009}
        return rows

    def _quotable_scrips(self, day: date) -> dict[tuple[str, str], SandboxScrip]:
        """The day's contracts by the key a quotes call names them with."""
        catalog = self.catalog(day)
        cached = self._quotable
        if cached is not None and cached[0] is catalog:
            return cached[1]
        keyed: dict[tuple[str, str], SandboxScrip] = {}
        for scrip in catalog.all():
            index = scrip.segment in _CASH and not scrip.isin
            keyed[(scrip.segment, scrip.trading_symbol if index else scrip.token)] = scrip
        self._quotable = (catalog, keyed)
        return keyed

    def _quote_row(self, state: SandboxState, scrip: SandboxScrip,
                   now: datetime) -> dict[str, Any]:
        close = scrip.ref_price
        known = state.prices.get(f"{scrip.segment}|{scrip.trading_symbol}")
        if known is not None:
            last = low = high = known
        else:
            level = self.level(state, scrip, now)
            last = reprice(scrip, level.now, now.date())
            low, high = day_range(scrip, level, now.date())
        low, high = min(close, last, low), max(close, last, high)
        change = last - close
        return {
            "exchange_token": scrip.token, "display_symbol": scrip.trading_symbol,
            "exchange": scrip.segment, "lstup_time": str(int(now.timestamp())),
            "ltp": _four(last), "last_traded_quantity": str(scrip.lot_size),
            "total_buy": "0", "total_sell": "0", "last_volume": "0", "avg_cost": _four(last),
            "open_int": "0", "change": _four(change),
            "per_change": _four(change * 100 / close) if close else _four(Decimal(0)),
            "low_price_range": _four(close * (1 - _CIRCUIT)),
            "high_price_range": _four(close * (1 + _CIRCUIT)),
            "year_high": _four(high), "year_low": _four(low),
            "ohlc": {"open": _four(close), "high": _four(high), "low": _four(low),
                     "close": _four(close)},
            "depth": _depth(last, scrip),
        }

    # --- internals ------------------------------------------------------------------------

    def _scrip(self, segment: str, trading_symbol: str, day: date) -> SandboxScrip:
        scrip = self.catalog(day).get(segment, trading_symbol)
        if scrip is None:
            raise _Invalid(not_ok("1009", "Invalid Trading Symbol"))
        if scrip.inst_type == "" and not scrip.isin:
            raise _Invalid(not_ok("1009", "Index is not tradable"))
        return scrip

    def _scrip_by_token(self, segment: str, token: str, day: date) -> SandboxScrip:
        scrip = next((s for s in self.catalog(day).all()
                      if s.segment == segment and s.token == token), None)
        if scrip is None:
            raise _Invalid(not_ok("1009", "Invalid instrument token"))
        return scrip

    def _rule_reason(self, state: SandboxState, book: BookRecord, order: OrderRecord,
                     scrip: SandboxScrip, reason: str, now: datetime) -> str:
        if reason == "insufficient_funds":
            # As if the account's funds were blocked elsewhere: Kotak's margin wording.
            required = max(self._order_margin(state, book, order, scrip, now), Decimal("0.01"))
            return f"RMS:Margin Exceeds,Required:{required:.2f}, Available:0.00"
        return RMS_REASONS.get(reason, reason)

    def _shape_market_order(self, state: SandboxState, order: OrderRecord,
                            scrip: SandboxScrip, now: datetime) -> None:
        """Apply Kotak's 2026 handling of market orders from API sessions."""
        if order.order_type == "SL-M" and self.config.reject_slm and not order.fate:
            order.fate = "reject"
            order.fate_reason = "Market order with Algo Id not allowed"
        if order.order_type != "MKT":
            return
        stuck = order.fate == "stuck"
        if not (self.config.protect_market or stuck):
            return
        reference = self.price(state, order.segment, order.trading_symbol, now)
        assert reference is not None
        side = Side.BUY if order.side == "B" else Side.SELL
        # A stuck conversion prices the limit on the far side of the market, so it never fills.
        toward = side.opposite if stuck else side
        order.order_type = "L"
        order.price = protected_limit(as_instrument(scrip), toward, reference)

    def _exchange_stage(self, state: SandboxState, book: BookRecord, order: OrderRecord,
                        now: datetime) -> None:
        scrip = self.catalog(now.date()).get(order.segment, order.trading_symbol)
        if order.fate == "reject":
            order.reason = order.fate_reason
        elif scrip is None:
            order.reason = "RMS:Rule: Contract expired"
        else:
            order.reason = self._rms(state, book, order, scrip, now)
        if order.reason:
            self._log(order, "rejected", now)
            return
        order.exchange_order_id = self._exchange_id(state)
        waiting = order.order_type in ("SL", "SL-M")
        self._log(order, "trigger pending" if waiting else "open", now)
        self._match(state, book, order, now)

    def _rms(self, state: SandboxState, book: BookRecord, order: OrderRecord,
             scrip: SandboxScrip, now: datetime) -> str:
        cash = order.segment in _CASH
        if (order.product in _CASH_ONLY_PRODUCTS and not cash) or (
                order.product == "NRML" and cash):
            return f"RMS:Rule: Product type {order.product} not allowed for this segment"
        if scrip.freeze_qty and order.quantity >= scrip.freeze_qty:
            return RMS_REASONS["freeze"]
        for value in (order.price, order.trigger):
            if value and value % scrip.tick_size:
                return "RMS:Rule: Price is not a multiple of tick size"
        if cash and order.order_type in ("L", "SL") and order.price and not order.fate:
            low = scrip.ref_price * (1 - _CIRCUIT)
            high = scrip.ref_price * (1 + _CIRCUIT)
            if not low <= order.price <= high:
                return RMS_REASONS["circuit_limit"]
        required = self._order_margin(state, book, order, scrip, now)
        available = (book.cash + sum(self._pnl(state, book, now))
                     - self._used_margin(state, book, now, exclude=order.order_id))
        if required > available:
            return (f"RMS:Margin Exceeds,Required:{required:.2f}, "
                    f"Available:{max(available, Decimal(0)):.2f}")
        return ""

    def _match(self, state: SandboxState, book: BookRecord, order: OrderRecord,
               now: datetime) -> None:
        reference = self.price(state, order.segment, order.trading_symbol, now)
        if reference is None:
            return
        buy = order.side == "B"
        if order.status == "trigger pending":
            crossed = reference >= order.trigger if buy else reference <= order.trigger
            if not crossed:
                return
            order.triggered = True
            self._log(order, "open", now)
        if order.order_type in ("MKT", "SL-M"):
            self._fill(state, book, order, reference, now)
            return
        marketable = reference <= order.price if buy else reference >= order.price
        if marketable:
            self._fill(state, book, order, reference, now)
        elif order.validity == "IOC":
            order.cancelled = order.quantity - order.filled
            self._log(order, "cancelled", now, "IOC order not marketable")

    def _fill(self, state: SandboxState, book: BookRecord, order: OrderRecord, price: Decimal,
              now: datetime) -> None:
        quantity = order.quantity - order.filled
        order.filled = order.quantity
        order.average_price = price
        state.fill_seq += 1
        book.fills.append(FillRecord(
            fill_id=f"{state.fill_seq:08d}", order_id=order.order_id, ucc=order.ucc,
            segment=order.segment, trading_symbol=order.trading_symbol, symbol=order.symbol,
            side=order.side, product=order.product, order_type=order.order_type,
            quantity=quantity, price=price, at=now, tag=order.tag,
            exchange_order_id=order.exchange_order_id,
        ))
        key = f"{order.segment}|{order.trading_symbol}|{order.product}"
        position = book.positions.get(key)
        if position is None:
            position = PositionRecord(segment=order.segment, trading_symbol=order.trading_symbol,
                                      symbol=order.symbol, token=order.token,
                                      product=order.product)
            book.positions[key] = position
        amount = price * quantity
        if order.side == "B":
            position.day_buy_qty += quantity
            position.day_buy_amt += amount
        else:
            position.day_sell_qty += quantity
            position.day_sell_amt += amount
        position.updated_at = now
        self._log(order, "complete", now)

    def _log(self, order: OrderRecord, status: str, now: datetime, reason: str = "") -> None:
        order.status = status
        order.updated_at = now
        if reason:
            order.reason = reason
        order.history.append(HistoryRow(
            status=status, at=now, price=order.price, trigger=order.trigger,
            quantity=order.quantity, filled=order.filled, order_type=order.order_type,
            reason=order.reason if status in ("rejected", "cancelled") else "",
        ))

    def _order_id(self, state: SandboxState, now: datetime) -> str:
        return f"{now:%y%m%d}{state.order_seq:09d}"

    @staticmethod
    def _exchange_id(state: SandboxState) -> str:
        state.exchange_seq += 1
        return f"1100000{state.exchange_seq:09d}"

    # --- money ----------------------------------------------------------------------------

    def _rate(self, scrip: SandboxScrip, product: str) -> Decimal:
        if product == "CNC":
            return Decimal(1)
        if product == "MTF":
            return Decimal("0.25")
        if scrip.segment in _CASH:
            return Decimal("0.20")
        return Decimal("0.10") if product == "MIS" else Decimal("0.15")

    def _exposure_margin(self, scrip: SandboxScrip, product: str, signed_qty: int,
                         price: Decimal) -> Decimal:
        if signed_qty == 0:
            return Decimal(0)
        if scrip.option_type in ("CE", "PE"):
            if signed_qty > 0:
                return price * signed_qty
            return (scrip.strike or price) * -signed_qty * Decimal("0.15")
        return price * abs(signed_qty) * self._rate(scrip, product)

    def _order_margin(self, state: SandboxState, book: BookRecord, order: OrderRecord,
                      scrip: SandboxScrip, now: datetime) -> Decimal:
        position = book.positions.get(f"{order.segment}|{order.trading_symbol}|{order.product}")
        held = position.net if position else 0
        signed = (order.quantity - order.filled) * (1 if order.side == "B" else -1)
        price = order.price or self.price(state, order.segment, order.trading_symbol, now)
        assert price is not None
        before = self._exposure_margin(scrip, order.product, held, price)
        after = self._exposure_margin(scrip, order.product, held + signed, price)
        return max(after - before, Decimal(0))

    def _used_margin(self, state: SandboxState, book: BookRecord, now: datetime,
                     exclude: str = "") -> Decimal:
        catalog = self.catalog(now.date())
        used = Decimal(0)
        for position in book.positions.values():
            scrip = catalog.get(position.segment, position.trading_symbol)
            price = self.price(state, position.segment, position.trading_symbol, now)
            if scrip is not None and price is not None:
                used += self._exposure_margin(scrip, position.product, position.net, price)
        # Only working orders can be open or trigger pending: walking the day's whole book
        # made every order dearer than the last (issue 15).
        for order in (book.orders[order_id] for order_id in book.working):
            if order.order_id == exclude or order.status not in ("open", "trigger pending"):
                continue
            scrip = catalog.get(order.segment, order.trading_symbol)
            if scrip is not None:
                used += self._order_margin(state, book, order, scrip, now)
        return used

    def _pnl(self, state: SandboxState, book: BookRecord,
             now: datetime) -> tuple[Decimal, Decimal]:
        """Return (realised, unrealised) P&L of the book at the reference prices."""
        realised = unrealised = Decimal(0)
        for p in book.positions.values():
            price = self.price(state, p.segment, p.trading_symbol, now)
            closed, open_pnl = _position_pnl(p, price)
            realised += closed
            unrealised += open_pnl
        return realised, unrealised

    def _roll(self, state: SandboxState, book: BookRecord, now: datetime) -> None:
        """Start a new day: square off MIS, carry the rest, empty the order and trade books.

        Realised P&L moves into the cash balance; a carried position keeps its open quantity
        at its average price in the cf fields, as Kotak shows positions bought earlier.
        """
        day = now.date()
        closed_at = end_of_day(book.day, now)
        catalog = self.catalog(day)
        carried: dict[str, PositionRecord] = {}
        for key, p in book.positions.items():
            price = self.price(state, p.segment, p.trading_symbol, closed_at)
            closed, open_pnl = _position_pnl(p, price)
            live = catalog.get(p.segment, p.trading_symbol) is not None
            if p.net == 0 or p.product == "MIS" or not live:
                # Flat, squared off by the broker at day end, or settled at expiry.
                book.cash += closed + open_pnl
                continue
            book.cash += closed
            bought, sold = p.day_buy_qty + p.cf_buy_qty, p.day_sell_qty + p.cf_sell_qty
            long = p.net > 0
            average = ((p.day_buy_amt + p.cf_buy_amt) / bought if long
                       else (p.day_sell_amt + p.cf_sell_amt) / sold)
            quantity = abs(p.net)
            carried[key] = PositionRecord(
                segment=p.segment, trading_symbol=p.trading_symbol, symbol=p.symbol,
                token=p.token, product=p.product,
                cf_buy_qty=quantity if long else 0, cf_sell_qty=0 if long else quantity,
                cf_buy_amt=average * quantity if long else Decimal(0),
                cf_sell_amt=Decimal(0) if long else average * quantity,
            )
        book.positions = carried
        book.orders = {}
        book.working = []
        book.tags = set()
        book.fills = []
        book.day = day


def _position_pnl(p: PositionRecord, price: Decimal | None) -> tuple[Decimal, Decimal]:
    """Return (realised on the matched quantity, unrealised on the open quantity at price)."""
    bought, sold = p.day_buy_qty + p.cf_buy_qty, p.day_sell_qty + p.cf_sell_qty
    buy_amt, sell_amt = p.day_buy_amt + p.cf_buy_amt, p.day_sell_amt + p.cf_sell_amt
    matched = min(bought, sold)
    realised = matched * (sell_amt / sold - buy_amt / bought) if matched else Decimal(0)
    net = bought - sold
    if not net or price is None:
        return realised, Decimal(0)
    average = buy_amt / bought if net > 0 else sell_amt / sold
    return realised, net * (price - average)


# --- request field checks -----------------------------------------------------------------


def _working(book: BookRecord, order_id: Any) -> OrderRecord | Reply:
    """The order a modify or cancel names, or Kotak's refusal when it cannot be changed."""
    order = book.orders.get(str(order_id or ""))
    if order is None:
        return not_ok("1009", "please provide valid order number")
    if order.status in FINAL:
        return ORDER_DONE
    return order


def _fields(data: Mapping[str, Any], keys: tuple[str, ...],
            zero_decimals: tuple[str, ...] = ()) -> dict[str, str]:
    """Check a jData object the way Kotak does: present, strings, and not blank.

    ``zero_decimals`` names the keys where a zero may be written ``"0.00"``.
    """
    fields: dict[str, str] = {}
    for key in keys:
        if key not in data:
            raise _Invalid(not_ok("5202", "Error: Invalid Request"))
        value = data[key]
        if not isinstance(value, str):
            raise _Invalid(not_ok("1007", "body invalid", stat="bad request"))
        if value.strip() == "":
            # An empty price famously reads as a quantity problem at Kotak (issue #268).
            message = "please provide valid quantity" if key in ("pr", "qt") else \
                "Error: Invalid Request"
            raise _Invalid(not_ok("1009" if key in ("pr", "qt") else "5202", message))
        if value.strip() in ("0.0", "0.00") and key not in zero_decimals:
            raise _Invalid(not_ok("5202", "Error: Invalid Request"))
        fields[key] = value.strip()
    return fields


def _codes(fields: dict[str, str]) -> tuple[str, str, str, str]:
    side, product, kind, validity = fields["tt"], fields["pc"], fields["pt"], fields["rt"]
    if (side not in ("B", "S") or product not in _PRODUCTS or kind not in _ORDER_TYPES
            or validity not in _VALIDITIES or fields["am"] not in ("YES", "NO")
            or not fields["mp"].isdigit()):
        raise _Invalid(not_ok("1007", "body invalid", stat="bad request"))
    return side, product, kind, validity


def _quantity(text: str, scrip: SandboxScrip) -> int:
    quantity = _whole(text, "qt")
    if quantity <= 0:
        raise _Invalid(not_ok("1009", "please provide valid quantity"))
    if quantity % scrip.lot_size:
        raise _Invalid(not_ok("1010", f"Quantity should be a multiple of lot size "
                                      f"{scrip.lot_size}"))
    return quantity


def _prices(fields: dict[str, str], kind: str) -> tuple[Decimal, Decimal]:
    price, trigger = _number(fields["pr"]), _number(fields["tp"])
    if kind in ("L", "SL") and price <= 0:
        raise _Invalid(not_ok("1009", "please provide valid price"))
    if kind in ("SL", "SL-M") and trigger <= 0:
        raise _Invalid(not_ok("1009", "please provide valid trigger price"))
    if kind in ("MKT", "SL-M"):
        price = Decimal(0)
    if kind in ("L", "MKT"):
        trigger = Decimal(0)
    return price, trigger


def _number(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise _Invalid(not_ok("1007", "body invalid", stat="bad request")) from exc
    if not value.is_finite() or value < 0:
        raise _Invalid(not_ok("1007", "body invalid", stat="bad request"))
    return value


def _whole(text: str, key: str) -> int:
    if not text.isdigit():
        raise _Invalid(not_ok("1009" if key == "qt" else "5202",
                              "please provide valid quantity" if key == "qt"
                              else "Error: Invalid Request"))
    return int(text)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def parse_jdata(raw: str) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


# --- rows in Kotak's shapes ---------------------------------------------------------------


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _depth(last: Decimal, scrip: SandboxScrip) -> dict[str, list[dict[str, str]]]:
    """Five levels a side, a tick apart around the last price: clients index into
    ``depth["buy"][0]``, so it is an object of levels, never null."""
    tick = scrip.tick_size or Decimal("0.05")

    def level(price: Decimal, step: int) -> dict[str, str]:
        return {"price": _four(price), "quantity": str(scrip.lot_size * (step + 1)),
                "orders": str(step + 1)}

    return {"buy": [level(max(last - tick * (n + 1), tick), n) for n in range(5)],
            "sell": [level(last + tick * (n + 1), n) for n in range(5)]}


def _six(value: Decimal) -> str:
    """A margin number: six decimals, as the check-margin reply writes them."""
    return f"{value:.6f}"


def _four(value: Decimal) -> str:
    """A quotes number: four decimals, as Kotak writes them ("801.6000")."""
    return f"{value.quantize(_FOUR_PLACES):.4f}"


def _price(value: Decimal, scrip: SandboxScrip | None) -> str:
    places = scrip.precision if scrip else 2
    return f"{value:.{places}f}"


def _kotak_time(at: datetime) -> str:
    return at.strftime("%d-%b-%Y %H:%M:%S")


def _slash_time(at: datetime) -> str:
    return at.strftime("%Y/%m/%d %H:%M:%S")


def _expiry_text(scrip: SandboxScrip | None) -> str:
    return scrip.expiry.strftime("%d %b, %Y") if scrip and scrip.expiry else "NA"


def _order_row(order: OrderRecord, scrip: SandboxScrip | None, status: str,
               at: datetime) -> dict[str, Any]:
    pending = order.quantity - order.filled - order.cancelled if status in WORKING else 0
    return {
        "nOrdNo": order.order_id, "ordSt": status, "stat": status,
        "trdSym": order.trading_symbol, "sym": order.symbol, "exSeg": order.segment,
        "tok": order.token, "prod": order.product, "prc": _price(order.price, scrip),
        "avgPrc": _price(order.average_price, scrip), "trgPrc": _price(order.trigger, scrip),
        "prcTp": order.order_type, "trnsTp": order.side, "vldt": order.validity,
        "rejRsn": order.reason or "--", "exOrdId": order.exchange_order_id,
        "ordDtTm": _kotak_time(order.placed_at), "ordEntTm": _kotak_time(order.placed_at),
        "exCfmTm": _kotak_time(at) if order.exchange_order_id != "NA" else "NA",
        "hsUpTm": _slash_time(at), "GuiOrdId": order.tag,
        "series": scrip.group if scrip else "", "optTp": (scrip.option_type or "XX")
        if scrip else "XX", "stkPrc": _price(scrip.strike or Decimal(0), scrip) if scrip
        else "0.00", "expDt": _expiry_text(scrip),
        "tckSz": f"{scrip.tick_size:.4f}" if scrip else "0.0500",
        "lotSz": str(scrip.lot_size if scrip else 1), "multiplier": "1",
        "precision": str(scrip.precision if scrip else 2), "genNum": "1", "genDen": "1",
        "prcNum": "1", "prcDen": "1", "brdLtQty": "1",
        "ordGenTp": "AMO" if order.amo else "NA", "ordSrc": "NEOTRADEAPI", "algId": "NA",
        "algCat": "NA", "algSeqNo": "NA", "mktPro": "0", "mktProPct": "--", "dscQtyPct": "0",
        "uSec": "0", "reqId": "1", "it": "EQ" if scrip and scrip.segment in _CASH else "FO",
        "locId": "111111111111100", "strategyCode": "NA", "usrId": order.ucc,
        "actId": order.ucc, "brkClnt": "--",
        "qty": order.quantity, "fldQty": order.filled, "unFldSz": max(pending, 0),
        "cnlQty": order.cancelled, "dscQty": order.disclosed, "minQty": 0, "refLmtPrc": 0,
        "coPct": 0, "boeSec": int(at.timestamp()), "updRecvTm": int(at.timestamp() * 1e9),
    }


def _history_row(order: OrderRecord, scrip: SandboxScrip | None,
                 row: HistoryRow) -> dict[str, Any]:
    shaped = _order_row(order, scrip, row.status, row.at)
    shaped.update({
        "prc": _price(row.price, scrip), "trgPrc": _price(row.trigger, scrip),
        "qty": row.quantity, "fldQty": row.filled, "prcTp": row.order_type,
        "rejRsn": row.reason or "--",
        "unFldSz": row.quantity - row.filled if row.status in WORKING else 0,
        "avgPrc": _price(order.average_price if row.status == "complete" else Decimal(0), scrip),
        "exch": {"nse_cm": "NSE", "bse_cm": "BSE", "mcx_fo": "MCX", "bse_fo": "BSE"}
        .get(order.segment, "NSE"),
        "exchTmstp": _kotak_time(row.at), "exchOrdId": order.exchange_order_id,
        "dclQty": str(order.disclosed), "flDtTm": _kotak_time(row.at),
        "scripName": scrip.description if scrip else order.trading_symbol,
        "legOrdInd": "", "ordUsrMsg": "", "nReqId": "1", "ordDur": order.validity,
    })
    return shaped


def _fill_row(fill: FillRecord, scrip: SandboxScrip | None) -> dict[str, Any]:
    return {
        "nOrdNo": fill.order_id, "exOrdId": fill.exchange_order_id,
        "trdSym": fill.trading_symbol, "sym": fill.symbol, "exSeg": fill.segment,
        "prod": fill.product, "trnsTp": fill.side, "prcTp": fill.order_type,
        "avgPrc": _price(fill.price, scrip), "fldQty": fill.quantity, "flId": fill.fill_id,
        "flLeg": 1, "flDt": fill.at.strftime("%d-%b-%Y"), "flTm": fill.at.strftime("%H:%M:%S"),
        "exTm": _kotak_time(fill.at), "rptTp": "fill", "ordDur": "DAY",
        "GuiOrdId": fill.tag, "usrId": fill.ucc, "actId": fill.ucc, "cstFrm": "C",
        "brdLtQty": 1, "lotSz": str(scrip.lot_size if scrip else 1), "multiplier": "1",
        "precision": str(scrip.precision if scrip else 2), "genNum": "1", "genDen": "1",
        "prcNum": "1", "prcDen": "1", "series": scrip.group if scrip else "",
        "optTp": (scrip.option_type or "XX") if scrip else "XX",
        "stkPrc": _price(scrip.strike or Decimal(0), scrip) if scrip else "0.00",
        "expDt": _expiry_text(scrip), "tok": "", "boeSec": int(fill.at.timestamp()),
        "updRecvTm": int(fill.at.timestamp() * 1e9), "hsUpTm": _slash_time(fill.at),
    }


def _position_row(p: PositionRecord, scrip: SandboxScrip | None, ucc: str) -> dict[str, Any]:
    at = p.updated_at
    return {
        "actId": ucc, "brdLtQty": 1, "cfBuyAmt": _money(p.cf_buy_amt),
        "cfSellAmt": _money(p.cf_sell_amt), "cfBuyQty": str(p.cf_buy_qty),
        "cfSellQty": str(p.cf_sell_qty), "exSeg": p.segment, "buyAmt": _money(p.day_buy_amt),
        "sellAmt": _money(p.day_sell_amt), "flBuyQty": str(p.day_buy_qty),
        "flSellQty": str(p.day_sell_qty), "prod": p.product,
        "series": (scrip.group if scrip and scrip.segment in _CASH else "XX") if scrip else "",
        "tok": p.token, "trdSym": p.trading_symbol,
        "optTp": (scrip.option_type or "XX") if scrip else "XX",
        "stkPrc": _price(scrip.strike or Decimal(0), scrip) if scrip else "0.00",
        "type": scrip.inst_type if scrip else "", "sym": p.symbol, "sqrFlg": "Y",
        "posFlg": "true", "lotSz": str(scrip.lot_size if scrip else 1), "multiplier": "1",
        "precision": str(scrip.precision if scrip else 2), "prcNum": "1", "prcDen": "1",
        "hsUpTm": _slash_time(at) if at else "", "expDt": _expiry_text(scrip),
        "exp": str(int(datetime.combine(scrip.expiry, datetime.min.time()).timestamp()))
        if scrip and scrip.expiry else "", "genNum": "1", "genDen": "1", "dscQty": "",
        "upldPrc": "0.00", "updRecvTm": int(at.timestamp() * 1e9) if at else 0,
    }


_LIMIT_KEYS = (
    "CollateralValue", "Collateral", "RmsCollateral", "AdhocMargin", "NotionalCash",
    "UnrealizedMtomPrsnt", "RealizedMtomPrsnt", "MarginUsed", "Net", "RmsPayInAmt",
    "RmsPayOutAmt", "SpanMarginPrsnt", "ExposureMarginPrsnt", "PremiumPrsnt",
    "CashUnRlsMtomPrsnt", "CashRlsMtomPrsnt", "FoUnRlsMtomPrsnt", "FoRlsMtomPrsnt",
    "ComUnRlsMtomPrsnt", "ComRlsMtomPrsnt", "CurUnRlsMtomPrsnt", "CurRlsMtomPrsnt",
    "SpanMrgn", "ExpMrgn", "MarginUsedPrsnt", "RmsIpoAmt",
)
