"""OpenAlgo's Python client, unchanged, against the bridge: every call of DESIGN.md section 5b,
checked by what reached Kotak (the sandbox's request log and books), not only by the answer.

The client answers a call with the bridge's JSON when the HTTP status is 200, else with
``{"status": "error", "message": "HTTP <code>: <body>", "code": <code>}``.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx

from bridge.domain import Exchange, Instrument
from bridge.journal.rows import SignalStatus
from bridge.kotak.sandbox import Rule
from tests.api.conftest import KEY, Served

MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]


def openalgo_date(day: date) -> str:
    return f"{day.day:02d}{MONTHS[day.month - 1]}{day.year % 100:02d}"


def body_of(answer: dict[str, Any]) -> dict[str, Any]:
    """The bridge's own JSON inside the client's answer to a status other than 200."""
    text = answer["message"].split(": ", 1)[1]
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def nifty_future(served: Served) -> Instrument:
    return served.bridge.services.instruments.current().futures(Exchange.NFO, "NIFTY")[0]


# --- orders -------------------------------------------------------------------------------


def test_placeorder_places_at_kotak_and_answers_kotaks_order_number(served: Served) -> None:
    mark = served.mark()

    answer = served.client.placeorder(strategy="api-test", symbol="SBIN", action="BUY",
                                      exchange="NSE", price_type="MARKET", product="MIS",
                                      quantity=3)

    assert answer["status"] == "success", answer
    assert served.sent(mark) == [("SBIN-EQ", "B", "3")]
    assert served.booked(answer["orderid"])["trdSym"] == "SBIN-EQ"
    row = served.bridge.journaled(answer["alert_id"])
    assert row.source == "api" and row.strategy == "api-test"
    assert KEY not in row.raw_body and "***" in row.raw_body


def test_a_future_named_as_openalgo_names_it(served: Served) -> None:
    future = nifty_future(served)
    assert future.expiry is not None
    name = f"NIFTY{openalgo_date(future.expiry)}FUT"
    mark = served.mark()

    answer = served.client.placeorder(symbol=name, action="BUY", exchange="NFO",
                                      product="NRML", quantity=future.lot_size)

    assert answer["status"] == "success", answer
    assert served.sent(mark) == [(future.trading_symbol, "B", str(future.lot_size))]
    orders = served.client.orderbook()["data"]["orders"]
    assert [o["symbol"] for o in orders if o["orderid"] == answer["orderid"]] == [name]


def test_placesmartorder_trades_the_difference_and_nothing_once_there(served: Served) -> None:
    served.bridge.seed("ITC-EQ", 5, price="410")
    mark = served.mark()

    first = served.client.placesmartorder(symbol="ITC", action="SELL", exchange="NSE",
                                          quantity=5, position_size=-2)
    again = served.client.placesmartorder(symbol="ITC", action="SELL", exchange="NSE",
                                          quantity=5, position_size=-2)

    assert first["status"] == "success" and first["orderid"], first
    assert served.sent(mark) == [("ITC-EQ", "S", "7")]
    assert again["status"] == "success" and "orderid" not in again
    assert "nothing sent" in again["message"]
    assert served.client.openposition(symbol="ITC", exchange="NSE", product="MIS") == {
        "status": "success", "quantity": "-2"}


def test_basketorder_sends_buys_first_and_answers_each_order(served: Served) -> None:
    mark = served.mark()

    answer = served.client.basketorder(strategy="pairs", orders=[
        {"symbol": "HDFCBANK", "exchange": "NSE", "action": "SELL", "quantity": 1,
         "pricetype": "MARKET", "product": "MIS"},
        {"symbol": "INFY", "exchange": "NSE", "action": "BUY", "quantity": 2,
         "pricetype": "MARKET", "product": "MIS"},
    ])

    assert answer["status"] == "success", answer
    assert served.sent(mark) == [("INFY-EQ", "B", "2"), ("HDFCBANK-EQ", "S", "1")]
    assert [(r["symbol"], r["status"]) for r in answer["results"]] == [
        ("HDFCBANK", "success"), ("INFY", "success")]
    for result in answer["results"]:
        assert served.booked(result["orderid"])["trdSym"] == f"{result['symbol']}-EQ"


def test_splitorder_sends_slices_and_answers_each(served: Served) -> None:
    mark = served.mark()

    answer = served.client.splitorder(symbol="YESBANK", action="BUY", exchange="NSE",
                                      quantity=105, splitsize=20)

    assert answer["status"] == "success", answer
    assert served.sent(mark) == [("YESBANK-EQ", "B", q) for q in
                                 ("20", "20", "20", "20", "20", "5")]
    assert answer["split_size"] == 20 and answer["total_quantity"] == 105
    assert [(r["order_num"], r["quantity"], r["status"]) for r in answer["results"]] == [
        (1, 20, "success"), (2, 20, "success"), (3, 20, "success"), (4, 20, "success"),
        (5, 20, "success"), (6, 5, "success")]
    assert len({r["orderid"] for r in answer["results"]}) == 6


def test_modifyorder_and_cancelorder_change_the_order_at_kotak(served: Served) -> None:
    placed = served.client.placeorder(symbol="TCS", action="BUY", exchange="NSE",
                                      price_type="LIMIT", price="2800", quantity=1)
    assert placed["status"] == "success", placed
    order_id = placed["orderid"]
    assert served.client.orderstatus(order_id=order_id)["data"]["order_status"] == "open"

    changed = served.client.modifyorder(order_id=order_id, symbol="TCS", action="BUY",
                                        exchange="NSE", price_type="LIMIT", product="MIS",
                                        quantity=2, price="2900.03")

    assert changed == {"status": "success", "orderid": order_id}
    row = served.booked(order_id)
    assert Decimal(row["prc"]) == Decimal("2900.05") and int(row["qty"]) == 2  # tick 0.05
    cancelled = served.client.cancelorder(order_id=order_id)
    assert cancelled == {"status": "success", "orderid": order_id}
    assert served.booked(order_id)["ordSt"] == "cancelled"
    status = served.client.orderstatus(order_id=order_id)["data"]
    assert (status["order_status"], status["quantity"], status["price"]) == (
        "cancelled", "2", 2900.05)
    again = served.client.cancelorder(order_id=order_id)
    assert again["status"] == "success" and "already cancelled" in again["message"]


def test_modifyorder_cannot_move_an_order_to_another_contract(served: Served) -> None:
    placed = served.client.placeorder(symbol="LT", action="BUY", exchange="NSE",
                                      price_type="LIMIT", price="3500", quantity=1)
    assert placed["status"] == "success", placed

    answer = served.client.modifyorder(order_id=placed["orderid"], symbol="SBIN",
                                       action="BUY", exchange="NSE", price_type="LIMIT",
                                       product="MIS", quantity=1, price="800")

    assert answer["status"] == "error" and answer["code"] == 422
    assert "cannot change the contract" in body_of(answer)["message"]
    assert Decimal(served.booked(placed["orderid"])["prc"]) == Decimal(3500)
    served.client.cancelorder(order_id=placed["orderid"])


def test_cancelallorder_cancels_every_working_order(serve: Any) -> None:
    served: Served = serve()
    ids = [served.client.placeorder(symbol=symbol, action="BUY", exchange="NSE",
                                    price_type="LIMIT", price=price, quantity=1)["orderid"]
           for symbol, price in (("SBIN", "700"), ("INFY", "1300"))]
    served.client.placeorder(symbol="ITC", action="BUY", exchange="NSE", quantity=1)

    answer = served.client.cancelallorder(strategy="Python")

    assert answer["status"] == "success", answer
    assert sorted(answer["canceled_orders"]) == sorted(ids)
    assert answer["failed_cancellations"] == []
    assert {served.booked(i)["ordSt"] for i in ids} == {"cancelled"}
    nothing = served.client.cancelallorder()
    assert nothing["status"] == "success" and nothing["canceled_orders"] == []


def test_closeposition_flattens_every_open_position(serve: Any) -> None:
    served: Served = serve()
    served.bridge.seed("SBIN-EQ", 10, price="850")
    served.bridge.seed("INFY-EQ", -4, price="1550")
    mark = served.mark()

    answer = served.client.closeposition(strategy="Python")

    assert answer["status"] == "success", answer
    assert sorted(served.sent(mark)) == [("INFY-EQ", "B", "4"), ("SBIN-EQ", "S", "10")]
    assert served.bridge.net("SBIN-EQ") == 0 and served.bridge.net("INFY-EQ") == 0
    assert sorted((r["symbol"], r["quantity"], r["status"]) for r in answer["results"]) == [
        ("INFY", -4, "success"), ("SBIN", 10, "success")]
    assert served.client.closeposition() == {"status": "success",
                                             "message": "No open positions to close"}


# --- options (the contract is picked by the order service: bridge/orders/options.py) ------


def test_optionsorder_picks_the_contract_and_names_it(served: Served) -> None:
    mark = served.mark()

    answer = served.client.optionsorder(strategy="opt", underlying="NIFTY",
                                        exchange="NSE_INDEX", offset="ATM", option_type="CE",
                                        action="BUY", quantity=65, product="NRML")

    assert answer["status"] == "success", answer
    ((symbol, side, quantity),) = served.sent(mark)
    option = served.bridge.services.instruments.current().get(Exchange.NFO, symbol)
    assert option is not None and option.expiry is not None and option.strike is not None
    assert (option.symbol, option.option_type, side, quantity) == ("NIFTY", "CE", "B", "65")
    assert option.strike == 26000  # the sandbox's NIFTY stands at 26000
    assert answer["symbol"] == f"NIFTY{openalgo_date(option.expiry)}26000CE"
    assert (answer["exchange"], answer["offset"], answer["option_type"]) == ("NFO", "ATM",
                                                                             "CE")
    assert answer["underlying"] == "NIFTY" and answer["underlying_ltp"] == 26000.0


def test_optionsmultiorder_sends_buy_legs_first_and_answers_each_leg(served: Served) -> None:
    mark = served.mark()

    answer = served.client.optionsmultiorder(
        strategy="Iron Condor", underlying="NIFTY", exchange="NSE_INDEX", legs=[
            {"offset": "OTM1", "option_type": "CE", "action": "SELL", "quantity": 65},
            {"offset": "OTM1", "option_type": "PE", "action": "SELL", "quantity": 65},
            {"offset": "OTM2", "option_type": "CE", "action": "BUY", "quantity": 65},
            {"offset": "OTM2", "option_type": "PE", "action": "BUY", "quantity": 65}])

    assert answer["status"] == "success", answer
    index = served.bridge.services.instruments.current()
    sent = [(index.get(Exchange.NFO, ts), side) for ts, side, _ in served.sent(mark)]
    assert [(o.strike, o.option_type, side) for o, side in sent if o is not None] == [
        (Decimal(26100), "CE", "B"), (Decimal(25900), "PE", "B"),
        (Decimal(26050), "CE", "S"), (Decimal(25950), "PE", "S")]
    assert [(r["leg"], r["action"], r["offset"], r["status"]) for r in answer["results"]] == [
        (1, "SELL", "OTM1", "success"), (2, "SELL", "OTM1", "success"),
        (3, "BUY", "OTM2", "success"), (4, "BUY", "OTM2", "success")]
    assert answer["results"][0]["symbol"].endswith("26050CE")
    assert answer["underlying"] == "NIFTY" and answer["underlying_ltp"] == 26000.0


def test_optionsymbol_names_what_an_order_would_trade_and_places_nothing(
        served: Served) -> None:
    mark = served.mark()

    answer = served.client.optionsymbol(underlying="NIFTY", exchange="NSE_INDEX",
                                        offset="ITM2", option_type="PE")

    assert answer["status"] == "success", answer
    assert answer["symbol"].startswith("NIFTY") and answer["symbol"].endswith("26100PE")
    assert (answer["exchange"], answer["lotsize"], answer["underlying_ltp"]) == (
        "NFO", 65, 26000.0)
    assert served.sent(mark) == []


# --- reads --------------------------------------------------------------------------------


def test_books_answer_in_openalgo_fields(served: Served) -> None:
    placed = served.client.placeorder(symbol="BHARTIARTL", action="BUY", exchange="NSE",
                                      quantity=2)
    assert placed["status"] == "success", placed

    book = served.client.orderbook()["data"]
    (order,) = [o for o in book["orders"] if o["orderid"] == placed["orderid"]]
    assert (order["symbol"], order["action"], order["quantity"], order["order_status"],
            order["exchange"], order["product"]) == ("BHARTIARTL", "BUY", "2", "complete",
                                                     "NSE", "MIS")
    assert set(book["statistics"]) == {"total_buy_orders", "total_sell_orders",
                                       "total_completed_orders", "total_open_orders",
                                       "total_rejected_orders"}
    trades = [t for t in served.client.tradebook()["data"] if t["orderid"] == placed["orderid"]]
    assert [(t["symbol"], t["quantity"], t["action"]) for t in trades] == [
        ("BHARTIARTL", 2, "BUY")]
    assert trades[0]["trade_value"] == trades[0]["average_price"] * 2
    (position,) = [p for p in served.client.positionbook()["data"]
                   if p["symbol"] == "BHARTIARTL"]
    assert position["quantity"] == "2" and position["product"] == "MIS"
    assert Decimal(position["ltp"]) > 0 and Decimal(position["average_price"]) > 0
    status = served.client.orderstatus(order_id=placed["orderid"])
    assert status["data"]["order_status"] == "complete"
    assert status["data"]["symbol"] == "BHARTIARTL"
    # A queued order is followed by the alert_id its answer gave, until Kotak numbers it.
    followed = served.client.orderstatus(order_id=placed["alert_id"])["data"]
    assert (followed["orderid"], followed["alert_id"]) == (placed["orderid"],
                                                           placed["alert_id"])
    unknown = served.client.orderstatus(order_id="999999999")
    assert unknown["code"] == 404 and "not in today's order book" in unknown["message"]


def test_funds_holdings_and_quotes(served: Served) -> None:
    funds = served.client.funds()
    assert funds["status"] == "success"
    assert set(funds["data"]) == {"availablecash", "collateral", "m2mrealized",
                                  "m2munrealized", "utiliseddebits"}
    assert Decimal(funds["data"]["availablecash"]) > 0
    holdings = served.client.holdings()
    assert holdings["status"] == "success" and holdings["data"]["holdings"] == []
    assert served.client.quotes(symbol="RELIANCE", exchange="NSE")["data"]["ltp"] == 1450.0
    assert served.client.quotes(symbol="NIFTY", exchange="NSE_INDEX")["data"]["ltp"] == 26000.0
    unknown = served.client.quotes(symbol="NOSUCHSTOCK", exchange="NSE")
    assert unknown["status"] == "error" and unknown["code"] == 422


def test_expiry_lists_the_listed_expiries(served: Served) -> None:
    index = served.bridge.services.instruments.current()
    futures = [f.expiry for f in index.futures(Exchange.NFO, "NIFTY") if f.expiry]

    answer = served.client.expiry(symbol="NIFTY", exchange="NFO", instrumenttype="futures")
    options = served.client.expiry(symbol="NIFTY", exchange="NFO", instrumenttype="options")

    assert answer["status"] == "success"
    assert answer["data"] == [f"{d.day:02d}-{MONTHS[d.month - 1]}-{d.year % 100:02d}"
                              for d in futures]
    assert options["status"] == "success" and len(options["data"]) > len(answer["data"])
    assert set(answer["data"]) <= set(options["data"])  # the monthly options expire with them


def test_ping_proves_the_key(served: Served) -> None:
    http, answer = served.post("ping", {"apikey": KEY})

    assert http == 200
    assert answer == {"status": "success", "data": {"broker": "kotak", "message": "pong",
                                                     "mode": "live", "account": "default"}}


# --- refusals, rejections and repeats -----------------------------------------------------


def test_a_kotak_rejection_is_an_error_with_kotaks_reason(served: Served) -> None:
    served.bridge.sandbox.add_rule(Rule(action="reject", reason="insufficient_funds",
                                        symbol="AXISBANK"))
    mark = served.mark()

    answer = served.client.placeorder(symbol="AXISBANK", action="BUY", exchange="NSE",
                                      quantity=1)

    assert answer["status"] == "error" and answer["code"] == 502, answer
    bridge_said = body_of(answer)
    assert "margin" in bridge_said["message"].lower(), bridge_said
    assert bridge_said["code"] == "broker_rejected"
    assert served.sent(mark) == [("AXISBANK-EQ", "B", "1")]
    assert served.bridge.journaled(bridge_said["alert_id"]).status is SignalStatus.REJECTED


def test_a_rule_refusal_is_a_409_and_nothing_reaches_kotak(served: Served) -> None:
    desk = served.bridge.services.desk
    desk.set_kill_switch(True, "test")
    mark = served.mark()
    try:
        answer = served.client.placeorder(symbol="KOTAKBANK", action="BUY", exchange="NSE",
                                          quantity=1)
    finally:
        desk.set_kill_switch(False, "test")

    assert answer["status"] == "error" and answer["code"] == 409, answer
    assert "kill switch" in body_of(answer)["message"]
    assert served.sent(mark) == []


def test_an_invalid_call_names_the_field(served: Served) -> None:
    typo = served.client.placeorder(symbol="SBIN", action="BUY", exchange="NSE", quantity=1,
                                    pricetyp="LIMIT")
    lots = served.client.placeorder(symbol=nifty_future(served).trading_symbol, action="BUY",
                                    exchange="NFO", product="NRML", quantity=1)

    assert typo["code"] == 422 and "pricetyp" in body_of(typo)["details"]
    assert lots["code"] == 422 and "lot size" in body_of(lots)["message"]


def test_a_repeated_alert_id_is_answered_without_a_second_order(served: Served) -> None:
    mark = served.mark()

    first = served.client.placeorder(symbol="ICICIBANK", action="BUY", exchange="NSE",
                                     quantity=1, alert_id="api-once-1")
    again = served.client.placeorder(symbol="ICICIBANK", action="BUY", exchange="NSE",
                                     quantity=1, alert_id="api-once-1")

    assert served.sent(mark) == [("ICICIBANK-EQ", "B", "1")]
    assert first["status"] == again["status"] == "success"
    assert again["orderid"] == first["orderid"] and "repeat" in again["message"]


def test_an_idempotency_key_header_makes_a_repeat_an_answer(served: Served) -> None:
    mark = served.mark()
    body = {"apikey": KEY, "symbol": "LT", "action": "SELL", "exchange": "NSE",
            "quantity": "1", "strategy": "keyed"}

    first = served.post("placeorder", body, {"Idempotency-Key": "key-lt-1"})
    again = served.post("placeorder", body, {"Idempotency-Key": "key-lt-1"})
    other = served.post("placeorder", body, {"Idempotency-Key": "key-lt-2"})

    assert first[0] == again[0] == other[0] == 200
    assert again[1]["orderid"] == first[1]["orderid"] != other[1]["orderid"]
    assert served.sent(mark) == [("LT-EQ", "S", "1"), ("LT-EQ", "S", "1")]


def test_without_a_key_each_call_is_a_new_order(served: Served) -> None:
    mark = served.mark()

    for _ in range(2):
        assert served.client.placeorder(symbol="MARUTI", action="BUY", exchange="NSE",
                                        quantity=1)["status"] == "success"

    assert served.sent(mark) == [("MARUTI-EQ", "B", "1"), ("MARUTI-EQ", "B", "1")]


def test_a_burst_past_the_rate_limit_is_answered_once_kotak_has_it(serve: Any) -> None:
    served: Served = serve(KOTAK_ORDER_RATE="1")

    def place(number: int) -> dict[str, Any]:
        answer: dict[str, Any] = served.client.placeorder(
            symbol="SBIN", action="BUY", exchange="NSE", quantity=1, alert_id=f"burst-{number}")
        return answer

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(place, range(2)))

    # One order a second: the second waited for its turn behind the rate limit, and is still
    # answered "success" with Kotak's order number rather than "queued".
    assert [a["status"] for a in answers] == ["success"] * 2, answers
    assert len({a["orderid"] for a in answers}) == 2
    assert served.sent() == [("SBIN-EQ", "B", "1")] * 2


# --- the door -----------------------------------------------------------------------------


def test_a_wrong_or_missing_key_is_refused_and_repeated_wrong_keys_block(serve: Any) -> None:
    served: Served = serve(AUTH_FAILURE_LIMIT="3")
    wrong = type(served.client)(api_key="not-the-key-0123456789", host=served.url)
    mark = served.mark()

    refused = wrong.placeorder(symbol="SBIN", action="BUY", exchange="NSE", quantity=1)
    missing = served.post("funds", {})
    wrong.funds()

    assert refused["code"] == 401 and body_of(refused)["message"] == "wrong apikey"
    assert missing[0] == 401 and "no apikey" in missing[1]["message"]
    assert missing[1]["status"] == "error"
    blocked = served.client.funds()
    assert blocked["code"] == 429 and "blocked" in body_of(blocked)["message"]
    assert served.sent(mark) == []
    since = served.bridge.services.clock.now() - timedelta(hours=1)
    refusals = served.bridge.services.doors.refusals_since(since)
    assert {r.source for r in refusals} == {"api"}


def test_the_api_is_off_without_a_key(serve: Any) -> None:
    served: Served = serve(API_KEY="")

    http, answer = served.post("placeorder", {"apikey": "", "symbol": "SBIN", "action": "BUY",
                                              "exchange": "NSE", "quantity": "1"})

    assert http == 403 and answer["status"] == "error"
    assert "API_KEY" in answer["message"] and "off" in answer["message"]
    assert served.sent() == []


def test_unknown_calls_and_methods_answer_in_openalgo_shape(served: Served) -> None:
    missing = served.post("placebracketorder", {"apikey": KEY})
    got = httpx.get(f"{served.url}/api/v1/orderbook", timeout=10)
    broken = served.post("orderbook", "{not json")

    assert missing[0] == 404 and missing[1]["status"] == "error"
    assert "placeorder" in missing[1]["message"]
    assert got.status_code == 405 and got.json()["status"] == "error"
    assert broken[0] == 422 and "not valid JSON" in broken[1]["message"]
