"""Options by strike offset: from "the ATM call of this week's NIFTY expiry" to one contract.

A signal names an option by its place in the chain (``underlying``, ``offset``,
``option_type``, ``expiry_date``, ``strike_int``; DESIGN.md section 5). :class:`OptionPicker`
reads the underlying's last price from Kotak and :func:`choose` picks the contract from the
day's scrip master. :func:`choose` is pure (index, request, price, day in, contract out), so
the rules below are tested as a table and the pick costs microseconds; the broker call is
the picker's only slow step.

The rules, as a trader would check them against the chart:

* Underlying. An index with listed options (``NIFTY``, ``BANKNIFTY``, ``FINNIFTY``,
  ``MIDCPNIFTY``, ``NIFTYNXT50``, ``SENSEX``, ``BANKEX``; the exchange hint ``NSE_INDEX``,
  ``BSE_INDEX``, ``NSE``, ``BSE`` or none) is priced from Kotak's index quote (``Nifty 50`` ...).
  A share (``RELIANCE``, ``NSE:RELIANCE``) from its cash quote, NSE unless the hint says BSE.
  A future (``NIFTY26DECFUT``, ``NIFTY1!``, OpenAlgo's ``NIFTY30DEC25FUT``) from its own
  price, the options being those of the future's underlying on the future's exchange.
* Expiry. Only listed expiries on or after today count, and today's counts all day: at 09:30
  on expiry day a trader asking for this week's option means today's. The one exception is an
  after-market order placed once the option's exchange has closed for the day (or on a day it
  does not trade): it reaches the exchange next session, after today's contracts expired, so
  the expiries from tomorrow count. Forms:

  - empty: the nearest listed expiry; for a future underlying, the option expiry that settles
    with it: the last listed expiry in the future's month (NFO's monthly option expires with
    the future; MCX's option on a future expires a few days before it, in the same month),
    else the first listed after the future;
  - ``current_week``: the nearest listed expiry (an underlying with only monthly expiries has
    its monthly here); ``next_week``: the listed expiry after it (next month's on a
    monthly-only underlying);
  - ``current_month``: the last listed expiry in the month of the nearest expiry (the monthly
    contract; after this month's monthly expired, that is next month's); ``next_month``: the
    last listed expiry of the month after that;
  - a date: ``29DEC26``, ``29-DEC-2026`` or ``2026-12-29``, any case; it must be listed.
    A past date is refused as expired, an unlisted one with the nearest listed expiries.

  A future underlying does not restrict the explicit forms: the trader named the expiry.
* Strikes. ATM is the listed strike nearest the underlying's last price, a tie going to the
  lower strike. ``ITMn``/``OTMn`` count listed strikes away from ATM (ITM below ATM for CE,
  above it for PE; OTM the opposite), so where the exchange lists strikes unevenly (50 apart
  near the money, 100 further out) the offset follows what can be traded. The strike step
  reported is the smaller gap between ATM and its listed neighbours. With ``strike_int`` the
  trader sets the grid: ATM is the price rounded to a multiple of it (a tie to the lower), the
  offset moves by whole steps, and the resulting strike must be listed. A price more than one
  step outside the listed strikes is refused rather than pinned to the chain's end: it means
  a wrong quote or a stale scrip master, and either would buy a contract nobody meant.
* Quote. No quote, a zero price (nothing traded yet) or a stale quote refuses the signal
  (422 naming ``underlying``; nothing is sent, so it may be sent again). Stale: while the
  quoted instrument's exchange is in session, Kotak's update time (``lstup_time``) more than
  60 s old; in the first 60 s after the open any update from today counts, since the first
  ticks take a moment. Outside the session (and for every after-market order) the last price
  stands: the trading-window rules refuse a signal that may not trade then, and an after-market
  order is meant to be placed from the last close; the picker logs that it used it. A quote
  without an update time is taken as it is: Kotak does not promise the field.
* Errors are :class:`~bridge.errors.InvalidSignal` naming the signal's field (``underlying``,
  ``offset``, ``option_type``, ``expiry_date``, ``strike_int``) with what was wrong, what is
  accepted, and what to send instead. A broker failure while quoting names ``underlying`` too,
  with the code ``quote_unavailable``.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from typing import NoReturn, Protocol

from bridge.clock import IST, Clock
from bridge.domain import (
    Exchange,
    Instrument,
    InstrumentKind,
    OptionRequest,
    OptionType,
    Resolution,
)
from bridge.errors import InvalidSignal
from bridge.kotak.client import KotakClient
from bridge.kotak.errors import KotakError
from bridge.kotak.instruments import (
    INDEX_QUOTES,
    AmbiguousInstrument,
    InstrumentIndex,
    OptionChain,
    StrikeLadder,
    Underlying,
    UnknownInstrument,
)

log = logging.getLogger(__name__)

MAX_OFFSET = 50
#: while the exchange is in session, an older quote is stale
MAX_QUOTE_AGE = timedelta(seconds=60)
#: after the open, the time in which any quote from today counts
OPEN_GRACE = timedelta(seconds=60)
#: how long :meth:`OptionPicker.pick` waits for the quote when the caller sets no deadline
QUOTE_WAIT_S = 1.0

_OFFSET = re.compile(r"^(ATM|ITM|OTM)(\d{0,2})$")
_DAY_MONTH_YEAR = re.compile(r"^(\d{1,2})-?([A-Z]{3})-?(\d{2}|\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_INDEX_HINTS = {"NSE_INDEX": Exchange.NSE, "BSE_INDEX": Exchange.BSE}
_ACCEPTED_UNDERLYINGS = (f"an index ({', '.join(INDEX_QUOTES)}), a share with listed options "
                         "(RELIANCE, NSE:RELIANCE) or a future (NIFTY26DECFUT, NIFTY1!)")
_EXPIRY_FORMS = "DDMMMYY (29DEC26), current_week, next_week, current_month or next_month"


class ExpiryName(StrEnum):
    """An expiry named relative to the listed ones (module docstring); NEAREST when empty."""

    NEAREST = ""
    CURRENT_WEEK = "current_week"
    NEXT_WEEK = "next_week"
    CURRENT_MONTH = "current_month"
    NEXT_MONTH = "next_month"


@dataclass(frozen=True, slots=True)
class Quote:
    """The underlying's last price and when Kotak last updated it (None: not said)."""

    price: Decimal
    updated_at: datetime | None = None


#: asks the broker for one instrument's quote, by a ``time.monotonic()`` deadline; None when
#: the broker sends none
QuoteSource = Callable[[Instrument, float], Quote | None]


class Sessions(Protocol):
    """The trading hours the picker needs (:class:`bridge.schedule.calendar.TradingCalendar`)."""

    def hours(self, exchange: Exchange, day: date) -> tuple[time_of_day, time_of_day] | None:
        ...


# --- the signal's words --------------------------------------------------------------------


def parse_offset(text: str) -> int:
    """Strikes away from ATM: 0 for ``ATM``, +n for ``OTMn``, -n for ``ITMn`` (n 1-50, any
    case), so a larger number is always further out of the money.

    :raises InvalidSignal: naming ``offset``.
    """
    found = _OFFSET.match(text.strip().upper())
    if found is not None:
        kind, digits = found.groups()
        if kind == "ATM" and not digits:
            return 0
        if kind != "ATM" and digits and 1 <= int(digits) <= MAX_OFFSET:
            return int(digits) if kind == "OTM" else -int(digits)
    raise _invalid("offset", f"{text.strip()[:20]!r} is not a strike offset: send ATM, ITM1 to "
                             f"ITM{MAX_OFFSET} or OTM1 to OTM{MAX_OFFSET} (OTM2 = two strikes "
                             "out of the money)")


def offset_text(offset: int) -> str:
    """The offset as the bridge writes it back: ``ATM``, ``OTM2``, ``ITM3``."""
    if offset == 0:
        return "ATM"
    return f"OTM{offset}" if offset > 0 else f"ITM{-offset}"


def parse_expiry(text: str) -> date | ExpiryName:
    """The expiry a signal asks for: a date, or one of the names (empty: the nearest).

    Accepted, any case: ``29DEC26``, ``29DEC2026``, ``29-DEC-26``, ``29-DEC-2026``,
    ``2026-12-29``; ``current_week``, ``next_week``, ``current_month``, ``next_month`` (also
    with ``-`` or a space for ``_``). Whether the date is listed is :func:`choose`'s question.

    :raises InvalidSignal: naming ``expiry_date``.
    """
    cleaned = text.strip()
    name = cleaned.lower().replace("-", "_").replace(" ", "_")
    if name in ExpiryName._value2member_map_:
        return ExpiryName(name)
    upper = cleaned.upper()
    try:
        spelled = _DAY_MONTH_YEAR.match(upper)
        if spelled is not None and spelled.group(2) in _MONTHS:
            day, month, year = spelled.groups()
            return date(int(year) if len(year) == 4 else 2000 + int(year),
                        _MONTHS.index(month) + 1, int(day))
        iso = _ISO_DATE.match(upper)
        if iso is not None:
            return date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
    except ValueError:
        raise _invalid("expiry_date", f"{cleaned[:20]!r} is not a calendar date: send "
                                      f"{_EXPIRY_FORMS}") from None
    raise _invalid("expiry_date", f"{cleaned[:20]!r} is not an expiry: send {_EXPIRY_FORMS}, "
                                  "or leave it out for the nearest listed expiry")


def find_underlying(index: InstrumentIndex, request: OptionRequest,
                    on: date | None = None) -> Underlying:
    """What ``request`` is priced from and where its options are listed.

    :raises InvalidSignal: naming ``underlying``.
    """
    hint = request.exchange.strip().upper()
    exchange = _INDEX_HINTS.get(hint)
    if exchange is None and hint:
        if hint not in Exchange._value2member_map_:
            raise _invalid("exchange", f"{hint!r} is not an exchange of an underlying: send "
                                       "NSE_INDEX, BSE_INDEX, NSE, BSE, NFO, BFO or MCX")
        exchange = Exchange(hint)
    try:
        return index.underlying(request.underlying, exchange, on)
    except UnknownInstrument as exc:
        raise _invalid("underlying", f"{request.underlying!r} cannot be priced: {exc.hint}. "
                                     f"Send {_ACCEPTED_UNDERLYINGS}") from exc
    except AmbiguousInstrument as exc:
        raise _invalid("underlying", f"{exc}; accepted: {_ACCEPTED_UNDERLYINGS}") from exc


# --- the pick, given a price ---------------------------------------------------------------


def choose(index: InstrumentIndex, request: OptionRequest, underlying_price: Decimal,
           today: date, *, underlying: Underlying | None = None,
           first_day: date | None = None) -> tuple[Instrument, Resolution]:
    """Pick the contract ``request`` means when the underlying trades at ``underlying_price``
    on ``today`` (module docstring: the rules).

    :param underlying: already found by :func:`find_underlying` (found here when None).
    :param first_day: the first day whose expiries count (``today`` unless an after-market
        order goes out after today's close).
    :raises InvalidSignal: naming the field at fault.
    """
    request = _typed(request)
    offset = parse_offset(request.offset)
    wanted = parse_expiry(request.expiry)
    found = underlying or find_underlying(index, request, today)
    chain = option_chain(index, found, request.option_type, today)
    if underlying_price <= 0:
        raise _invalid("underlying", f"{_quoted(found)} has no price to pick a strike from "
                                     f"(Kotak says {underlying_price})")
    expiry = _expiry(chain, wanted, today, first_day or today, found)
    ladder = chain.ladders[expiry]
    if request.strike_int is None:
        step, atm, target = _listed_pick(ladder, underlying_price, offset, request, found)
    else:
        step, atm, target = _grid_pick(ladder, underlying_price, offset, request, found)
    contract = ladder.contracts[target]
    strike = ladder.strikes[target]
    return contract, Resolution(
        underlying=_label(request, found), quoted=_quoted(found),
        underlying_price=_plain(underlying_price), strike_step=_plain(step),
        atm_strike=_plain(atm), offset=offset_text(offset), option_type=request.option_type,
        expiry=expiry, strike=_plain(strike), exchange=contract.exchange,
        trading_symbol=contract.trading_symbol)


def option_chain(index: InstrumentIndex, underlying: Underlying, option_type: OptionType,
                 today: date) -> OptionChain:
    """The underlying's unexpired chain of ``option_type``.

    :raises InvalidSignal: naming ``underlying`` when nothing unexpired is listed.
    """
    chain = index.option_chain(underlying.derivatives, underlying.name, option_type.value)
    if chain is not None and chain.expiries_from(today):
        return chain
    name, market = underlying.name, underlying.derivatives.value
    elsewhere = [e.value for e in index.option_exchanges(underlying.name)
                 if e is not underlying.derivatives]
    if chain is not None:
        problem = (f"every {name} {option_type.value} option listed on {market} has expired in "
                   "the scrip master in use: refresh it (python -m bridge instruments refresh)")
    elif elsewhere:
        problem = (f"{name} has no options listed on {market}; they are listed on "
                   f"{'/'.join(elsewhere)}: send that exchange with the signal")
    else:
        problem = (f"{name} has no options listed on {market} in today's scrip master; "
                   "options by offset need an underlying with listed options, e.g. NIFTY or "
                   "RELIANCE")
    raise _invalid("underlying", problem)


def _expiry(chain: OptionChain, wanted: date | ExpiryName, today: date, first_day: date,
            underlying: Underlying) -> date:
    listed = chain.expiries_from(first_day)
    what = f"{underlying.name} {chain.option_type}"
    if isinstance(wanted, date):
        if wanted < today:
            raise _invalid("expiry_date", f"{_ddmmmyy(wanted)} has expired; {what} lists "
                                          f"{_some(listed)}")
        if wanted < first_day:
            raise _invalid("expiry_date", f"{_ddmmmyy(wanted)} expires today and the exchange "
                                          "has closed: an after-market order would reach it "
                                          f"after it expired; {what} next lists {_some(listed)}")
        if wanted not in chain.ladders:
            _unlisted(wanted, listed, what)
        return wanted
    if not listed:
        raise _invalid("expiry_date", f"{what} lists no expiry after today that an after-market "
                                      "order could reach")
    if wanted is ExpiryName.NEAREST:
        future = underlying.quote
        if future.kind is InstrumentKind.FUTURE and future.expiry is not None:
            return _settling_with(future, listed, what)
        return listed[0]
    if wanted is ExpiryName.CURRENT_WEEK:
        return listed[0]
    if wanted is ExpiryName.NEXT_WEEK:
        if len(listed) < 2:
            raise _invalid("expiry_date", f"{what} lists only {_ddmmmyy(listed[0])}: there is "
                                          "no next_week; send current_week")
        return listed[1]
    month = (listed[0].year, listed[0].month)
    if wanted is ExpiryName.NEXT_MONTH:
        month = (month[0] + month[1] // 12, month[1] % 12 + 1)
    in_month = [day for day in listed if (day.year, day.month) == month]
    if not in_month:
        raise _invalid("expiry_date", f"{what} lists no expiry in "
                                      f"{_MONTHS[month[1] - 1]} {month[0]} (listed: "
                                      f"{_some(listed)}); send one as DDMMMYY")
    return in_month[-1]


def _settling_with(future: Instrument, listed: Sequence[date], what: str) -> date:
    assert future.expiry is not None
    month = (future.expiry.year, future.expiry.month)
    same_month = [day for day in listed if (day.year, day.month) == month]
    if same_month:
        return same_month[-1]
    later = [day for day in listed if day > future.expiry]
    if later:
        return later[0]
    raise _invalid("expiry_date", f"no {what} expiry goes with {future.trading_symbol} "
                                  f"(listed: {_some(listed)}); send one as DDMMMYY")


def _unlisted(wanted: date, listed: Sequence[date], what: str) -> NoReturn:
    nearest = sorted(sorted(listed, key=lambda day: (abs((day - wanted).days), day))[:3])
    if not nearest:
        raise _invalid("expiry_date", f"{what} has no expiry on {_ddmmmyy(wanted)}, nor any "
                                      "later one an order could reach")
    raise _invalid("expiry_date", f"{what} has no expiry on {_ddmmmyy(wanted)}; the nearest "
                                  f"listed are {', '.join(_ddmmmyy(d) for d in nearest)}: send "
                                  "one of them, or current_week, next_week, current_month or "
                                  "next_month")


def _listed_pick(ladder: StrikeLadder, price: Decimal, offset: int, request: OptionRequest,
                 underlying: Underlying) -> tuple[Decimal, Decimal, int]:
    """(step, ATM strike, position of the contract) walking the listed strikes."""
    strikes = ladder.strikes
    at = bisect.bisect_left(strikes, price)
    if at == 0:
        atm = 0
    elif at == len(strikes):
        atm = len(strikes) - 1
    else:
        # A tie goes to the lower strike (DESIGN.md section 5).
        atm = at - 1 if price - strikes[at - 1] <= strikes[at] - price else at
    gaps = [strikes[i + 1] - strikes[i] for i in (atm - 1, atm) if 0 <= i < len(strikes) - 1]
    step = min(gaps) if gaps else Decimal(0)
    _check_inside(ladder, price, step, underlying, request)
    target = atm + _direction(request.option_type, offset) * abs(offset)
    if not 0 <= target < len(strikes):
        below, above = atm, len(strikes) - 1 - atm
        _past_the_end(ladder, request, underlying, strikes[atm], offset, below, above,
                      "listed strikes")
    return step, strikes[atm], target


def _grid_pick(ladder: StrikeLadder, price: Decimal, offset: int, request: OptionRequest,
               underlying: Underlying) -> tuple[Decimal, Decimal, int]:
    """(step, ATM strike, position of the contract) on the trader's ``strike_int`` grid."""
    step = request.strike_int
    assert step is not None
    if step <= 0:
        raise _invalid("strike_int", f"must be a positive strike step, not {step}; leave it "
                                     "out for the step the exchange lists")
    strikes = ladder.strikes
    lower = (price / step).to_integral_value(rounding=ROUND_FLOOR) * step
    atm = lower if price - lower <= lower + step - price else lower + step
    _check_inside(ladder, price, step, underlying, request)
    strike = atm + _direction(request.option_type, offset) * abs(offset) * step
    position = ladder.position(strike)
    if position is not None:
        return step, atm, position
    if strike < strikes[0] or strike > strikes[-1]:
        below = int((atm - strikes[0]) / step) if atm >= strikes[0] else 0
        above = int((strikes[-1] - atm) / step) if atm <= strikes[-1] else 0
        _past_the_end(ladder, request, underlying, atm, offset, below, above,
                      f"steps of {_plain(step)}")
    near = bisect.bisect_left(strikes, strike)
    around = strikes[max(0, near - 2):near + 2]
    listed_step = min((b - a for a, b in itertools.pairwise(around)),
                      default=Decimal(0))
    raise _invalid("strike_int", f"strike {_plain(strike)} ({offset_text(offset)} from ATM "
                                 f"{_plain(atm)} in steps of {_plain(step)}) is not listed for "
                                 f"{underlying.name} {_ddmmmyy(ladder.expiry)}: strikes near it "
                                 f"are {', '.join(str(_plain(s)) for s in around)}, every "
                                 f"{_plain(listed_step)}; send that strike_int or leave it out")


def _check_inside(ladder: StrikeLadder, price: Decimal, step: Decimal, underlying: Underlying,
                  request: OptionRequest) -> None:
    strikes = ladder.strikes
    if strikes[0] - step <= price <= strikes[-1] + step:
        return
    raise _invalid("underlying", f"{_quoted(underlying)} at {_plain(price)} is outside the "
                                 f"{underlying.name} {request.option_type.value} strikes listed "
                                 f"for {_ddmmmyy(ladder.expiry)} ({_plain(strikes[0])} to "
                                 f"{_plain(strikes[-1])}): the quote or the scrip master is "
                                 "wrong; nothing was picked")


def _past_the_end(ladder: StrikeLadder, request: OptionRequest, underlying: Underlying,
                  atm: Decimal, offset: int, below: int, above: int, unit: str) -> NoReturn:
    """Refuse an offset beyond the chain, saying how far it goes from this ATM."""
    calls = request.option_type is OptionType.CE
    deepest_itm, furthest_otm = (below, above) if calls else (above, below)
    reach = [f"ITM{deepest_itm}" if deepest_itm else "no ITM",
             f"OTM{furthest_otm}" if furthest_otm else "no OTM"]
    raise _invalid("offset", f"{offset_text(offset)} is past the end of the {underlying.name} "
                             f"{_ddmmmyy(ladder.expiry)} {request.option_type.value} chain: it "
                             f"lists {_plain(ladder.strikes[0])} to {_plain(ladder.strikes[-1])}, "
                             f"which from ATM {_plain(atm)} reaches {' and '.join(reach)} "
                             f"({unit}); send a smaller offset")


def _typed(request: OptionRequest) -> OptionRequest:
    """The request with its option type as :class:`OptionType` (a caller may pass "ce")."""
    kind: object = request.option_type
    if isinstance(kind, OptionType):
        return request
    text = str(kind).strip().upper()
    if text not in OptionType._value2member_map_:
        raise _invalid("option_type", f"{text[:20]!r} is not an option type: send CE (call) or "
                                      "PE (put)")
    return dataclasses.replace(request, option_type=OptionType(text))


def _direction(option_type: OptionType, offset: int) -> int:
    """+1 when the offset moves to higher strikes: OTM calls and ITM puts."""
    out_of_the_money = offset > 0
    return 1 if out_of_the_money == (option_type is OptionType.CE) else -1


# --- the picker: quote, then pick ----------------------------------------------------------


class OptionPicker:
    """Picks an option by offset from the underlying's live quote; what the order service
    calls (``pick`` fits :data:`bridge.orders.service.OptionPick`). Safe to share between
    threads: it keeps no state of its own."""

    def __init__(self, quote: QuoteSource, clock: Clock, calendar: Sessions) -> None:
        self._quote = quote
        self._clock = clock
        self._calendar = calendar

    def pick(self, index: InstrumentIndex, request: OptionRequest, amo: bool = False,
             deadline: float | None = None,
             seen: dict[Instrument, Quote] | None = None) -> tuple[Instrument, Resolution]:
        """Quote the underlying and pick the contract.

        Everything the signal can get wrong is checked before the broker is asked, so a
        mistyped offset costs no quote.

        :param amo: an after-market order: the last price stands, and after today's close
            today's expiries no longer count.
        :param deadline: ``time.monotonic()`` by which the quote must be in (default: 1 s).
        :param seen: quotes already read for this signal, by instrument, added to here: the
            legs of one signal are picked from one price of their underlying (one broker
            call, and strikes that stand in the intended relation to each other).
        :raises InvalidSignal: naming the field at fault; nothing was sent.
        """
        now = self._clock.now().astimezone(IST)
        today = now.date()
        request = _typed(request)
        parse_offset(request.offset)
        parse_expiry(request.expiry)
        underlying = find_underlying(index, request, today)
        option_chain(index, underlying, request.option_type, today)
        quote = seen.get(underlying.quote) if seen is not None else None
        if quote is None:
            quote = self._read(underlying, time.monotonic() + QUOTE_WAIT_S
                               if deadline is None else deadline)
            self._check(underlying, quote, now, amo)
            if seen is not None:
                seen[underlying.quote] = quote
        return choose(index, request, quote.price, today, underlying=underlying,
                      first_day=self._first_day(underlying.derivatives, now, amo))

    def _read(self, underlying: Underlying, deadline: float) -> Quote:
        try:
            quote = self._quote(underlying.quote, deadline)
        except KotakError as exc:
            raise InvalidSignal(
                f"could not read {_quoted(underlying)} from Kotak: {exc}",
                {"underlying": [f"Kotak did not quote {_quoted(underlying)} ({exc}); nothing "
                                "was sent: send the signal again"]},
                code="quote_unavailable") from exc
        if quote is None:
            raise _invalid("underlying", f"Kotak sent no price for {_quoted(underlying)}; "
                                         "nothing was sent: send the signal again, or name the "
                                         "contract by symbol")
        if quote.price <= 0:
            raise _invalid("underlying", f"Kotak quotes {_quoted(underlying)} at "
                                         f"{quote.price}: it has not traded, so there is no "
                                         "price to pick a strike from")
        return quote

    def _check(self, underlying: Underlying, quote: Quote, now: datetime, amo: bool) -> None:
        """Refuse a stale quote while the market is in session (module docstring)."""
        exchange = underlying.quote.exchange
        session = self._calendar.hours(exchange, now.date())
        opens = datetime.combine(now.date(), session[0], IST) if session else None
        closes = datetime.combine(now.date(), session[1], IST) if session else None
        if opens is None or closes is None or not opens <= now < closes:
            log.info("%s: using the last price %s (updated %s) while %s is closed",
                     _quoted(underlying), quote.price, _when(quote.updated_at), exchange.value)
            return
        if amo or quote.updated_at is None:
            return
        if now < opens + OPEN_GRACE:
            fresh = quote.updated_at.astimezone(IST).date() == now.date()
        else:
            fresh = now - quote.updated_at <= MAX_QUOTE_AGE
        if not fresh:
            raise _invalid("underlying", f"Kotak's price of {_quoted(underlying)} "
                                         f"({quote.price}) was last updated "
                                         f"{_when(quote.updated_at)}, more than "
                                         f"{int(MAX_QUOTE_AGE.total_seconds())} s ago while "
                                         f"{exchange.value} is open; nothing was sent: send the "
                                         "signal again when the quote is live")

    def _first_day(self, exchange: Exchange, now: datetime, amo: bool) -> date:
        if not amo:
            return now.date()
        session = self._calendar.hours(exchange, now.date())
        if session is None or now.time() >= session[1]:
            return now.date() + timedelta(days=1)
        return now.date()


def kotak_quotes(client: KotakClient) -> QuoteSource:
    """A :data:`QuoteSource` asking ``client`` (one quotes call, bounded by the deadline)."""

    def read(instrument: Instrument, deadline: float) -> Quote | None:
        found = client.quotes([instrument], deadline=deadline).get(
            (instrument.exchange, instrument.trading_symbol))
        return Quote(found.price, found.updated_at) if found is not None else None

    return read


# --- wording -------------------------------------------------------------------------------


def _invalid(field: str, problem: str) -> InvalidSignal:
    return InvalidSignal(f"{field}: {problem}", {field: [problem]})


def _label(request: OptionRequest, underlying: Underlying) -> str:
    """The underlying as the sender named it, normalised: the future as written, else the
    name its options carry (an index's chart name becomes NIFTY)."""
    if underlying.quote.kind is InstrumentKind.FUTURE:
        return request.underlying.strip().upper().rpartition(":")[2].strip()
    return underlying.name


def _quoted(underlying: Underlying) -> str:
    return f"{underlying.quote.exchange.value}:{underlying.quote.trading_symbol}"


def _plain(value: Decimal) -> Decimal:
    """``26000`` rather than the scrip master's ``2.6E+4``; decimals kept where they count."""
    value = value.normalize()
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value


def _ddmmmyy(day: date) -> str:
    return f"{day.day:02d}{_MONTHS[day.month - 1]}{day.year % 100:02d}"


def _some(listed: Sequence[date]) -> str:
    if not listed:
        return "nothing later"
    shown = ", ".join(_ddmmmyy(day) for day in listed[:4])
    return shown + (" ..." if len(listed) > 4 else "")


def _when(moment: datetime | None) -> str:
    return f"{moment.astimezone(IST):%Y-%m-%d %H:%M:%S} IST" if moment else "at an unknown time"
