# ruff: noqa: RUF001, RUF002  (Chinese texts use full-width punctuation)
"""How the organisers' tools show an instant: in the campaign's time zone.

Times are UTC epoch milliseconds inside; people read them in the campaign's
zone. The command line prints ISO 8601 with the offset
(``2026-12-01T20:15:03.120+08:00``); the console writes
``2026-12-01 20:15:03（北京时间）``, naming the zone in Chinese: 北京时间 for
China's zone, else the zone's name and its offset at that instant.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

__all__ = ["local_iso", "zh_time", "zh_zone"]

# The IANA names of the one zone China keeps (the others are links to Asia/Shanghai).
_BEIJING = frozenset(("Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "PRC"))


def local_iso(ms: int | None, tz: ZoneInfo) -> str:
    """``ms`` (epoch ms) as ISO 8601 in ``tz``, with its offset; "" for None."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="milliseconds")


def zh_zone(tz: ZoneInfo, at: datetime) -> str:
    """The zone as a Chinese reader expects it named: 北京时间, or ``Europe/Paris，UTC+01:00``."""
    if tz.key in _BEIJING:
        return "北京时间"
    offset = at.strftime("%z")
    return f"{tz.key}，UTC{offset[:3]}:{offset[3:]}"


def zh_time(ms: int, tz: ZoneInfo) -> str:
    """``2026-12-01 20:15:03（北京时间）``: ``ms`` (epoch ms) in ``tz``, to the second."""
    moment = datetime.fromtimestamp(ms / 1000, tz)
    return f"{moment:%Y-%m-%d %H:%M:%S}（{zh_zone(tz, moment)}）"
