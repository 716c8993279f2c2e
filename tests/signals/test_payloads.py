"""A table of signals and exactly what each became at the broker, or exactly why not.

Every case posts one TradingView-style signal to a fresh bridge (SQLite and PostgreSQL) and
compares the sandbox's received ``jData`` field by field (our random tag aside), or the HTTP
code, status and the field named in the refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.signals.conftest import SECRET, Bridge


def wire(**changes: str) -> dict[str, str]:
    """The full jData of a default order (SBIN, MIS, market buy of 1), with changes."""
    data = {"am": "NO", "dq": "0", "es": "nse_cm", "mp": "0", "pc": "MIS", "pr": "0",
            "pt": "MKT", "qt": "1", "rt": "DAY", "tp": "0", "ts": "SBIN-EQ", "tt": "B",
            "os": "NEOTRADEAPI"}
    data.update(changes)
    return data


@dataclass
class Case:
    name: str
    payload: dict[str, Any]
    sent: dict[str, str] | None = None  # the exact jData expected (tag aside)
    http: int = 200
    status: str = "placed"
    field: str = ""  # the field a refusal must name
    seed: tuple[str, int, str, str] | None = None  # symbol, quantity, exchange, product


def sbin(**fields: Any) -> dict[str, Any]:
    return {"symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": 1, **fields}


CASES = [
    Case("market buy", sbin(), wire()),
    Case("lowercase action from {{strategy.order.action}}", sbin(action="sell"), wire(tt="S")),
    Case("quantity as a string", sbin(quantity="10"), wire(qt="10")),
    Case("quantity as '10.0'", sbin(quantity="10.0"), wire(qt="10")),
    Case("quantity as a float 10.0", sbin(quantity=10.0), wire(qt="10")),
    Case("fractional quantity", sbin(quantity="10.5"), http=422, status="rejected",
         field="quantity"),
    Case("negative quantity", sbin(quantity=-5), http=422, status="rejected", field="quantity"),
    Case("zero quantity", sbin(quantity=0), http=422, status="rejected", field="quantity"),
    Case("quantity missing", {"symbol": "SBIN", "exchange": "NSE", "action": "BUY"},
         http=422, status="rejected", field="quantity"),
    Case("quantity not a number", sbin(quantity="ten"), http=422, status="rejected",
         field="quantity"),
    # A buy limit is rounded down onto the tick, a sell limit up: never pay more, never sell
    # for less than asked.
    Case("buy limit rounded down to the tick", sbin(pricetype="LIMIT", price="851.13"),
         wire(pt="L", pr="851.1")),
    Case("pricetype in lowercase", sbin(pricetype="limit", price=851), wire(pt="L", pr="851")),
    Case("limit without price", sbin(pricetype="LIMIT"), http=422, status="rejected",
         field="price"),
    Case("stop-loss limit", sbin(pricetype="SL", price="861", trigger_price="860"),
         wire(pt="SL", pr="861", tp="860")),
    Case("stop-loss without trigger", sbin(pricetype="SL", price="861"), http=422,
         status="rejected", field="trigger_price"),
    Case("buy SL with price below trigger", sbin(pricetype="SL", price="850",
                                                 trigger_price="860"),
         http=422, status="rejected", field="price"),
    Case("SL-M goes out as SL with a protective limit",
         sbin(pricetype="SL-M", trigger_price="860"), wire(pt="SL", pr="864.3", tp="860")),
    Case("SL-M without trigger", sbin(pricetype="SL-M"), http=422, status="rejected",
         field="trigger_price"),
    Case("trigger on a market order", sbin(trigger_price="840"), http=422, status="rejected",
         field="trigger_price"),
    Case("zero trigger on a market order is ignored", sbin(trigger_price="0"), wire()),
    Case("market price is only a reference", sbin(price="851.5"), wire()),
    Case("misspelt pricetype field", sbin(price_type="LIMIT", price=851), http=422,
         status="rejected", field="price_type"),
    Case("unknown pricetype value", sbin(pricetype="STOP"), http=422, status="rejected",
         field="pricetype"),
    Case("unknown field", sbin(leverage=5), http=422, status="rejected", field="leverage"),
    Case("CNC delivery", sbin(product="cnc"), wire(pc="CNC")),
    Case("NRML on cash", sbin(product="NRML"), http=422, status="rejected", field="product"),
    Case("CNC on futures", {"symbol": "NIFTY1!", "action": "BUY", "quantity": 65,
                            "product": "CNC"}, http=422, status="rejected", field="product"),
    Case("TradingView NSE:M_M", {"symbol": "NSE:M_M", "action": "BUY", "quantity": 2},
         wire(ts="M&M-EQ", qt="2")),
    Case("TradingView BAJAJ_AUTO", sbin(symbol="BAJAJ_AUTO"), wire(ts="BAJAJ-AUTO-EQ")),
    Case("Kotak trading symbol", sbin(symbol="SBIN-EQ"), wire()),
    Case("BSE cash", {"symbol": "BSE:SBIN", "action": "BUY", "quantity": 3},
         wire(es="bse_cm", ts="SBIN", qt="3")),
    Case("delayed-feed exchange suffix", sbin(exchange="NSE_DLY"), wire()),
    Case("plain name on two exchanges", {"symbol": "SBIN", "action": "BUY", "quantity": 1},
         http=422, status="rejected", field="symbol"),
    Case("unknown symbol", sbin(symbol="NOSUCHCO"), http=422, status="rejected",
         field="symbol"),
    Case("an index is not tradable", {"symbol": "NSE:NIFTY 50", "action": "BUY",
                                      "quantity": 1}, http=422, status="rejected",
         field="symbol"),
    Case("continuous future NIFTY1!", {"symbol": "NIFTY1!", "action": "BUY", "quantity": "65",
                                       "product": "NRML"},
         wire(es="nse_fo", ts="{NIFTY1}", qt="65", pc="NRML")),
    Case("next future NSE:NIFTY2!", {"symbol": "NSE:NIFTY2!", "action": "SELL",
                                     "quantity": 130, "product": "NRML"},
         wire(es="nse_fo", ts="{NIFTY2}", qt="130", pc="NRML", tt="S")),
    Case("MCX:CRUDEOIL1!", {"symbol": "MCX:CRUDEOIL1!", "action": "BUY", "quantity": 100,
                            "product": "NRML"},
         wire(es="mcx_fo", ts="{CRUDE1}", qt="100", pc="NRML")),
    Case("quantity off the lot size", {"symbol": "NIFTY1!", "action": "BUY", "quantity": 60},
         http=422, status="rejected", field="quantity"),
    Case("IOC validity", sbin(validity="ioc"), wire(rt="IOC")),
    Case("after-market order", sbin(amo="true"), wire(am="YES")),
    Case("disclosed above quantity", sbin(quantity=10, disclosed_quantity=20), http=422,
         status="rejected", field="disclosed_quantity"),
    Case("secret as apikey", {"apikey": SECRET, **sbin()}, wire()),
    Case("huge price", sbin(pricetype="LIMIT", price="1e12"), http=422, status="rejected",
         field="price"),
    Case("target from flat", sbin(quantity=0, position_size="10"), wire(qt="10")),
    Case("target 0 from long exits", sbin(action="SELL", quantity=10, position_size=0),
         wire(qt="10", tt="S"), seed=("SBIN-EQ", 10, "NSE", "MIS")),
    Case("target 0 from short exits", sbin(action="BUY", quantity=10, position_size=0),
         wire(qt="10", tt="B"), seed=("SBIN-EQ", -10, "NSE", "MIS")),
    Case("reversal long to short", sbin(action="SELL", quantity=20, position_size=-10),
         wire(qt="20", tt="S"), seed=("SBIN-EQ", 10, "NSE", "MIS")),
    Case("already at the target", sbin(quantity=10, position_size=10), None, status="noop",
         seed=("SBIN-EQ", 10, "NSE", "MIS")),
    Case("exit when already flat never opens", sbin(action="SELL", quantity=10,
                                                    position_size=0), None, status="noop"),
    Case("target against the action", sbin(action="BUY", quantity=5, position_size=5),
         http=409, status="rejected", field="position_size", seed=("SBIN-EQ", 10, "NSE", "MIS")),
    Case("target off the lot size", {"symbol": "NIFTY1!", "action": "SELL",
                                     "position_size": -100, "product": "NRML"},
         http=422, status="rejected", field="position_size"),
    Case("target on a future from flat", {"symbol": "NIFTY1!", "action": "sell",
                                          "quantity": "130", "position_size": "-130",
                                          "product": "NRML"},
         wire(es="nse_fo", ts="{NIFTY1}", qt="130", pc="NRML", tt="S")),
]


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_signal_becomes_exactly_this_at_the_broker(bridge: Bridge, case: Case) -> None:
    index = bridge.services.instruments.current()
    names = {"{NIFTY1}": index.resolve("NIFTY1!").trading_symbol,
             "{NIFTY2}": index.resolve("NIFTY2!").trading_symbol,
             "{CRUDE1}": index.resolve("MCX:CRUDEOIL1!").trading_symbol}
    if case.seed is not None:
        symbol, quantity, exchange, product = case.seed
        bridge.seed(symbol, quantity, exchange=exchange, product=product, price="850")
    payload = case.payload if "apikey" in case.payload else {"secret": SECRET, **case.payload}

    http, answer = bridge.post("/webhook/tradingview", payload)

    assert (http, answer["status"]) == (case.http, case.status), answer
    sent = bridge.placed()
    if case.sent is None:
        assert sent == []
        if case.field:
            assert case.field in answer["error"]["details"] or case.field in str(
                answer["error"]["details"]), answer["error"]
        return
    expected = {key: names.get(value, value) for key, value in case.sent.items()}
    (received,) = sent
    assert received.pop("ig") == answer["orders"][0]["tag"]
    assert received == expected
    assert answer["orders"][0]["order_id"]
