"""Options by strike offset through the webhook: the contract picked from the index's live
quote reaches Kotak, and the answer, the journal and a refusal say exactly what was picked
or why nothing was sent."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from bridge.domain import Exchange, Instrument
from bridge.kotak.sandbox import Fault
from tests.signals.conftest import Bridge


def nifty_option(bridge: Bridge, strike: int, kind: str, expiry: date | None = None
                 ) -> Instrument:
    """NIFTY's option at ``strike`` of the nearest listed expiry (or ``expiry``)."""
    chain = bridge.services.instruments.current().option_chain(Exchange.NFO, "NIFTY", kind)
    assert chain is not None
    ladder = chain.ladders[expiry or chain.expiries_from(date.today())[0]]
    at = ladder.position(Decimal(strike))
    assert at is not None, f"NIFTY {strike} {kind} is not listed"
    return ladder.contracts[at]


def option(**extra: Any) -> dict[str, Any]:
    return {"underlying": "NIFTY", "exchange": "NSE_INDEX", "offset": "ATM",
            "option_type": "CE", "action": "BUY", "quantity": 65, "product": "NRML", **extra}


def test_atm_call_from_the_index_price_reaches_kotak(bridge: Bridge) -> None:
    bridge.sandbox.set_price("NSE", "Nifty 50", Decimal("26040.35"))
    wanted = nifty_option(bridge, 26050, "CE")

    http, answer = bridge.signal(alert_id="opt-atm", **option())

    assert (http, answer["status"]) == (200, "placed"), answer
    assert [(p["ts"], p["tt"], p["qt"]) for p in bridge.placed()] == [
        (wanted.trading_symbol, "B", "65")]
    picked = answer["option"]
    assert picked["trading_symbol"] == wanted.trading_symbol
    assert (picked["underlying_price"], picked["strike_step"], picked["strike"]) == (
        "26040.35", "50", "26050")
    row = bridge.journaled("opt-atm")
    assert row.signal is not None and row.signal.resolution is not None
    assert row.signal.resolution.underlying_price == Decimal("26040.35")
    assert row.instrument == f"NFO:{wanted.trading_symbol}"


def test_itm_put_is_above_the_atm_strike(bridge: Bridge) -> None:
    bridge.sandbox.set_price("NSE", "Nifty 50", Decimal("26010"))
    wanted = nifty_option(bridge, 26100, "PE")

    http, answer = bridge.signal(alert_id="opt-itm", **option(offset="ITM2", option_type="PE"))

    assert (http, answer["option"]["trading_symbol"]) == (200, wanted.trading_symbol), answer
    assert bridge.placed()[0]["ts"] == wanted.trading_symbol


def test_an_iron_condor_sends_its_buy_legs_first(bridge: Bridge) -> None:
    bridge.sandbox.set_price("NSE", "Nifty 50", Decimal("26000"))
    legs = [{"offset": "OTM2", "option_type": "CE", "action": "SELL", "quantity": 65},
            {"offset": "OTM2", "option_type": "PE", "action": "SELL", "quantity": 65},
            {"offset": "OTM4", "option_type": "CE", "action": "BUY", "quantity": 65},
            {"offset": "OTM4", "option_type": "PE", "action": "BUY", "quantity": 65}]

    http, answer = bridge.signal(alert_id="opt-condor", underlying="NIFTY",
                                 exchange="NSE_INDEX", product="NRML", legs=legs)

    assert (http, answer["status"]) == (200, "placed"), answer
    expected = [(nifty_option(bridge, 26200, "CE").trading_symbol, "B"),
                (nifty_option(bridge, 25800, "PE").trading_symbol, "B"),
                (nifty_option(bridge, 26100, "CE").trading_symbol, "S"),
                (nifty_option(bridge, 25900, "PE").trading_symbol, "S")]
    assert [(p["ts"], p["tt"]) for p in bridge.placed()] == expected
    assert [leg["symbol"] for leg in answer["legs"]] == [symbol for symbol, _ in expected]
    assert {leg["option"]["underlying_price"] for leg in answer["legs"]} == {"26000"}
    # Four legs, one price of the index: one quotes call.
    assert len(bridge.sandbox.requests.snapshot("quotes")) == 1


def test_an_offset_past_the_listed_strikes_is_refused_naming_it(bridge: Bridge) -> None:
    http, answer = bridge.signal(alert_id="opt-far", **option(offset="OTM50"))

    assert http == 422, answer
    assert "offset" in answer["error"]["details"]
    assert bridge.placed() == []


def test_no_quote_from_kotak_sends_nothing(bridge: Bridge) -> None:
    bridge.sandbox.add_fault(Fault(endpoint="quotes", kind="http_error", status=500, times=None))

    http, answer = bridge.signal(alert_id="opt-noquote", **option())

    assert http == 422, answer
    assert "underlying" in answer["error"]["details"]
    assert bridge.placed() == []
    assert bridge.journaled("opt-noquote").status.value == "rejected"


def test_an_option_signal_without_its_offset_names_the_field(bridge: Bridge) -> None:
    payload = option()
    del payload["offset"]

    http, answer = bridge.signal(alert_id="opt-nooffset", **payload)

    assert http == 422
    assert answer["error"]["details"]["offset"] == ["is required with underlying: ATM, ITM2 "
                                                    "or OTM1"]
