# ruff: noqa: RUF001  (Chinese texts use full-width punctuation)
"""Times for organisers: the campaign's zone, with its offset or its Chinese name."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from votesvc.ledger.times import local_iso, zh_time

MOMENT = int(datetime.fromisoformat("2026-12-01T12:15:03.25+00:00").timestamp() * 1000)


def test_the_command_line_prints_iso_8601_with_the_offset() -> None:
    assert local_iso(MOMENT, ZoneInfo("Asia/Shanghai")) == "2026-12-01T20:15:03.250+08:00"
    assert local_iso(MOMENT, ZoneInfo("Europe/Paris")) == "2026-12-01T13:15:03.250+01:00"
    assert local_iso(None, ZoneInfo("UTC")) == ""


def test_the_console_names_beijing_time_or_the_zone_and_its_offset() -> None:
    assert zh_time(MOMENT, ZoneInfo("Asia/Shanghai")) == "2026-12-01 20:15:03（北京时间）"
    assert (
        zh_time(MOMENT, ZoneInfo("Europe/Paris"))
        == "2026-12-01 13:15:03（Europe/Paris，UTC+01:00）"
    )
    summer = MOMENT - 150 * 86_400_000
    assert zh_time(summer, ZoneInfo("Europe/Paris")).endswith("（Europe/Paris，UTC+02:00）")
