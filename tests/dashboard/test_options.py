"""Options on the dashboard: the template helper's option-by-offset and multi-leg alerts
(checked against the bridge's own signal contract), the signal page of a resolved option and
of a multi-leg signal with a failed leg, and the partial status's colour and meaning."""

from __future__ import annotations

import html
import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import bridge.dashboard
from bridge.dashboard import alerts
from bridge.domain import (
    Exchange,
    Leg,
    OptionRequest,
    OptionType,
    Resolution,
    Side,
    Signal,
    SignalSource,
)
from bridge.journal.rows import OrderPlan, OrderState, SignalStatus
from bridge.schemas import load_signal
from tests.dashboard.conftest import PASSWORD, sign_in
from tests.signals.conftest import SECRET, Bridge

CSS = Path(bridge.dashboard.__file__).parent / "static" / "dashboard.css"


@pytest.fixture
def quiet(make_bridge: Any) -> Bridge:
    """A bridge whose dispatcher does not run: signals written straight into the journal
    stay as written."""
    made: Bridge = make_bridge(background=False, ADMIN_PASSWORD=PASSWORD)
    return made


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _message(page: str) -> dict[str, Any]:
    found = re.search(r'id="template-text">(.*?)</pre>', page, re.S)
    assert found, _text(page)[:2000]
    message: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return message


def _accepted(message: dict[str, Any]) -> Signal:
    """The message as the bridge's webhook would read it (the secret taken out first)."""
    payload = {key: value for key, value in message.items() if key != "secret"}
    return load_signal(payload, SignalSource.TRADINGVIEW)


def _lot(bridge: Bridge, exchange: Exchange, underlying: str) -> int:
    index = bridge.services.instruments.current()
    chain = index.futures(exchange, underlying)
    assert chain, f"the sandbox lists no futures of {underlying}"
    return chain[0].lot_size


# --- the template helper ----------------------------------------------------------------------

def test_option_by_offset_template_is_a_signal_the_bridge_accepts(quiet: Bridge) -> None:
    client = quiet.app.test_client()
    sign_in(client)
    page = client.get("/helper?mode=option&underlying=nifty&offset=OTM2&option_type=PE"
                      "&expiry=current_week&lots=2&action=SELL&product=NRML"
                      "&strategy=nifty-puts").get_data(as_text=True)
    lot = _lot(quiet, Exchange.NFO, "NIFTY")
    message = _message(page)
    assert message == {
        "secret": SECRET, "underlying": "NIFTY", "exchange": "NSE_INDEX", "offset": "OTM2",
        "option_type": "PE", "expiry_date": "current_week", "action": "SELL",
        "quantity": 2 * lot, "product": "NRML", "pricetype": "MARKET",
        "strategy": "nifty-puts", "alert_id": "{{ticker}}-{{timenow}}"}
    text = _text(page)
    assert f"Lot size of NIFTY: {lot} (today's scrip master)" in text
    assert f"2 lots = {2 * lot} units" in text
    assert "/webhook/tradingview" in text

    signal = _accepted(message)
    assert signal.option == OptionRequest(underlying="NIFTY", offset="OTM2",
                                          option_type=OptionType.PE, expiry="current_week",
                                          exchange="NSE_INDEX")
    assert (signal.side, signal.quantity) == (Side.SELL, 2 * lot)


def test_option_template_for_sensex_a_date_and_the_pine_strategy(quiet: Bridge) -> None:
    client = quiet.app.test_client()
    sign_in(client)
    page = client.get("/helper?mode=option&underlying=SENSEX&offset=ATM&option_type=CE"
                      "&expiry=date&expiry_on=30dec26&lots=1&action=strategy"
                      "&product=MIS").get_data(as_text=True)
    message = _message(page)
    assert message["exchange"] == "BSE_INDEX" and message["expiry_date"] == "30DEC26"
    assert message["quantity"] == _lot(quiet, Exchange.BFO, "SENSEX")
    assert message["action"] == "{{strategy.order.action}}"
    assert message["alert_id"] == "{{ticker}}-{{strategy.order.id}}-{{timenow}}"
    nearest = _message(client.get("/helper?mode=option").get_data(as_text=True))
    assert "expiry_date" not in nearest  # the nearest listed expiry is the bridge's default
    assert _accepted(nearest).option is not None


def test_option_template_for_a_stock_uses_its_lot_and_nse(quiet: Bridge) -> None:
    client = quiet.app.test_client()
    sign_in(client)
    message = _message(client.get("/helper?mode=option&underlying=RELIANCE&offset=ITM1"
                                  "&option_type=CE&lots=3").get_data(as_text=True))
    assert message["exchange"] == "NSE" and message["underlying"] == "RELIANCE"
    assert message["quantity"] == 3 * _lot(quiet, Exchange.NFO, "RELIANCE")
    assert _accepted(message).option is not None
    # TradingView's spelling of M&M becomes the exchange's.
    mm = _message(client.get("/helper?mode=option&underlying=M_M").get_data(as_text=True))
    assert mm["underlying"] == "M&M" and mm["quantity"] == _lot(quiet, Exchange.NFO, "M&M")


@pytest.mark.parametrize(("query", "says"), [
    ("underlying=NOSUCHCO", "NOSUCHCO has no futures or options"),
    ("expiry=date&expiry_on=31FEB26", "DDMMMYY"),
    ("lots=0", "Lots: a whole number"),
    ("offset=OTM99", "Offset: ATM, ITM1 to ITM10"),
    ("underlying=NIFTY%20BANK", "Underlying: an index"),
])
def test_option_template_names_a_bad_field(quiet: Bridge, query: str, says: str) -> None:
    client = quiet.app.test_client()
    sign_in(client)
    page = client.get(f"/helper?mode=option&{query}").get_data(as_text=True)
    assert 'class="error"' in page and says in _text(page)
    assert 'id="template-text"' not in page


def test_iron_condor_template_lists_every_leg_and_is_accepted(quiet: Bridge) -> None:
    client = quiet.app.test_client()
    sign_in(client)
    page = client.get("/helper?mode=legs&shape=iron_condor&direction=SELL&underlying=NIFTY"
                      "&near=2&far=5&expiry=next_week&lots=1&product=MIS"
                      "&strategy=condor").get_data(as_text=True)
    lot = _lot(quiet, Exchange.NFO, "NIFTY")
    message = _message(page)
    assert {key: value for key, value in message.items() if key != "legs"} == {
        "secret": SECRET, "underlying": "NIFTY", "exchange": "NSE_INDEX",
        "expiry_date": "next_week", "product": "MIS", "strategy": "condor",
        "alert_id": "{{ticker}}-{{timenow}}"}
    assert message["legs"] == [
        {"offset": "OTM5", "option_type": "CE", "action": "BUY", "quantity": lot},
        {"offset": "OTM5", "option_type": "PE", "action": "BUY", "quantity": lot},
        {"offset": "OTM2", "option_type": "CE", "action": "SELL", "quantity": lot},
        {"offset": "OTM2", "option_type": "PE", "action": "SELL", "quantity": lot},
    ]
    assert "LEG_FAILURE=report" in _text(page)

    signal = _accepted(message)
    assert [(leg.side, leg.option.offset if leg.option else "") for leg in signal.legs] == [
        (Side.BUY, "OTM5"), (Side.BUY, "OTM5"), (Side.SELL, "OTM2"), (Side.SELL, "OTM2")]
    assert all(leg.option is not None and leg.option.expiry == "next_week"
               for leg in signal.legs)


def test_straddle_and_strangle_templates(quiet: Bridge) -> None:
    client = quiet.app.test_client()
    sign_in(client)
    lot = _lot(quiet, Exchange.NFO, "BANKNIFTY")
    straddle = _message(client.get("/helper?mode=legs&shape=straddle&direction=SELL"
                                   "&underlying=BANKNIFTY&lots=2").get_data(as_text=True))
    assert straddle["legs"] == [
        {"offset": "ATM", "option_type": "CE", "action": "SELL", "quantity": 2 * lot},
        {"offset": "ATM", "option_type": "PE", "action": "SELL", "quantity": 2 * lot}]
    assert straddle["strategy"] == "straddle"
    strangle = _message(client.get("/helper?mode=legs&shape=strangle&direction=BUY"
                                   "&underlying=BANKNIFTY&near=3").get_data(as_text=True))
    assert [(leg["offset"], leg["option_type"], leg["action"]) for leg in strangle["legs"]] == [
        ("OTM3", "CE", "BUY"), ("OTM3", "PE", "BUY")]
    assert len(_accepted(strangle).legs) == 2
    wrong = client.get("/helper?mode=legs&shape=iron_condor&near=4&far=4").get_data(
        as_text=True)
    assert "the hedge must be further out than the body" in _text(wrong)


def test_every_template_fits_a_phone(quiet: Bridge) -> None:
    """No fixed widths that would scroll sideways at 360 px: the forms wrap, the message and
    the long address break."""
    client = quiet.app.test_client()
    sign_in(client)
    for mode in ("option", "legs"):
        page = client.get(f"/helper?mode={mode}").get_data(as_text=True)
        assert 'class="filters"' in page and 'id="webhook-url" class="wrap"' in page
        assert 'name="viewport" content="width=device-width' in page
        assert not re.search(r'style="[^"]*width', page)
    css = CSS.read_text()
    assert ".wrap { overflow-wrap: anywhere" in css
    assert "pre.report { overflow-wrap: anywhere; }" in css
    for size, unit in re.findall(r"(?<![-\w])(?:min-)?width:\s*([\d.]+)(px|rem|em)", css):
        assert float(size) * (1 if unit == "px" else 15) <= 360, (size, unit)


def test_lot_sizes_without_a_scrip_master() -> None:
    day = date(2026, 12, 1)
    assert alerts.lot_size(None, "NIFTY", day) == alerts.LotSize(65, False, "NIFTY")
    assert alerts.lot_size(None, "MIDCPNIFTY", day) == alerts.LotSize(120, False, "MIDCPNIFTY")
    assert alerts.lot_size(None, "BANKEX", day) == alerts.LotSize(30, False, "BANKEX")
    with pytest.raises(alerts.TemplateError, match="scrip master is not loaded"):
        alerts.lot_size(None, "RELIANCE", day)
    assert alerts.expiry_of("nearest", "") == ""
    assert alerts.expiry_of("next_month", "ignored") == "next_month"
    assert alerts.quoted_on("BANKEX") == "BSE_INDEX" and alerts.quoted_on("SBIN") == "NSE"


# --- the signal page ------------------------------------------------------------------------

def _picked(offset: str, kind: OptionType, strike: str, symbol: str) -> Resolution:
    return Resolution(
        underlying="NIFTY", quoted="NSE:Nifty 50", underlying_price=Decimal("26012.35"),
        strike_step=Decimal("50"), atm_strike=Decimal("26000"), offset=offset,
        option_type=kind, expiry=date(2026, 12, 29), strike=Decimal(strike),
        exchange=Exchange.NFO, trading_symbol=symbol)


def _journal(bridge: Bridge, signal: Signal, raw: dict[str, Any]) -> int:
    signal_id: int = bridge.services.journal.signals.add_signal(
        alert_id=signal.alert_id, source=signal.source.value, account="default",
        remote_addr="127.0.0.1", raw_body=json.dumps(raw), signal=signal,
        status=SignalStatus.DISPATCHING, priority=1, expires_at=None)
    return signal_id


def _plan(side: str, quantity: int, symbol: str, *, is_exit: bool = False) -> OrderPlan:
    return OrderPlan(exchange="NFO", trading_symbol=symbol, side=side, quantity=quantity,
                     product="MIS", order_type="MARKET", price=None, trigger_price=None,
                     is_exit=is_exit, tag=f"t{symbol[-7:]}{side[0]}{int(is_exit)}")


def test_signal_page_shows_the_resolved_option_in_plain_words(quiet: Bridge) -> None:
    journal = quiet.services.journal
    request = OptionRequest("NIFTY", "ATM", OptionType.CE, exchange="NSE_INDEX")
    signal = Signal(source=SignalSource.API, symbol="NIFTY26DEC26000CE", side=Side.BUY,
                    exchange=Exchange.NFO, quantity=65, strategy="nifty-atm",
                    alert_id="opt-page-1", option=request,
                    resolution=_picked("ATM", OptionType.CE, "26000", "NIFTY26DEC26000CE"))
    signal_id = _journal(quiet, signal, {"underlying": "NIFTY", "offset": "ATM"})
    (order,), _ = journal.orders.add_orders(signal_id, "default", "nifty-atm",
                                            [_plan("BUY", 65, "NIFTY26DEC26000CE")])
    journal.orders.set_order(order.id, OrderState.COMPLETE, broker_order_id="260101000123",
                             filled_quantity=65, average_price="101.50")

    client = quiet.app.test_client()
    token = sign_in(client)
    page = _text(client.get(f"/signals/{signal_id}").get_data(as_text=True))
    assert ("ATM CE of NIFTY, expiry 29 Dec 2026: NIFTY26DEC26000CE (NIFTY was 26,012.35; "
            "strike step 50)") in page
    assert "Price from NSE:Nifty 50" in page
    assert "from API" in page and "260101000123" in page and "complete" in page

    listed = _text(client.get("/live", headers={"X-CSRF-Token": token}).get_json()["signals"])
    assert "BUY 65 NIFTY26DEC26000CE (ATM CE) MARKET MIS" in listed
    assert "API" in listed and "ATM CE of NIFTY, expiry 29 Dec 2026" in listed


def test_an_option_never_picked_says_what_was_asked(quiet: Bridge) -> None:
    request = OptionRequest("BANKNIFTY", "OTM3", OptionType.PE, expiry="current_month")
    signal = Signal(source=SignalSource.TRADINGVIEW, symbol="BANKNIFTY", side=Side.SELL,
                    quantity=30, alert_id="opt-unpicked", option=request)
    signal_id = _journal(quiet, signal, {"underlying": "BANKNIFTY"})
    client = quiet.app.test_client()
    sign_in(client)
    page = _text(client.get(f"/signals/{signal_id}").get_data(as_text=True))
    assert "SELL 30 OTM3 PE of BANKNIFTY, this month's expiry MARKET MIS" in page
    assert "no contract was picked" in page


def test_multi_leg_signal_page_shows_each_leg_its_orders_and_partial(quiet: Bridge) -> None:
    journal = quiet.services.journal
    legs = (
        Leg(side=Side.BUY, quantity=65, symbol="NIFTY26DEC26250CE", exchange=Exchange.NFO,
            option=OptionRequest("NIFTY", "OTM5", OptionType.CE),
            resolution=_picked("OTM5", OptionType.CE, "26250", "NIFTY26DEC26250CE")),
        Leg(side=Side.BUY, quantity=65, symbol="NIFTY26DEC25750PE", exchange=Exchange.NFO,
            option=OptionRequest("NIFTY", "OTM5", OptionType.PE),
            resolution=_picked("OTM5", OptionType.PE, "25750", "NIFTY26DEC25750PE")),
        Leg(side=Side.SELL, quantity=130, symbol="NIFTY26DEC26100CE", exchange=Exchange.NFO,
            option=OptionRequest("NIFTY", "OTM2", OptionType.CE),
            resolution=_picked("OTM2", OptionType.CE, "26100", "NIFTY26DEC26100CE")),
        Leg(side=Side.SELL, quantity=65, symbol="NIFTY26DEC25900PE", exchange=Exchange.NFO,
            option=OptionRequest("NIFTY", "OTM2", OptionType.PE),
            resolution=_picked("OTM2", OptionType.PE, "25900", "NIFTY26DEC25900PE")),
    )
    signal = Signal(source=SignalSource.TRADINGVIEW, symbol=legs[0].symbol, side=Side.BUY,
                    exchange=Exchange.NFO, quantity=65, strategy="condor",
                    alert_id="condor-1", legs=legs, splitsize=65)
    signal_id = _journal(quiet, signal, {"underlying": "NIFTY", "legs": []})
    orders, _ = journal.orders.add_orders(signal_id, "default", "condor", [
        _plan("BUY", 65, "NIFTY26DEC26250CE"), _plan("BUY", 65, "NIFTY26DEC25750PE"),
        _plan("SELL", 65, "NIFTY26DEC26100CE"),
        OrderPlan(exchange="NFO", trading_symbol="NIFTY26DEC26100CE", side="SELL",
                  quantity=65, product="MIS", order_type="MARKET", price=None,
                  trigger_price=None, is_exit=False, tag="second-slice"),
        _plan("SELL", 65, "NIFTY26DEC25900PE"),
        _plan("SELL", 65, "NIFTY26DEC26250CE", is_exit=True)])
    for number, order in enumerate(orders[:4]):
        journal.orders.set_order(order.id, OrderState.COMPLETE, broker_order_id=f"26010100{number}",
                                 filled_quantity=65, average_price="40")
    journal.orders.set_order(orders[4].id, OrderState.REJECTED, broker_order_id="260101009",
                             reason="RMS: margin shortfall of Rs 41,200")
    journal.orders.set_order(orders[5].id, OrderState.COMPLETE, broker_order_id="260101010",
                             filled_quantity=65, average_price="39")
    row = journal.signals.signal(signal_id)
    assert row is not None and row.status is SignalStatus.PARTIAL

    client = quiet.app.test_client()
    token = sign_in(client)
    body = client.get(f"/signals/{signal_id}").get_data(as_text=True)
    page = _text(body)
    legs_part = page[page.index("Legs"):page.index("Timeline")]
    assert ("BUY 65 OTM5 CE of NIFTY, expiry 29 Dec 2026: NIFTY26DEC26250CE, strike 26,250 "
            "(NIFTY was 26,012.35, ATM 26,000; strike step 50)") in legs_part
    leg3 = re.search(r'id="leg-3">(.*?)</li>', body, re.S)
    leg4 = re.search(r'id="leg-4">(.*?)</li>', body, re.S)
    assert leg3 and leg4
    assert _text(leg3.group(1)).count("complete") == 2  # two slices of the 130
    assert "260101002" in leg3.group(1) and "260101003" in leg3.group(1)
    assert "rejected" in _text(leg4.group(1)) and "margin shortfall" in leg4.group(1)
    assert 'class="leg-failed" id="leg-4"' in body
    assert "Closing orders" in page and "260101010" in page.split("Closing orders")[1]
    assert "in orders of at most 65 units each" in page
    assert "Partial: some legs or parts stand at Kotak and at least one failed" in page

    live = client.get("/live", headers={"X-CSRF-Token": token}).get_json()["signals"]
    assert 'class="status-partial"' in live
    listed = _text(live)
    assert "4 legs: BUY 65 NIFTY26DEC26250CE (OTM5 CE), BUY 65 NIFTY26DEC25750PE (OTM5 PE)" \
        in listed
    assert "partial: complete" in listed

    overview = _text(client.get("/?status=partial").get_data(as_text=True))
    assert "condor-1" in overview
    assert "partial some legs or parts stand at Kotak" in overview  # the statuses explained


def test_partial_has_its_own_colour() -> None:
    css = CSS.read_text()
    colours = dict(re.findall(r"--(ok|bad|warn|partial): (#[0-9a-f]{6})", css))
    assert colours["partial"] not in (colours["ok"], colours["bad"], colours["warn"])
    assert re.search(r"\.status-partial \.status[^{]*\{ color: var\(--partial\)", css)


# --- the API key ----------------------------------------------------------------------------

API_KEY = "api-key-for-openalgo-clients-7f3a9c"


def test_api_key_is_shown_masked_with_show_and_copy_only_when_signed_in(
        make_bridge: Any) -> None:
    bridge: Bridge = make_bridge(background=False, ADMIN_PASSWORD=PASSWORD, API_KEY=API_KEY,
                                 PUBLIC_URL="https://bridge.example.in")
    client = bridge.app.test_client()
    signed_out = client.get("/api-access")
    assert signed_out.status_code == 302 and "/login" in signed_out.headers["Location"]
    assert API_KEY not in signed_out.get_data(as_text=True)
    assert API_KEY not in client.get("/login").get_data(as_text=True)

    sign_in(client)
    answer = client.get("/api-access")
    body = answer.get_data(as_text=True)
    assert answer.headers["Cache-Control"] == "no-store"
    shown = _text(body)
    assert API_KEY not in shown  # masked until "Show" is pressed
    assert "\u2022" * 12 + API_KEY[-4:] in shown
    assert f'data-secret="{API_KEY}"' in body
    assert 'data-reveal="api-key"' in body and 'data-copy="api-key"' in body
    assert 'id="api-host" class="wrap">https://bridge.example.in<' in body
    assert 'host="https://bridge.example.in"' in html.unescape(body)
    for call in ("placeorder", "optionsorder", "optionsmultiorder", "positionbook", "ping"):
        assert call in shown
    assert "Idempotency-Key" in shown
    assert 'href="/api-access"' in client.get("/").get_data(as_text=True)
    # The template helper's pages never carry the API key.
    assert API_KEY not in client.get("/helper?mode=option").get_data(as_text=True)


def test_without_an_api_key_the_page_says_how_to_turn_it_on(quiet: Bridge) -> None:
    client = quiet.app.test_client()
    sign_in(client)
    page = _text(client.get("/api-access").get_data(as_text=True))
    assert "The API is off: no API_KEY is set." in page
    assert "make run writes a fresh key into an .env that has no API_KEY line" in page
    assert "data-secret" not in client.get("/api-access").get_data(as_text=True)


def test_the_page_script_copies_the_whole_key_and_toggles_the_mask() -> None:
    script = (CSS.parent / "dashboard.js").read_text()
    assert "source.dataset.secret || source.textContent" in script
    assert "target.dataset.masked : target.dataset.secret" in script
    assert "navigator.clipboard" in script
    assert "http" not in script  # no library fetched from anywhere: the script is all there is
