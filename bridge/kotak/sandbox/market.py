"""The sandbox's moving market: a seeded random walk per underlying, and prices that follow it.

Paper mode must let limit orders rest and fill, stops trigger and P&L move, so prices cannot
stay at the catalogue's levels. Each underlying (an index, a share, a commodity) walks:

* its level is the catalogue's level times ``exp(x)``, where ``x`` starts at 0 at midnight of
  each day and takes one Gaussian step every ``step_s`` seconds, with a standard deviation of
  ``volatility`` per hour; ``x`` is squashed smoothly (``tanh``) into +-5 %, so however long
  or wild the walk, the level stays inside the listed option chains and the circuit bands;
* everything on it follows: the share on both exchanges (each on its own tick grid), the
  index's cash row, the futures (carried to expiry from the moved level) and the options,
  re-priced from the moved level (intrinsic value plus a simple time value, on the tick grid,
  never below one tick), so a CE gains and a PE loses when the underlying rises.

The walk is a function of the seed, the day, the underlying and the step number alone, so two
sandboxes with the same seed agree at the same instant (gunicorn workers in paper mode), and
a test replays it exactly. Prices are never replayed from midnight: the walk is drawn in
blocks of :data:`BLOCK` steps (a block's end first, from one stream per underlying, then the
steps inside it as a Brownian bridge between its ends, from one stream per block), and each
underlying keeps the block ends drawn so far and the block last used.

Freezing stops the walk where it stands; unfreezing resumes it from there, later in the
day's walk by the time it stood still (a new day starts at the catalogue's levels). The
freeze is held by this object, so in paper mode it applies to the worker it was asked of.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal

from bridge.kotak.sandbox.scripmaster import SandboxScrip, future_price, on_grid, option_price

#: steps per block of the walk (see the module docstring)
BLOCK = 256
#: how far (log) the level may stray from the catalogue's
BOUND = 0.05
_NEVER = date.min


@dataclass
class _Path:
    """One underlying's walk on one day, drawn as far as it has been asked for."""

    ends: random.Random  # the stream of block ends
    x: list[float] = field(default_factory=lambda: [0.0])  # the walk at each block's start
    low: list[float] = field(default_factory=lambda: [0.0])  # lowest block start so far
    high: list[float] = field(default_factory=lambda: [0.0])  # highest block start so far
    block: int = -1  # the block whose steps are in ``steps``
    steps: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Level:
    """An underlying's level as a multiple of the catalogue's: now, and its day's range."""

    now: float
    low: float
    high: float


UNMOVED = Level(1.0, 1.0, 1.0)


class PriceWalk:
    """The walks of every underlying, and the clock that drives them (frozen or running)."""

    def __init__(self, seed: int, step_s: float, volatility: float, running: bool) -> None:
        if step_s <= 0:
            raise ValueError("walk_step_s must be positive")
        if volatility < 0:
            raise ValueError("walk_volatility must not be negative")
        self.seed = seed
        self.step_s = step_s
        self._sigma = volatility * math.sqrt(step_s / 3600)
        self._paths: dict[tuple[date, str], _Path] = {}
        self._newest = _NEVER
        self._lock = threading.Lock()
        #: (day, seconds into it) where the walk stands still; a frozen walk on a later day
        #: stands at that day's start
        self._frozen: tuple[date, float] | None = None if running else (_NEVER, 0.0)
        #: (day, seconds) the walk of that day runs behind the clock, after an unfreeze
        self._lag: tuple[date, float] = (_NEVER, 0.0)

    @property
    def running(self) -> bool:
        return self._frozen is None

    def freeze(self, now: datetime) -> None:
        with self._lock:
            if self._frozen is None:
                self._frozen = (now.date(), self._elapsed(now))

    def unfreeze(self, now: datetime) -> None:
        with self._lock:
            if self._frozen is not None:
                standing = self._elapsed(now)
                self._frozen = None
                self._lag = (now.date(), _seconds_into_day(now) - standing)

    def level(self, underlying: str, now: datetime) -> Level:
        """Where ``underlying`` stands at ``now``, relative to the catalogue's level."""
        with self._lock:
            step = int(self._elapsed(now) // self.step_s)
            if step == 0 or self._sigma == 0 or not underlying:
                return UNMOVED
            path = self._path(now.date(), underlying)
            block, offset = divmod(step, BLOCK)
            self._reach(path, block + 1)
            steps = self._steps(path, now.date(), underlying, block)
            here = steps[offset]
            low = min(path.low[block], min(steps[: offset + 1]))
            high = max(path.high[block], max(steps[: offset + 1]))
        return Level(_squashed(here), _squashed(low), _squashed(high))

    # --- internals (under the lock) -----------------------------------------------------

    def _elapsed(self, now: datetime) -> float:
        """Seconds of walking the day of ``now`` has seen."""
        day = now.date()
        if self._frozen is not None:
            frozen_day, seconds = self._frozen
            return seconds if frozen_day == day else 0.0
        lag = self._lag[1] if self._lag[0] == day else 0.0
        return max(0.0, _seconds_into_day(now) - lag)

    def _path(self, day: date, underlying: str) -> _Path:
        path = self._paths.get((day, underlying))
        if path is None:
            if day > self._newest:
                # A new day: keep only the day before, whose close a book rolling over asks.
                self._newest = day
                self._paths = {k: v for k, v in self._paths.items() if (day - k[0]).days <= 1}
            path = _Path(ends=random.Random(f"{self.seed}|{day.isoformat()}|{underlying}"))
            self._paths[(day, underlying)] = path
        return path

    def _reach(self, path: _Path, block: int) -> None:
        """Draw block starts up to ``block`` (one Gaussian per block of steps)."""
        spread = self._sigma * math.sqrt(BLOCK)
        while len(path.x) <= block:
            value = path.x[-1] + spread * path.ends.gauss(0.0, 1.0)
            path.x.append(value)
            path.low.append(min(path.low[-1], value))
            path.high.append(max(path.high[-1], value))

    def _steps(self, path: _Path, day: date, underlying: str, block: int) -> list[float]:
        """The walk at every step of ``block``: a Brownian bridge between its two ends."""
        if path.block != block:
            rng = random.Random(f"{self.seed}|{day.isoformat()}|{underlying}|{block}")
            value, end = path.x[block], path.x[block + 1]
            steps = [value]
            for i in range(BLOCK - 1):
                left = BLOCK - i
                drift = (end - value) / left
                value += drift + self._sigma * math.sqrt((left - 1) / left) * rng.gauss(0.0, 1.0)
                steps.append(value)
            path.block, path.steps = block, steps
        return path.steps


def _squashed(x: float) -> float:
    """The level for walk position ``x``: ``exp(x)`` near 0, never beyond ``exp(+-BOUND)``;
    monotonic, so the day's lowest ``x`` is its lowest level."""
    return math.exp(BOUND * math.tanh(x / BOUND))


def _seconds_into_day(now: datetime) -> float:
    return (now - datetime.combine(now.date(), time(0), now.tzinfo)).total_seconds()


def reprice(scrip: SandboxScrip, ratio: float, day: date) -> Decimal:
    """``scrip``'s price on ``day`` when its underlying stands at ``ratio`` times the
    catalogue's level: the catalogue's own price when it has not moved."""
    if ratio == 1.0 or not scrip.underlying:
        return scrip.ref_price
    tick = scrip.tick_size
    if scrip.expiry is None:
        return on_grid(float(scrip.ref_price) * ratio, tick)
    spot = scrip.spot * ratio
    if scrip.strike is None:
        return on_grid(future_price(spot, day, scrip.expiry), tick)
    return on_grid(option_price(spot, float(scrip.strike), scrip.option_type, day, scrip.expiry),
                   tick)


def day_range(scrip: SandboxScrip, level: Level, day: date) -> tuple[Decimal, Decimal]:
    """The lowest and highest price ``scrip`` traded at over its underlying's day range (a
    PE is dearest when the underlying is lowest)."""
    at_low, at_high = reprice(scrip, level.low, day), reprice(scrip, level.high, day)
    return min(at_low, at_high), max(at_low, at_high)


def end_of_day(day: date, like: datetime) -> datetime:
    """The last instant of ``day`` in the time zone of ``like`` (a day's closing price)."""
    return datetime.combine(day, time(23, 59, 59), like.tzinfo)
