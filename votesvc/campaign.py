"""The campaign file: who can be voted for, when, and under which rules.

A campaign is described by a TOML file and loaded once at start-up. Every
problem with the file is reported as one :class:`CampaignError` naming the
field, so an operator sees a single clear line instead of a traceback.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib import resources
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from votesvc.errors import CampaignError

__all__ = [
    "BIO_MAX",
    "TITLE_MAX",
    "Campaign",
    "Nominee",
    "Rules",
    "Suspects",
    "Verification",
    "demo_campaign_dir",
    "demo_campaign_text",
    "load_campaign",
    "parse_campaign",
]

_CAMPAIGN_ID = re.compile(r"[a-z0-9-]{1,64}")
_NOMINEE_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
_TOP_KEYS = frozenset(("campaign", "rules", "nominees", "verification", "suspects"))
_CAMPAIGN_KEYS = frozenset(("id", "title", "timezone", "opens_at", "closes_at"))
_RULE_KEYS = frozenset(
    (
        "votes_per_phone_per_day",
        "votes_per_nominee_per_phone_per_day",
        "phone_burst_limit",
        "phone_burst_seconds",
        "ip_limit",
        "ip_limit_seconds",
        "trusted_proxies",
        "award_seats",
    )
)
_NOMINEE_KEYS = frozenset(("id", "name", "trade", "employer", "title", "bio", "photo"))
BIO_MAX = 300  # characters of a nominee's bio (事迹简介): a card's worth, read on a phone
TITLE_MAX = 30  # characters of a title (高级技师): one line beside the name
_METHODS = ("sms", "partner")
_PARTNER_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
# [verification]'s numbers and their defaults; each must be an integer >= 1,
# except pow_max_number, which may be 0 (no proof of work).
_VERIFICATION_NUMBERS: dict[str, int] = {
    "code_ttl_seconds": 300,
    "resend_seconds": 60,
    "sends_per_phone_per_day": 5,
    "sends_per_ip_per_hour": 100,
    "sends_per_prefix_per_hour": 300,
    "verifies_per_ip_per_hour": 30,
    "wrong_codes_max": 5,
    "sms_budget_per_minute": 600,
    "pow_max_number": 100_000,
    "token_ttl_seconds": 86_400,
}
_VERIFICATION_KEYS = frozenset(("methods", "partners", *_VERIFICATION_NUMBERS))
# One printable character per nominee packs a phone's votes of the day into a
# short string in Redis (see lua/cast_vote.lua); this alphabet bounds the size.
NOMINEE_CODES = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True, slots=True)
class Nominee:
    id: str
    name: str
    trade: str
    employer: str
    code: str  # one character of NOMINEE_CODES; the ledger's map decides (votesvc.meta)
    title: str | None = None  # e.g. 高级技师
    bio: str | None = None  # a short 事迹简介, at most BIO_MAX characters
    photo: Path | None = None  # the source file, as the campaign names it (votesvc.media)
    photo_url: str | None = None  # where it is served, once votesvc.media has made it

    def as_json(self) -> dict[str, Any]:
        """The nominee as ``GET /v1/nominees`` lists it."""
        return {
            "id": self.id,
            "name": self.name,
            "trade": self.trade,
            "employer": self.employer,
            "title": self.title,
            "bio": self.bio,
            "photo_url": self.photo_url,
        }


AWARD_SEATS = 10  # the default: the ten most voted receive the award


@dataclass(frozen=True, slots=True)
class Rules:
    votes_per_phone_per_day: int
    votes_per_nominee_per_phone_per_day: int
    phone_burst_limit: int
    phone_burst_seconds: int
    ip_limit: int
    ip_limit_seconds: int
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...]
    award_seats: int = AWARD_SEATS  # places that receive the most popular award

    def as_json(self) -> dict[str, Any]:
        return {
            "award_seats": self.award_seats,
            "votes_per_phone_per_day": self.votes_per_phone_per_day,
            "votes_per_nominee_per_phone_per_day": self.votes_per_nominee_per_phone_per_day,
            "phone_burst_limit": self.phone_burst_limit,
            "phone_burst_seconds": self.phone_burst_seconds,
            "ip_limit": self.ip_limit,
            "ip_limit_seconds": self.ip_limit_seconds,
        }


@dataclass(frozen=True, slots=True)
class Verification:
    """How a campaign ties a vote to a person (the ``[verification]`` table).

    ``methods`` empty: votes are not verified and the API is the unverified one.
    """

    methods: tuple[str, ...] = ()  # "sms", "partner"
    code_ttl_seconds: int = _VERIFICATION_NUMBERS["code_ttl_seconds"]
    resend_seconds: int = _VERIFICATION_NUMBERS["resend_seconds"]
    sends_per_phone_per_day: int = _VERIFICATION_NUMBERS["sends_per_phone_per_day"]
    sends_per_ip_per_hour: int = _VERIFICATION_NUMBERS["sends_per_ip_per_hour"]
    sends_per_prefix_per_hour: int = _VERIFICATION_NUMBERS["sends_per_prefix_per_hour"]
    verifies_per_ip_per_hour: int = _VERIFICATION_NUMBERS["verifies_per_ip_per_hour"]
    wrong_codes_max: int = _VERIFICATION_NUMBERS["wrong_codes_max"]
    sms_budget_per_minute: int = _VERIFICATION_NUMBERS["sms_budget_per_minute"]
    pow_max_number: int = _VERIFICATION_NUMBERS["pow_max_number"]  # 0: no proof of work
    token_ttl_seconds: int = _VERIFICATION_NUMBERS["token_ttl_seconds"]
    partners: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        """Whether a vote needs a token."""
        return bool(self.methods)

    @property
    def sms(self) -> bool:
        return "sms" in self.methods

    @property
    def partner(self) -> bool:
        return "partner" in self.methods

    def as_json(self) -> dict[str, Any]:
        """What a page needs to know to drive the flow."""
        return {
            "methods": list(self.methods),
            "code_ttl_seconds": self.code_ttl_seconds,
            "resend_seconds": self.resend_seconds,
            "pow": self.sms and self.pow_max_number > 0,
        }


@dataclass(frozen=True, slots=True)
class Suspects:
    """The thresholds of the suspicious-activity signals (the ``[suspects]`` table;
    votesvc.ledger.suspects says what each signal is)."""

    prefix_votes_per_hour: int = 200  # a prefix's votes in a clock hour, more is suspect
    nominee_spike_factor: float = 5  # a nominee's minute above this many times its median
    nominee_spike_min_votes: int = 30  # ... and at least this many votes in that minute
    top_prefix_share: float = 0.5  # a nominee's share of votes from its 10 busiest prefixes
    top_prefix_min_votes: int = 200  # ... for a nominee with at least this many votes
    same_sequence_phones: int = 20  # phones voting the same ordered list of nominees ...
    same_sequence_minutes: int = 10  # ... within this many minutes


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    title: str
    timezone: ZoneInfo
    opens_at: datetime
    closes_at: datetime
    rules: Rules
    nominees: tuple[Nominee, ...]
    verification: Verification = Verification()
    suspects: Suspects = Suspects()
    _by_id: dict[str, Nominee] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {n.id: n for n in self.nominees})

    def nominee(self, nominee_id: str) -> Nominee | None:
        return self._by_id.get(nominee_id)

    def with_codes(self, codes: dict[str, str]) -> Campaign:
        """This campaign with the nominee codes ``codes`` (the ledger's, votesvc.meta)."""
        nominees = tuple(replace(n, code=codes[n.id]) for n in self.nominees)
        return replace(self, nominees=nominees)

    def with_photo_urls(self, urls: dict[str, str]) -> Campaign:
        """This campaign with its photos' URLs (nominee id -> URL; votesvc.media)."""
        nominees = tuple(replace(n, photo_url=urls.get(n.id)) for n in self.nominees)
        return replace(self, nominees=nominees)

    @property
    def window_ms(self) -> tuple[int, int]:
        """When voting opens and closes, epoch ms (both instants belong to the window)."""
        return int(self.opens_at.timestamp() * 1000), int(self.closes_at.timestamp() * 1000)

    def as_json(self) -> dict[str, Any]:
        body = {
            "id": self.id,
            "title": self.title,
            "timezone": self.timezone.key,
            "opens_at": self.opens_at.isoformat(),
            "closes_at": self.closes_at.isoformat(),
            "rules": self.rules.as_json(),
        }
        if self.verification.required:  # an unverified campaign answers as before
            body["verification"] = self.verification.as_json()
        return body


def demo_campaign_text(name: str = "demo.toml") -> str:
    """The TOML of a demo campaign shipped with the package (``demo-sms.toml`` too).

    Its photos' paths are made absolute, so a copy written anywhere finds them.
    """
    text = resources.files("votesvc").joinpath("campaigns", name).read_text("utf-8")
    folder = demo_campaign_dir().as_posix()
    return re.sub(r'^photo = "(?!/)', f'photo = "{folder}/', text, flags=re.MULTILINE)


def demo_campaign_dir() -> Path:
    """The folder of the demo campaign: its photos' paths are relative to it."""
    return Path(str(resources.files("votesvc").joinpath("campaigns")))


def load_campaign(path: Path | None) -> Campaign:
    """Read and validate a campaign file, or the demo when ``path`` is None."""
    if path is None:
        return parse_campaign(
            demo_campaign_text(), source="demo campaign", base=demo_campaign_dir()
        )
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise CampaignError(f"campaign file {path}: cannot read it ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise CampaignError(f"campaign file {path}: not UTF-8 text") from exc
    return parse_campaign(text, source=f"campaign file {path}", base=path.parent)


def parse_campaign(text: str, *, source: str = "campaign", base: Path | None = None) -> Campaign:
    """``base``: the folder a relative ``photo`` path starts from (the campaign file's);
    None: the working directory."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CampaignError(f"{source}: invalid TOML: {exc}") from exc
    return _Parser(source, base).campaign(doc)


class _Parser:
    def __init__(self, source: str, base: Path | None = None) -> None:
        self.source = source
        self.base = base

    def fail(self, message: str) -> CampaignError:
        return CampaignError(f"{self.source}: {message}")

    def known_keys(self, table: dict[str, Any], where: str, allowed: frozenset[str]) -> None:
        # A misspelt key (trusted_proxy) would otherwise silently fall back to a default.
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail(
                f"unknown key {where}{unknown[0]} (known: {', '.join(sorted(allowed))})"
            )

    def table(self, doc: dict[str, Any], name: str) -> dict[str, Any]:
        value = doc.get(name)
        if not isinstance(value, dict):
            raise self.fail(f"missing [{name}] table")
        return value

    def string(self, table: dict[str, Any], where: str, key: str) -> str:
        value = table.get(key)
        if value is None:
            raise self.fail(f"{where}.{key} is missing")
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where}.{key} must be a non-empty string")
        return value

    def integer(self, table: dict[str, Any], where: str, key: str, minimum: int) -> int:
        value = table.get(key)
        if value is None:
            raise self.fail(f"{where}.{key} is missing")
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(f"{where}.{key} must be an integer >= {minimum}")
        return value

    def moment(self, table: dict[str, Any], where: str, key: str) -> datetime:
        value = table.get(key)
        if value is None:
            raise self.fail(f"{where}.{key} is missing")
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise self.fail(f"{where}.{key} is not an ISO-8601 date-time") from None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise self.fail(f"{where}.{key} must be a date-time with a UTC offset")
        return value

    def campaign(self, doc: dict[str, Any]) -> Campaign:
        self.known_keys(doc, "", _TOP_KEYS)
        head = self.table(doc, "campaign")
        self.known_keys(head, "campaign.", _CAMPAIGN_KEYS)
        campaign_id = self.string(head, "campaign", "id")
        if not _CAMPAIGN_ID.fullmatch(campaign_id):
            raise self.fail("campaign.id must be 1-64 characters of a-z, 0-9 and '-'")
        tz_name = self.string(head, "campaign", "timezone")
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.fail(f"campaign.timezone {tz_name!r} is not a known time zone") from None
        opens_at = self.moment(head, "campaign", "opens_at")
        closes_at = self.moment(head, "campaign", "closes_at")
        if closes_at <= opens_at:
            raise self.fail("campaign.closes_at must be after campaign.opens_at")
        return Campaign(
            id=campaign_id,
            title=self.string(head, "campaign", "title"),
            timezone=tz,
            opens_at=opens_at,
            closes_at=closes_at,
            rules=self.rules(self.table(doc, "rules")),
            nominees=self.nominees(doc.get("nominees")),
            verification=self.verification(doc.get("verification", {})),
            suspects=self.suspects(doc.get("suspects", {})),
        )

    def verification(self, table: Any) -> Verification:
        if not isinstance(table, dict):
            raise self.fail("[verification] must be a table")
        self.known_keys(table, "verification.", _VERIFICATION_KEYS)
        methods = self.names(table, "methods", lambda m: m in _METHODS, "one of sms, partner")
        partners = self.names(
            table, "partners", _PARTNER_ID.fullmatch, "1-32 of A-Z, a-z, 0-9, _ and -"
        )
        if "partner" in methods and not partners:
            raise self.fail('verification.methods has "partner": list the partner ids in partners')
        numbers = {}
        for key, default in _VERIFICATION_NUMBERS.items():
            minimum = 0 if key == "pow_max_number" else 1
            numbers[key] = (
                self.integer(table, "verification", key, minimum) if key in table else default
            )
        return Verification(methods=methods, partners=partners, **numbers)

    def suspects(self, table: Any) -> Suspects:
        """``[suspects]``: whole numbers >= 1, but the factor (> 0) and the share (0 to 1)."""
        if not isinstance(table, dict):
            raise self.fail("[suspects] must be a table")
        defaults = Suspects()
        self.known_keys(table, "suspects.", frozenset(Suspects.__slots__))
        values: dict[str, Any] = {}
        for key in Suspects.__slots__:
            value = table.get(key, getattr(defaults, key))
            real = isinstance(value, int | float) and not isinstance(value, bool)
            if key == "top_prefix_share":
                if not real or not 0 < value < 1:
                    raise self.fail("suspects.top_prefix_share must be a number between 0 and 1")
            elif key == "nominee_spike_factor":
                if not real or value <= 0:
                    raise self.fail("suspects.nominee_spike_factor must be a number > 0")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise self.fail(f"suspects.{key} must be an integer >= 1")
            values[key] = value
        return Suspects(**values)

    def names(
        self, table: dict[str, Any], key: str, valid: Callable[[str], object], form: str
    ) -> tuple[str, ...]:
        """A list of distinct short names, ``verification.KEY``."""
        items = table.get(key, [])
        if not isinstance(items, list):
            raise self.fail(f"verification.{key} must be a list")
        for item in items:
            if not isinstance(item, str) or not valid(item):
                raise self.fail(f"verification.{key}: {item!r} is not {form}")
        if len(set(items)) != len(items):
            raise self.fail(f"verification.{key} lists a name twice")
        return tuple(items)

    def rules(self, table: dict[str, Any]) -> Rules:
        self.known_keys(table, "rules.", _RULE_KEYS)
        proxies = table.get("trusted_proxies", [])
        if not isinstance(proxies, list):
            raise self.fail("rules.trusted_proxies must be a list of CIDRs")
        networks = []
        for cidr in proxies:
            try:
                networks.append(ip_network(str(cidr), strict=False))
            except ValueError:
                raise self.fail(f"rules.trusted_proxies: {cidr!r} is not a CIDR") from None
        per_day = self.integer(table, "rules", "votes_per_phone_per_day", 1)
        per_nominee = self.integer(table, "rules", "votes_per_nominee_per_phone_per_day", 1)
        if per_day > 255 or per_nominee > per_day:
            raise self.fail(
                "rules.votes_per_nominee_per_phone_per_day must not exceed "
                "rules.votes_per_phone_per_day (at most 255)"
            )
        return Rules(
            votes_per_phone_per_day=per_day,
            votes_per_nominee_per_phone_per_day=per_nominee,
            phone_burst_limit=self.integer(table, "rules", "phone_burst_limit", 1),
            phone_burst_seconds=self.integer(table, "rules", "phone_burst_seconds", 1),
            ip_limit=self.integer(table, "rules", "ip_limit", 1),
            ip_limit_seconds=self.integer(table, "rules", "ip_limit_seconds", 1),
            trusted_proxies=tuple(networks),
            award_seats=self.integer(table, "rules", "award_seats", 1)
            if "award_seats" in table
            else AWARD_SEATS,
        )

    def nominees(self, items: Any) -> tuple[Nominee, ...]:
        if not isinstance(items, list) or not items:
            raise self.fail("at least one [[nominees]] entry is required")
        if len(items) > len(NOMINEE_CODES):
            raise self.fail(f"at most {len(NOMINEE_CODES)} nominees are supported")
        seen: set[str] = set()
        parsed = []
        for index, item in enumerate(items):
            where = f"nominees[{index}]"
            if not isinstance(item, dict):
                raise self.fail(f"{where} must be a table")
            self.known_keys(item, f"{where}.", _NOMINEE_KEYS)
            nominee_id = self.string(item, where, "id")
            if not _NOMINEE_ID.fullmatch(nominee_id):
                raise self.fail(f"{where}.id {nominee_id!r} must be 1-16 of A-Z, a-z, 0-9, _ and -")
            if nominee_id in seen:
                raise self.fail(f"duplicate nominee id {nominee_id!r}")
            seen.add(nominee_id)
            photo = self.optional(item, where, "photo", 4096)
            parsed.append(
                Nominee(
                    id=nominee_id,
                    name=self.string(item, where, "name"),
                    trade=self.string(item, where, "trade"),
                    employer=self.string(item, where, "employer"),
                    code="",
                    title=self.optional(item, where, "title", TITLE_MAX),
                    bio=self.optional(item, where, "bio", BIO_MAX),
                    photo=None if photo is None else self.path(photo),
                )
            )
        # Codes follow the sorted ids, so reordering the file mid-campaign is harmless.
        codes = {nid: NOMINEE_CODES[i] for i, nid in enumerate(sorted(seen))}
        return tuple(replace(n, code=codes[n.id]) for n in parsed)

    def optional(self, table: dict[str, Any], where: str, key: str, most: int) -> str | None:
        """An optional text of at most ``most`` characters, without its outer blanks."""
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where}.{key} must be a non-empty string")
        value = value.strip()
        if len(value) > most:
            raise self.fail(f"{where}.{key} has {len(value)} characters, at most {most}")
        return value

    def path(self, text: str) -> Path:
        """A path from the campaign file: relative ones start at the file's folder."""
        path = Path(text)
        return path if path.is_absolute() or self.base is None else self.base / path
