"""Kotak trading calls in the bridge's own types.

:class:`KotakClient` takes domain objects, spells them with :mod:`bridge.kotak.wire`, sends
them through :class:`~bridge.kotak.http.KotakHttp` on the account's current session, and gives
domain objects back. It never logs in by itself: a missing or refused session is
:class:`~bridge.kotak.errors.SessionInvalid`, and the session is dropped so readiness shows it.

"Placed" here means only that Kotak accepted the request: its risk checks may still reject
the order a moment later, which shows in :meth:`KotakClient.order_history` and the book.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any, TypeVar

from bridge.domain import (
    BrokerOrder,
    Exchange,
    Funds,
    Holding,
    Instrument,
    MarginCheck,
    ModifyRequest,
    OrderRequest,
    Position,
    Product,
    Trade,
)
from bridge.kotak import wire
from bridge.kotak.auth import AuthFlow, KotakSession
from bridge.kotak.errors import (
    BrokerRejected,
    OutcomeUnknown,
    ProtocolError,
    RequestInvalid,
    SessionInvalid,
)
from bridge.kotak.http import KotakHttp
from bridge.kotak.session import SessionManager
from bridge.kotak.wire import Call, Credential, Endpoint, QuotedPrice, ScripFiles

log = logging.getLogger(__name__)
T = TypeVar("T")


class KotakClient:
    """The account's trading API. Safe to share between threads."""

    def __init__(self, http: KotakHttp, sessions: SessionManager) -> None:
        self.http = http
        self.sessions = sessions
        # Set once Kotak answered 404 at the SDK's position path: the older one is used.
        self._older_positions = False

    @property
    def account(self) -> str:
        return self.sessions.account

    # --- orders ---------------------------------------------------------------------------

    def place_order(self, order: OrderRequest) -> str:
        """Send a new order once and return Kotak's order number.

        :raises BrokerRejected: Kotak refused it (nothing placed).
        :raises OutcomeUnknown: sent without a readable answer: find it by its tag, never resend.
        """
        body = self._call(wire.PLACE, form=_spelled(wire.place_form, order))
        return self._order_number(body, "place")

    def modify_order(self, change: ModifyRequest) -> str:
        """Change a working order's terms once; Kotak's order number comes back.

        The legacy gateway wants the order restated (product, filled quantity): what the
        request does not say is read from the order's report first (the 1.x client reads
        the whole book for it).
        """
        legacy = self.sessions.credentials.flow is AuthFlow.OAUTH2
        if legacy and change.product is None:
            change = self._restated(change)
        body = self._call(wire.MODIFY, form=_spelled(
            lambda c: wire.modify_form(c, legacy=legacy), change))
        return self._order_number(body, "modify")

    def _restated(self, change: ModifyRequest) -> ModifyRequest:
        booked = self.order(change.order_id)
        if booked is None:
            raise BrokerRejected("1009", f"order {change.order_id} is not in today's order book",
                                 "Kotak has no such order today, so there is nothing to change")
        try:
            product = Product(booked.product)
        except ValueError as exc:
            raise ProtocolError(f"Kotak's book gives order {change.order_id} the unknown "
                                f"product {booked.product!r}") from exc
        return replace(change, product=product, filled_quantity=booked.filled_quantity)

    def cancel_order(self, order_id: str, *, amo: bool = False, trading_symbol: str = "") -> str:
        body = self._call(wire.CANCEL, form=wire.cancel_form(order_id, amo=amo,
                                                             trading_symbol=trading_symbol))
        return self._order_number(body, "cancel")

    # --- books ----------------------------------------------------------------------------

    def order_book(self, *, deadline: float | None = None) -> list[BrokerOrder]:
        """Today's orders. ``deadline`` (monotonic) bounds the wait: Kotak's book can hang
        for a minute after a burst of orders (Kotak-neo-api-v2 #68)."""
        body = self._call(wire.ORDER_BOOK, empty_ok=True, deadline=deadline)
        return [wire.parse_order(row) for row in wire.data_rows(body, "order book")]

    def order(self, order_id: str, *, deadline: float | None = None) -> BrokerOrder | None:
        """One order's report, or ``None`` when Kotak has no such order today.

        The current API answers it alone (``quick/user/orders/<nOrdNo>``); the legacy gateway
        has no such call, so there the order's latest history row stands in. Neither reads
        the whole book, which grows all day and can hang after a burst.
        """
        if self.sessions.credentials.flow is AuthFlow.OAUTH2:
            history = self.order_history(order_id, deadline=deadline)
            return history[0] if history else None
        body = self._call(wire.ORDER, empty_ok=True, values={"order_id": order_id},
                          deadline=deadline)
        rows = [wire.parse_order(row) for row in wire.data_rows(body, "order report")]
        return next((o for o in rows if o.order_id == order_id), None)

    def order_history(self, order_id: str, *,
                      deadline: float | None = None) -> list[BrokerOrder]:
        """Return the order's states, newest first, as Kotak lists them."""
        body = self._call(wire.ORDER_HISTORY, form=wire.history_form(order_id), empty_ok=True,
                          deadline=deadline)
        return [wire.parse_order(row) for row in wire.data_rows(body, "order history")]

    def trade_book(self) -> list[Trade]:
        body = self._call(wire.TRADE_BOOK, empty_ok=True)
        return [wire.parse_trade(row) for row in wire.data_rows(body, "trade book")]

    def positions(self) -> list[Position]:
        """The position book, read where Kotak's SDK reads it (``portfolio/v2/positions``).

        A Kotak that answers 404 there still serves the older ``quick/user/positions``: it is
        read instead, and the change of path is logged once per client.
        """
        try:
            body = self._call(wire.POSITIONS, empty_ok=True, older=self._older_positions)
        except ProtocolError as exc:
            if self._older_positions or exc.status != 404:
                raise
            self._older_positions = True
            log.warning("Kotak has no %s for account %s; reading %s instead",
                        wire.POSITIONS.current_path, self.account, wire.POSITIONS.older_path)
            body = self._call(wire.POSITIONS, empty_ok=True, older=True)
        return [wire.parse_position(row) for row in wire.data_rows(body, "positions")]

    def holdings(self) -> list[Holding]:
        return wire.parse_holdings(self._call(wire.HOLDINGS, empty_ok=True))

    def funds(self) -> Funds:
        return wire.parse_funds(self._call(wire.LIMITS, form=wire.limits_form()))

    def margin(self, order: OrderRequest, reference_price: Decimal | None = None) -> MarginCheck:
        """What Kotak's risk system says ``order`` needs (check-margin); nothing is placed."""
        return wire.parse_margin(self._call(wire.MARGIN,
                                            form=wire.margin_form(order, reference_price)))

    def client_ip(self) -> str:
        """The address Kotak sees this machine at: the one to whitelist for orders (100008).

        Asked on the login host with the trade session, as the SDK's ``whatsmyip`` does; the
        legacy login has no such call.
        """
        creds = self.sessions.credentials
        if creds.flow is AuthFlow.OAUTH2:
            raise ProtocolError("Kotak's get-client-ip exists only for the current totp login")
        session = self.sessions.current()
        url = f"{creds.login_url.rstrip('/')}/{wire.CLIENT_IP_PATH}"
        try:
            body = self.http.request(
                Call.READ, "GET", url, what="get-client-ip",
                headers=wire.client_ip_headers(creds.access_token, session.token, session.sid))
        except SessionInvalid as exc:
            self.sessions.invalidate(exc.message, session)
            raise
        return wire.parse_client_ip(body)

    # --- market data ----------------------------------------------------------------------

    def last_prices(self, instruments: Sequence[Instrument]) -> dict[tuple[Exchange, str], Decimal]:
        """Return the last traded price of each instrument, keyed by (exchange, trading symbol).

        Kotak is asked at most 50 instruments a call (its limit), each by segment and token
        (an index by its name, as Kotak wants), with the access token alone, so no trade
        session is needed. An instrument Kotak sends no price for is absent from the result:
        one it does not know (a whole call of them is Kotak's 1009), or one quoted at zero
        (never traded), which is no price to act on. An empty ``instruments`` sends nothing.

        :raises ProtocolError: on the legacy oauth2 flow, before anything is sent. Kotak's v1
            REST API had no quotes (they came over its websocket), so the request has no
            address; of the connector's errors this is the one that says "retrying is
            pointless until the setup changes" (here: log in with the totp flow). It is not
            BrokerRejected, which would claim Kotak saw the request and refused it.
        :raises SessionInvalid: Kotak refused the access token. The trade session is kept: the
            quotes call does not present it, so the refusal says nothing about it.
        """
        return {key: quote.price for key, quote in self.quotes(instruments).items()
                if quote.price > 0}

    def quotes(self, instruments: Sequence[Instrument], *,
               deadline: float | None = None) -> dict[tuple[Exchange, str], QuotedPrice]:
        """Return each instrument's last price and the time Kotak last updated it.

        As :meth:`last_prices`, except that a price of zero is kept (the caller says what it
        means) and ``deadline`` (``time.monotonic()``) bounds the wait, retries included: a
        signal waiting on a quote must still be answered in time.
        """
        wanted: dict[tuple[Exchange, str], Instrument] = {}
        for instrument in instruments:
            wanted.setdefault((instrument.exchange, instrument.trading_symbol), instrument)
        unique = list(wanted.values())
        found: dict[tuple[Exchange, str], QuotedPrice] = {}
        for start in range(0, len(unique), wire.QUOTE_BATCH):
            batch = unique[start:start + wire.QUOTE_BATCH]
            try:
                body = self._call(wire.QUOTES, values={"symbols": wire.quote_symbols(batch)},
                                  deadline=deadline)
            except BrokerRejected as exc:
                if exc.code != wire.QUOTE_UNKNOWN_CODE:
                    raise
                continue
            for quote in wire.parse_quoted_prices(body):
                owner = _quoted_instrument(quote, batch)
                key = (owner.exchange, owner.trading_symbol) if owner is not None else None
                # A zero never hides a price for the same instrument in the same reply.
                if key is not None and (quote.price > 0 or key not in found):
                    found[key] = quote
        return found

    # --- scrip master ---------------------------------------------------------------------

    def scrip_files(self) -> ScripFiles:
        """List today's scrip-master CSVs.

        The current API serves the list to the access token alone, from the trading host
        (the login host before any session exists); the legacy gateway wants the OAuth token.
        """
        return wire.parse_scrip_files(self._call(wire.SCRIP_FILES))

    def download(self, url: str) -> bytes:
        return self.http.download(url, what="scrip master")

    # --- the one path to a Kotak endpoint -------------------------------------------------

    def _call(self, endpoint: Endpoint, *, form: dict[str, str] | None = None,
              empty_ok: bool = False, values: Mapping[str, str] | None = None,
              older: bool = False, deadline: float | None = None) -> Any:
        if endpoint.credential is Credential.ACCESS_TOKEN:
            return self._market_data(endpoint, values, deadline)
        session = self.sessions.current()
        try:
            return self._with(session, endpoint, form, empty_ok, values, older, deadline)
        except SessionInvalid as exc:
            # Refused, Kotak did nothing: with a newer session stored since this one was
            # kept (another process logged in), the call goes once more with that.
            newer = self.sessions.invalidate(exc.message, session)
            if newer is None:
                raise
        try:
            return self._with(newer, endpoint, form, empty_ok, values, older, deadline)
        except SessionInvalid as exc:
            self.sessions.invalidate(exc.message, newer)
            raise

    def _with(self, session: KotakSession, endpoint: Endpoint, form: dict[str, str] | None,
              empty_ok: bool, values: Mapping[str, str] | None, older: bool,
              deadline: float | None) -> Any:
        url, params = _address(endpoint, session, values, older)
        legacy = session.flow is AuthFlow.OAUTH2
        # The SDK presents the access token beside the session on order calls only.
        token = (self.sessions.credentials.access_token
                 if endpoint.call is Call.WRITE and not legacy else "")
        headers = wire.trading_headers(session.token, session.sid,
                                       bearer=session.bearer if legacy else "",
                                       access_token=token)
        return self.http.request(
            endpoint.call, endpoint.method, url, what=endpoint.name, headers=headers,
            params=params, form=form, empty_ok=empty_ok, deadline=deadline,
        )

    def _market_data(self, endpoint: Endpoint, values: Mapping[str, str] | None,
                     deadline: float | None = None) -> Any:
        """Send a call authenticated by the access token rather than the trade session.

        A refusal is not held against the session (it was not presented), so unlike
        :meth:`_call` this never drops it.
        """
        creds = self.sessions.credentials
        if creds.flow is AuthFlow.OAUTH2:
            path = endpoint.path(legacy=True, values=values)
            session = self.sessions.current()
            url = f"{session.base_url}/{path}"
            headers = wire.market_data_headers("", bearer=session.bearer)
        else:
            path = endpoint.path(legacy=False, values=values)
            known = self.sessions.peek()
            base = known.base_url if known else creds.login_url.rstrip("/")
            url = f"{base}/{path}"
            headers = wire.market_data_headers(creds.access_token)
        return self.http.request(endpoint.call, endpoint.method, url, what=endpoint.name,
                                 headers=headers, deadline=deadline)

    @staticmethod
    def _order_number(body: Any, what: str) -> str:
        try:
            return wire.parse_order_id(body)
        except ProtocolError as exc:
            # Kotak said yes without an order number: whether anything happened is unknown.
            raise OutcomeUnknown(f"Kotak accepted the {what} without an order number",
                                 cause="no nOrdNo") from exc


def _spelled(spell: Callable[[T], dict[str, str]], request: T) -> dict[str, str]:
    """A request in Kotak's form, or :class:`RequestInvalid` before anything is sent."""
    try:
        return spell(request)
    except ValueError as exc:
        raise RequestInvalid(f"the order cannot be sent to Kotak: {exc}; nothing was "
                             "sent") from exc


def _address(endpoint: Endpoint, session: KotakSession, values: Mapping[str, str] | None,
             older: bool) -> tuple[str, dict[str, str] | None]:
    if session.flow is AuthFlow.OAUTH2:
        params = {wire.SERVER_ID_PARAM: session.server_id} if session.server_id else None
        return f"{session.base_url}/{endpoint.path(legacy=True, values=values)}", params
    path = endpoint.path(legacy=False, values=values, older=older)
    return f"{session.base_url}/{path}", None


def _quoted_instrument(quote: QuotedPrice, batch: Sequence[Instrument]) -> Instrument | None:
    """The instrument of ``batch`` a quote belongs to: by token, else (an index, asked by
    name) by the name Kotak echoes as its token or display symbol."""
    for instrument in batch:
        if instrument.exchange is quote.exchange and instrument.token == quote.token:
            return instrument
    for instrument in batch:
        if instrument.exchange is quote.exchange and instrument.trading_symbol in (
                quote.token, quote.display_symbol):
            return instrument
    return None
