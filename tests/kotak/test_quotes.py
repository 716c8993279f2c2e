"""Last traded prices from Kotak's quotes call, against the sandbox over loopback: the
access-token-only header, 50 instruments a call, indices by name, unknown instruments left
out, and the legacy flow, which has no quotes API."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import requests

from bridge.domain import Exchange, Instrument, InstrumentKind
from bridge.kotak import wire
from bridge.kotak.auth import AuthFlow
from bridge.kotak.errors import ProtocolError, SessionInvalid
from bridge.kotak.http import new_session
from bridge.kotak.instruments import InstrumentIndex, InstrumentStore, parse_scrip_csv
from bridge.kotak.sandbox import Fault, Sandbox, SandboxAccount, SandboxServer
from tests.conftest import Kotak, make_kotak

QUOTES_PATH = "/script-details/1.0/quotes/neosymbol"


@pytest.fixture
def totp(sandbox: Sandbox, account: SandboxAccount, server: SandboxServer) -> Kotak:
    connected = make_kotak(sandbox, account, server, AuthFlow.TOTP)
    connected.login()
    return connected


@pytest.fixture
def index(totp: Kotak, tmp_path: Path) -> InstrumentIndex:
    store = InstrumentStore(tmp_path / "scrip", totp.clock)
    store.refresh(totp.client)
    return store.current()


@pytest.fixture
def sbin(index: InstrumentIndex) -> Instrument:
    return index.resolve("NSE:SBIN")


def nse_fo(kotak: Kotak) -> list[Instrument]:
    """Every NSE derivative in today's scrip master, read as the bridge reads it."""
    (url,) = [u for u in kotak.client.scrip_files().urls if u.endswith("/nse_fo.csv")]
    return parse_scrip_csv("nse_fo", kotak.client.download(url))


def quote_paths(kotak: Kotak) -> list[str]:
    return [record.path for record in kotak.sandbox.requests.snapshot("quotes")]


def test_a_price_set_in_the_sandbox_comes_back_exactly(totp: Kotak, sbin: Instrument) -> None:
    totp.sandbox.set_price("NSE", "SBIN-EQ", Decimal("851.35"))

    prices = totp.client.last_prices([sbin])

    assert prices == {(Exchange.NSE, "SBIN-EQ"): Decimal("851.35")}
    (record,) = totp.sandbox.requests.snapshot("quotes")
    assert (record.method, record.path, record.status) == (
        "GET", f"{QUOTES_PATH}/nse_cm|3045/ltp", 200)
    assert record.ucc == totp.account.ucc


def test_equities_derivatives_and_indices_in_one_call(totp: Kotak, index: InstrumentIndex,
                                                      sbin: Instrument) -> None:
    future = index.resolve("NIFTY1!")
    nifty = index.get(Exchange.NSE, "Nifty 50")
    assert nifty is not None and nifty.kind is InstrumentKind.INDEX
    totp.sandbox.set_price("NFO", future.trading_symbol, Decimal("26110.4"))
    totp.sandbox.set_price("NSE", "Nifty 50", Decimal("26050.25"))

    prices = totp.client.last_prices([sbin, future, nifty])

    assert prices == {(Exchange.NSE, "SBIN-EQ"): Decimal("850"),
                      (Exchange.NFO, future.trading_symbol): Decimal("26110.4"),
                      (Exchange.NSE, "Nifty 50"): Decimal("26050.25")}
    # An index is asked by its name, as Kotak wants; the space travels as %20.
    assert quote_paths(totp) == [
        f"{QUOTES_PATH}/nse_cm|3045,nse_fo|{future.token},nse_cm|Nifty 50/ltp"]


def test_more_than_fifty_instruments_are_asked_fifty_at_a_time(totp: Kotak) -> None:
    derivatives = nse_fo(totp)
    assert len(derivatives) > 150

    prices = totp.client.last_prices(derivatives)

    assert set(prices) == {(i.exchange, i.trading_symbol) for i in derivatives}
    sizes = [path.removeprefix(f"{QUOTES_PATH}/").count(",") + 1
             for path in quote_paths(totp)]
    assert sizes == [50] * (len(derivatives) // 50) + [len(derivatives) % 50]


def test_the_same_instrument_twice_is_asked_once(totp: Kotak, sbin: Instrument) -> None:
    assert totp.client.last_prices([sbin, sbin]) == {(Exchange.NSE, "SBIN-EQ"): Decimal("850")}
    assert quote_paths(totp) == [f"{QUOTES_PATH}/nse_cm|3045/ltp"]


def test_an_empty_list_makes_no_call(totp: Kotak) -> None:
    assert totp.client.last_prices([]) == {}
    assert totp.requests_to("quotes") == 0


def test_instruments_kotak_does_not_know_are_absent(totp: Kotak, sbin: Instrument) -> None:
    gone = Instrument(Exchange.NSE, "GONE-EQ", "GONE", "999999", InstrumentKind.EQUITY, 1,
                      Decimal("0.05"))

    assert totp.client.last_prices([sbin, gone]) == {(Exchange.NSE, "SBIN-EQ"): Decimal("850")}
    assert totp.client.last_prices([gone]) == {}  # Kotak's 1009: it knows none of them
    assert totp.requests_to("quotes") == 2


def test_quotes_need_no_trade_session(sandbox: Sandbox, account: SandboxAccount,
                                      server: SandboxServer, sbin: Instrument) -> None:
    fresh = make_kotak(sandbox, account, server, AuthFlow.TOTP)
    assert fresh.sessions.peek() is None

    assert fresh.client.last_prices([sbin]) == {(Exchange.NSE, "SBIN-EQ"): Decimal("850")}


def test_an_unknown_access_token_is_refused_and_the_session_kept(
        totp: Kotak, sandbox: Sandbox, account: SandboxAccount, server: SandboxServer,
        sbin: Instrument) -> None:
    stranger = make_kotak(sandbox, account, server, AuthFlow.TOTP, store=totp.store,
                          access_token="not-a-token")

    with pytest.raises(SessionInvalid) as refused:
        stranger.client.last_prices([sbin])

    assert refused.value.code == "100022"
    assert [r.status for r in sandbox.requests.snapshot("quotes")] == [403]
    # The trade session was not what Kotak refused, so trading goes on with it.
    assert totp.sessions.peek() is not None
    assert totp.client.order_book() == []


def test_legacy_flow_has_no_quotes_and_sends_nothing(sandbox: Sandbox, account: SandboxAccount,
                                                     server: SandboxServer,
                                                     sbin: Instrument) -> None:
    legacy = make_kotak(sandbox, account, server, AuthFlow.OAUTH2)
    with pytest.raises(ProtocolError) as before_login:
        legacy.client.last_prices([sbin])
    legacy.login()

    with pytest.raises(ProtocolError) as missing:
        legacy.client.last_prices([sbin])

    assert "totp" in missing.value.message and "quotes" in missing.value.message
    assert before_login.value.message == missing.value.message
    assert legacy.requests_to("quotes") == 0
    assert legacy.sessions.peek() is not None


def test_gateway_errors_on_quotes_are_retried_like_any_read(totp: Kotak,
                                                            sbin: Instrument) -> None:
    totp.sandbox.add_fault(Fault("http_error", endpoint="quotes", status=503, times=2))

    assert totp.client.last_prices([sbin]) == {(Exchange.NSE, "SBIN-EQ"): Decimal("850")}
    assert totp.requests_to("quotes") == 3


# --- the sandbox's side of the wire, seen with a plain HTTP client --------------------------


def test_sandbox_answers_kotaks_shape_to_the_access_token_alone(
        sandbox: Sandbox, account: SandboxAccount, server: SandboxServer) -> None:
    sandbox.set_price("NSE", "HDFCBANK-EQ", Decimal("801.6"))

    reply = _literal_get(f"{server.url}{QUOTES_PATH}/nse_cm|1333/ltp",
                         {"Authorization": account.consumer_key})

    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    (quote,) = reply.json()
    assert {key: quote[key] for key in ("exchange_token", "display_symbol", "exchange",
                                        "ltp")} == {
        "exchange_token": "1333", "display_symbol": "HDFCBANK-EQ", "exchange": "nse_cm",
        "ltp": "801.6000"}
    assert quote["lstup_time"].isdigit() and quote["last_traded_quantity"].isdigit()
    assert set(quote["ohlc"]) == {"open", "high", "low", "close"}
    numbers = [quote[k] for k in ("ltp", "avg_cost", "change", "per_change",
                                  "low_price_range", "high_price_range")]
    numbers += list(quote["ohlc"].values())
    assert all(isinstance(n, str) and len(n.rpartition(".")[2]) == 4 for n in numbers)


def test_sandbox_refusals_take_kotaks_shapes(sandbox: Sandbox, account: SandboxAccount,
                                             server: SandboxServer) -> None:
    def get(pairs: str, token: str = account.consumer_key) -> requests.Response:
        return _literal_get(f"{server.url}{QUOTES_PATH}/{pairs}/ltp",
                            {"Authorization": token} if token else {})

    stale = get("nse_cm|3045", token="not-a-token")
    unknown = get("nse_cm|999999")
    index_by_token = get("nse_cm|26000")
    too_many = get(",".join(["nse_cm|3045"] * 51))
    bare = get("nse_cm|3045", token="")

    assert (stale.status_code, stale.json()) == (
        403, {"stCode": 100022, "errMsg": "invalid session token", "stat": "Not_Ok"})
    assert (unknown.status_code, unknown.json()) == (
        200, {"stat": "Not_Ok", "emsg": "invalid instrument", "stCode": 1009})
    assert index_by_token.json()["stCode"] == 1009  # indices go by name
    assert too_many.status_code == 400 and too_many.json()["stCode"] == 1002
    assert bare.status_code == 400 and bare.json()["error"][0]["code"] == "10512"
    assert [r.status for r in sandbox.requests.snapshot("quotes")] == [403, 200, 200, 400, 400]


# --- the wire module alone ----------------------------------------------------------------


def test_quote_list_encodes_names_but_not_separators() -> None:
    nifty = Instrument(Exchange.NSE, "Nifty 50", "NIFTY 50", "26000", InstrumentKind.INDEX, 1,
                       Decimal("0.05"))
    mm = Instrument(Exchange.NSE, "M&M-EQ", "M&M", "2031", InstrumentKind.EQUITY, 1,
                    Decimal("0.05"))

    assert wire.quote_symbols([nifty, mm]) == "nse_cm|Nifty%2050,nse_cm|2031"
    assert wire.QUOTES.path(legacy=False, values={"symbols": "nse_cm|2031"}) == (
        "script-details/1.0/quotes/neosymbol/nse_cm|2031/ltp")
    with pytest.raises(ValueError):
        wire.quote_symbols([mm] * 51)
    with pytest.raises(ProtocolError):
        wire.QUOTES.path(legacy=True, values={"symbols": "nse_cm|2031"})


def test_quote_reply_is_read_into_exchange_token_and_price() -> None:
    body = [{"exchange_token": "1333", "display_symbol": "HDFCBANK-EQ", "exchange": "nse_cm",
             "lstup_time": "1782374657", "ltp": "801.6000", "depth": None}]

    assert wire.parse_last_prices(body) == [
        wire.LastPrice(Exchange.NSE, "1333", "HDFCBANK-EQ", Decimal("801.6"))]
    assert wire.parse_last_prices([]) == []
    for bad in ({"data": body}, [{"exchange": "nse_cm", "exchange_token": "1"}],
                [{"exchange": "xyz", "ltp": "1.0000"}], [{"exchange": "nse_cm", "ltp": "n/a"}]):
        with pytest.raises(ProtocolError):
            wire.parse_last_prices(bad)


def _literal_get(url: str, headers: dict[str, str]) -> requests.Response:
    """GET with the path as written: plain requests would send '|' as '%7C'."""
    session = new_session()
    prepared = session.prepare_request(requests.Request("GET", url, headers=headers))
    prepared.url = url
    return session.send(prepared, timeout=5)


# --- the delimiters on the wire (Kotak's SDK since July 2026) ------------------------------


def test_quote_delimiters_leave_literal_on_the_wire(totp: Kotak, index: InstrumentIndex,
                                                    sbin: Instrument) -> None:
    nifty = index.get(Exchange.NSE, "Nifty 50")
    assert nifty is not None
    totp.sandbox.set_price("NSE", "SBIN-EQ", Decimal("851.35"))

    prices = totp.client.last_prices([sbin, nifty])

    assert prices[(Exchange.NSE, "SBIN-EQ")] == Decimal("851.35")
    assert (Exchange.NSE, nifty.trading_symbol) in prices
    (record,) = totp.sandbox.requests.snapshot("quotes")
    # The request line as it came over the socket: '|' and ',' literal, the space escaped.
    assert record.target == (f"{QUOTES_PATH}/nse_cm|{sbin.token},"
                             f"nse_cm|{nifty.trading_symbol.replace(' ', '%20')}/ltp")
    assert "%7C" not in record.target.upper() and "%2C" not in record.target.upper()


def test_an_escaped_delimiter_names_no_instrument(sandbox: Sandbox, account: SandboxAccount,
                                                  server: SandboxServer) -> None:
    # What a client that lets requests escape the '|' gets from Kotak: no quote at all, so a
    # square-off could not re-price. Plain requests sends %7C.
    escaped = requests.get(f"{server.url}{QUOTES_PATH}/nse_cm|3045/ltp", timeout=5,
                           headers={"Authorization": account.consumer_key})
    literal = _literal_get(f"{server.url}{QUOTES_PATH}/nse_cm|3045/ltp",
                           {"Authorization": account.consumer_key})

    assert "%7C" in sandbox.requests.snapshot("quotes")[0].target
    assert escaped.json() == {"stat": "Not_Ok", "emsg": "invalid instrument", "stCode": 1009}
    assert [quote["exchange_token"] for quote in literal.json()] == ["3045"]


def test_quotes_carry_a_depth_of_five_levels_a_side(sandbox: Sandbox, account: SandboxAccount,
                                                    server: SandboxServer) -> None:
    (quote,) = _literal_get(f"{server.url}{QUOTES_PATH}/nse_cm|3045/all",
                            {"Authorization": account.consumer_key}).json()

    depth = quote["depth"]
    assert set(depth) == {"buy", "sell"}
    assert [len(depth["buy"]), len(depth["sell"])] == [5, 5]
    best_bid, best_ask = Decimal(depth["buy"][0]["price"]), Decimal(depth["sell"][0]["price"])
    assert best_bid < Decimal(quote["ltp"]) < best_ask
    assert set(depth["buy"][0]) == {"price", "quantity", "orders"}
