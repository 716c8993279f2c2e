"""New intraday entries stopped for the day by a square-off: what is stopped, in words, and
lifting the stop.

The scheduled square-off always stops new intraday (MIS) entries on its exchanges for the
rest of the day (the market is closing); a square-off pressed by hand does only when the
trader ticks the choice. Whoever lifts a stop (dashboard, CLI) is journaled in a notice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from bridge.clock import IST, Clock, today_ist
from bridge.domain import Exchange
from bridge.journal.entries import EntryBlock
from bridge.journal.journal import Journal
from bridge.notify import Notifier
from bridge.schedule.calendar import CalendarError, TradingCalendar

log = logging.getLogger(__name__)

#: how a trader lifts a stop; the refusal of a signal and the dashboard say it
HOW_TO_ALLOW = ("press 'Allow new entries again' on the dashboard, or run "
                "`make entries-allow`")
WHY_DASHBOARD = "the square-off pressed on the dashboard"
WHY_CLI = "the square-off run with `bridge squareoff --block-entries`"


class EntryStops:
    def __init__(self, journal: Journal, notifier: Notifier | None, clock: Clock,
                 calendar: TradingCalendar) -> None:
        self.journal = journal
        self.notifier = notifier
        self.clock = clock
        self.calendar = calendar

    def today(self) -> list[EntryBlock]:
        return self.journal.entries.entry_blocks(today_ist(self.clock))

    def allow(self, by: str, *, account: str | None = None,
              exchanges: Iterable[str] | None = None) -> list[EntryBlock]:
        """Accept new intraday entries again today; ``by`` says who (``dashboard``,
        ``cli``). Returns the stops lifted; a lift is a notice to the operator."""
        lifted = self.journal.entries.allow_entries(today_ist(self.clock), account=account,
                                                    exchanges=exchanges)
        if not lifted:
            return []
        text = (f"new intraday (MIS) entries allowed again by {by} on "
                f"{_where(lifted)} (they were stopped by {lifted[0].why})")
        log.warning("%s", text)
        if self.notifier is not None:
            self.notifier.send("entries", "info", text)
        return lifted

    def lines(self, blocks: list[EntryBlock]) -> list[str]:
        """The stops in a trader's words: where, why, since and until when; exchanges
        stopped together (one square-off) share a line."""
        many = len({block.account for block in blocks}) > 1
        grouped: dict[tuple[str, str, str, str], list[str]] = {}
        for block in blocks:
            since = f" at {block.at.astimezone(IST):%H:%M} IST" if block.at else ""
            account = f" (account {block.account})" if many else ""
            grouped.setdefault((account, block.why, since, self.until(block)),
                               []).append(block.exchange)
        return [f"{', '.join(exchanges)}{account}: stopped by {why}{since}, {until}"
                for (account, why, since, until), exchanges in grouped.items()]

    def until(self, block: EntryBlock) -> str:
        try:
            next_day = self.calendar.next_open_day(Exchange(block.exchange), block.day)
        except (ValueError, CalendarError):
            return "until the end of the day"
        return f"until the next trading day ({next_day:%a %d %b})"


def _where(blocks: list[EntryBlock]) -> str:
    exchanges = ", ".join(sorted({block.exchange for block in blocks}))
    accounts = sorted({block.account for block in blocks})
    return exchanges if len(accounts) == 1 else f"{exchanges} (accounts {', '.join(accounts)})"
