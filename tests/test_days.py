from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from votesvc.days import DayCalendar, campaign_day

SHANGHAI = ZoneInfo("Asia/Shanghai")


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_day_is_the_calendar_day_in_the_campaign_zone() -> None:
    day = campaign_day(ts("2026-11-21T23:30:00+00:00"), SHANGHAI)  # 07:30 on the 22nd
    assert day.label == "20261122"
    assert day.start == ts("2026-11-22T00:00:00+08:00")
    assert day.end == ts("2026-11-23T00:00:00+08:00")


def test_day_boundary_is_exclusive_at_midnight() -> None:
    assert campaign_day(ts("2026-11-22T00:00:00+08:00"), SHANGHAI).label == "20261122"
    assert campaign_day(ts("2026-11-21T23:59:59.999+08:00"), SHANGHAI).label == "20261121"


def test_days_across_a_dst_change_are_23_hours() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    day = campaign_day(ts("2026-03-29T12:00:00+02:00"), berlin)
    assert day.end - day.start == 23 * 3600


def test_calendar_follows_the_clock() -> None:
    calendar = DayCalendar(SHANGHAI)
    assert calendar.day(ts("2026-11-21T23:59:59+08:00")).label == "20261121"
    assert calendar.day(ts("2026-11-22T00:00:00+08:00")).label == "20261122"
    assert calendar.day(ts("2026-11-21T10:00:00+08:00")).label == "20261121"
