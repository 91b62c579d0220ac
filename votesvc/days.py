"""Campaign days: a calendar day in the campaign's time zone.

Daily quotas and dedup sets reset when the campaign day changes. This module
holds the one function that decides where a day begins and ends; everything
else (quota keys, their expiry, ``Retry-After`` for ``daily_limit``) asks it.
Times are UTC epoch seconds everywhere else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["Clock", "Day", "DayCalendar", "campaign_day", "system_clock"]

Clock = Callable[[], float]
"""Returns the current time as UTC epoch seconds; tests inject their own."""

system_clock: Clock = time.time


@dataclass(frozen=True, slots=True)
class Day:
    label: str  # "YYYYMMDD", used in Redis keys
    start: float  # epoch seconds, inclusive
    end: float  # epoch seconds, exclusive: the next day's start


def campaign_day(now: float, tz: ZoneInfo) -> Day:
    """The campaign day (in ``tz``) that contains the instant ``now``."""
    local = datetime.fromtimestamp(now, tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    # Add a calendar day in local time, then normalise: correct across DST shifts.
    next_local = (midnight + timedelta(days=1)).replace(tzinfo=None)
    next_midnight = next_local.replace(tzinfo=tz)
    return Day(
        label=midnight.strftime("%Y%m%d"),
        start=midnight.timestamp(),
        end=next_midnight.timestamp(),
    )


class DayCalendar:
    """Caches the current campaign day so the vote path rarely recomputes it."""

    __slots__ = ("_day", "_tz")

    def __init__(self, tz: ZoneInfo) -> None:
        self._tz = tz
        self._day = Day("", 0.0, 0.0)

    def day(self, now: float) -> Day:
        day = self._day
        if not day.start <= now < day.end:
            day = self._day = campaign_day(now, self._tz)
        return day
