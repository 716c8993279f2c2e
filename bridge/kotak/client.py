"""Kotak trading calls in the bridge's own types.

:class:`KotakClient` takes domain objects, spells them with :mod:`bridge.kotak.wire`, sends
them through :class:`~bridge.kotak.http.KotakHttp` on the account's current session, and gives
domain objects back. It never logs in by itself: a missing or refused session is
:class:`~bridge.kotak.errors.SessionInvalid`, and the session is dropped so readiness shows it.

"Placed" here means only that Kotak accepted the request: its risk checks may still reject
the order a moment later, which shows in :meth:`KotakClient.order_history` and the book.
"""

from __future__ import annotations

from typing import Any

from bridge.domain import BrokerOrder, Funds, ModifyRequest, OrderRequest, Position, Trade
from bridge.kotak import wire
from bridge.kotak.auth import AuthFlow, KotakSession
from bridge.kotak.errors import OutcomeUnknown, ProtocolError, SessionInvalid
from bridge.kotak.http import KotakHttp
from bridge.kotak.session import SessionManager
from bridge.kotak.wire import Call, Endpoint, ScripFiles


class KotakClient:
    """The account's trading API. Safe to share between threads."""

    def __init__(self, http: KotakHttp, sessions: SessionManager) -> None:
        self.http = http
        self.sessions = sessions

    @property
    def account(self) -> str:
        return self.sessions.account

    # --- orders ---------------------------------------------------------------------------

    def place_order(self, order: OrderRequest) -> str:
        """Send a new order once and return Kotak's order number.

        :raises BrokerRejected: Kotak refused it (nothing placed).
        :raises OutcomeUnknown: sent without a readable answer: find it by its tag, never resend.
        """
        body = self._call(wire.PLACE, form=wire.place_form(order))
        return self._order_number(body, "place")

    def modify_order(self, change: ModifyRequest) -> str:
        body = self._call(wire.MODIFY, form=wire.modify_form(change))
        return self._order_number(body, "modify")

    def cancel_order(self, order_id: str, *, amo: bool = False, trading_symbol: str = "") -> str:
        body = self._call(wire.CANCEL, form=wire.cancel_form(order_id, amo=amo,
                                                             trading_symbol=trading_symbol))
        return self._order_number(body, "cancel")

    # --- books ----------------------------------------------------------------------------

    def order_book(self) -> list[BrokerOrder]:
        body = self._call(wire.ORDER_BOOK, empty_ok=True)
        return [wire.parse_order(row) for row in wire.data_rows(body, "order book")]

    def order_history(self, order_id: str) -> list[BrokerOrder]:
        """Return the order's states, newest first, as Kotak lists them."""
        body = self._call(wire.ORDER_HISTORY, form=wire.history_form(order_id), empty_ok=True)
        return [wire.parse_order(row) for row in wire.data_rows(body, "order history")]

    def trade_book(self) -> list[Trade]:
        body = self._call(wire.TRADE_BOOK, empty_ok=True)
        return [wire.parse_trade(row) for row in wire.data_rows(body, "trade book")]

    def positions(self) -> list[Position]:
        body = self._call(wire.POSITIONS, empty_ok=True)
        return [wire.parse_position(row) for row in wire.data_rows(body, "positions")]

    def funds(self) -> Funds:
        return wire.parse_funds(self._call(wire.LIMITS, form=wire.limits_form()))

    # --- scrip master ---------------------------------------------------------------------

    def scrip_files(self) -> ScripFiles:
        """List today's scrip-master CSVs.

        The current API serves the list to the access token alone, from the trading host
        (the login host before any session exists); the legacy gateway wants the OAuth token.
        """
        creds = self.sessions.credentials
        endpoint = wire.SCRIP_FILES
        if creds.flow is AuthFlow.OAUTH2:
            session = self.sessions.current()
            url = f"{session.base_url}/{endpoint.legacy_path}"
            headers = wire.market_data_headers("", bearer=session.bearer)
        else:
            session_or_none = self.sessions.peek()
            base = session_or_none.base_url if session_or_none else creds.login_url.rstrip("/")
            url = f"{base}/{endpoint.current_path}"
            headers = wire.market_data_headers(creds.access_token)
        body = self.http.request(Call.READ, endpoint.method, url, what=endpoint.name,
                                 headers=headers)
        return wire.parse_scrip_files(body)

    def download(self, url: str) -> bytes:
        return self.http.download(url, what="scrip master")

    # --- the one path to a trading endpoint -----------------------------------------------

    def _call(self, endpoint: Endpoint, *, form: dict[str, str] | None = None,
              empty_ok: bool = False) -> Any:
        session = self.sessions.current()
        url, params = _address(endpoint, session)
        bearer = session.bearer if session.flow is AuthFlow.OAUTH2 else ""
        try:
            return self.http.request(
                endpoint.call, endpoint.method, url, what=endpoint.name,
                headers=wire.trading_headers(session.token, session.sid, bearer),
                params=params, form=form, empty_ok=empty_ok,
            )
        except SessionInvalid as exc:
            self.sessions.invalidate(exc.message)
            raise

    @staticmethod
    def _order_number(body: Any, what: str) -> str:
        try:
            return wire.parse_order_id(body)
        except ProtocolError as exc:
            # Kotak said yes without an order number: whether anything happened is unknown.
            raise OutcomeUnknown(f"Kotak accepted the {what} without an order number",
                                 cause="no nOrdNo") from exc


def _address(endpoint: Endpoint, session: KotakSession) -> tuple[str, dict[str, str] | None]:
    if session.flow is AuthFlow.OAUTH2:
        params = {wire.SERVER_ID_PARAM: session.server_id} if session.server_id else None
        return f"{session.base_url}/{endpoint.legacy_path}", params
    return f"{session.base_url}/{endpoint.current_path}", None
