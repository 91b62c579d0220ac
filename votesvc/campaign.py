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
    "Campaign",
    "Nominee",
    "Rules",
    "Verification",
    "demo_campaign_text",
    "load_campaign",
    "parse_campaign",
]

_CAMPAIGN_ID = re.compile(r"[a-z0-9-]{1,64}")
_NOMINEE_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
_TOP_KEYS = frozenset(("campaign", "rules", "nominees", "verification"))
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
_NOMINEE_KEYS = frozenset(("id", "name", "trade", "employer"))
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
class Campaign:
    id: str
    title: str
    timezone: ZoneInfo
    opens_at: datetime
    closes_at: datetime
    rules: Rules
    nominees: tuple[Nominee, ...]
    verification: Verification = Verification()
    _by_id: dict[str, Nominee] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {n.id: n for n in self.nominees})

    def nominee(self, nominee_id: str) -> Nominee | None:
        return self._by_id.get(nominee_id)

    def with_codes(self, codes: dict[str, str]) -> Campaign:
        """This campaign with the nominee codes ``codes`` (the ledger's, votesvc.meta)."""
        nominees = tuple(replace(n, code=codes[n.id]) for n in self.nominees)
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


def demo_campaign_text() -> str:
    """The TOML of the demo campaign shipped with the package."""
    return resources.files("votesvc").joinpath("campaigns/demo.toml").read_text("utf-8")


def load_campaign(path: Path | None) -> Campaign:
    """Read and validate a campaign file, or the demo when ``path`` is None."""
    if path is None:
        return parse_campaign(demo_campaign_text(), source="demo campaign")
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise CampaignError(f"campaign file {path}: cannot read it ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise CampaignError(f"campaign file {path}: not UTF-8 text") from exc
    return parse_campaign(text, source=f"campaign file {path}")


def parse_campaign(text: str, *, source: str = "campaign") -> Campaign:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CampaignError(f"{source}: invalid TOML: {exc}") from exc
    return _Parser(source).campaign(doc)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

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
            parsed.append(
                (
                    nominee_id,
                    self.string(item, where, "name"),
                    self.string(item, where, "trade"),
                    self.string(item, where, "employer"),
                )
            )
        # Codes follow the sorted ids, so reordering the file mid-campaign is harmless.
        codes = {nid: NOMINEE_CODES[i] for i, nid in enumerate(sorted(seen))}
        return tuple(
            Nominee(id=nid, name=name, trade=trade, employer=employer, code=codes[nid])
            for nid, name, trade, employer in parsed
        )
