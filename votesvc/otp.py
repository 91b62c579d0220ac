"""One-time SMS codes: send one under hard limits, verify it once.

A send takes three steps. ``otp_send.lua`` checks, in the API's order, a
replayed proof of work, the voting window (by Redis's clock), the phone's
resend cooldown, the IP's and the network prefix's hourly sends, the phone's
daily sends and the campaign's SMS budget for the minute, and counts the send
in all of them at once. Then the sender delivers the code. Only when it did is
the code kept (``otp_store.lua``, replacing an older one); when it failed,
``otp_refund.lua`` takes the count back, so a failed SMS costs the voter no
quota and the previous code stays valid.

A verify counts the attempt against the IP's hourly verifies and reads the
code's keyed hash (``otp_check.lua``); the hash is compared here in constant
time; ``otp_settle.lua`` then uses the code up, or counts the wrong try and
drops the code after the last one allowed.

Redis holds keyed hashes only: the phone's key (a prefix of its HMAC), the
code's HMAC under a key of its own, the IP's and the prefix's hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from votesvc.campaign import Campaign
from votesvc.days import Clock, DayCalendar
from votesvc.errors import RedisUnavailable, VoteError, http_error
from votesvc.keyring import derive_key
from votesvc.keys import Keys
from votesvc.scripts import Script, load_script
from votesvc.sms import SmsFailed, SmsSender

__all__ = ["CODE_DIGITS", "OneTimeCodes", "Sent"]

log = logging.getLogger(__name__)

CODE_DIGITS = 6
_STATS_KEEP = 90 * 86400  # seconds the per-day counters outlive the campaign
_NO_POW = "none"


@dataclass(frozen=True, slots=True)
class Sent:
    """What ``POST /v1/otp`` answers: the code's lifetime and the resend cooldown."""

    expires_in: int
    resend_after: int


class OneTimeCodes:
    """Sends and verifies the codes of one campaign."""

    def __init__(
        self,
        client: Any,
        campaign: Campaign,
        keys: Keys,
        secret: bytes,
        sender: SmsSender,
        clock: Clock,
    ) -> None:
        self._client = client
        self._campaign = campaign
        self._rules = campaign.verification
        self._keys = keys
        self._code_key = derive_key(secret, "otp-code")
        self._sender = sender
        self._clock = clock
        self._calendar = DayCalendar(campaign.timezone)
        self._scripts = {
            name: load_script(name)
            for name in ("otp_send", "otp_refund", "otp_store", "otp_check", "otp_settle")
        }

    def code_hash(self, phone_hash: str, code: str) -> str:
        """The keyed hash a code is kept as (bound to its phone)."""
        message = f"{phone_hash}:{code}".encode()
        return hmac.new(self._code_key, message, hashlib.sha256).hexdigest()

    async def send(
        self,
        phone: str,
        phone_hash: str,
        ip_hash: str,
        prefix_hash: str,
        pow_used: tuple[str, int] | None,
    ) -> Sent:
        """Send a new code to ``phone`` (normalised); ``pow_used``: (replay id, expiry s).

        Raises VoteError (a refusal, or ``sms_unavailable``) or RedisUnavailable.
        """
        now = self._clock()
        rules = self._rules
        keys = self._keys
        phone_key = keys.phone_key(phone_hash)
        day = self._calendar.day(now)
        hour, minute = int(now // 3600), int(now // 60)
        counted = [
            keys.otp_cooldown(phone_key),
            keys.otp_phone_sends(day.label, phone_key),
            keys.otp_ip_sends(hour, ip_hash),
            keys.otp_prefix_sends(hour, prefix_hash),
            keys.otp_budget(minute),
        ]
        pow_key = keys.otp_pow(pow_used[0] if pow_used else _NO_POW)
        pow_ms = max(1, math.ceil((pow_used[1] - now) * 1000)) if pow_used else 1
        opens_ms, closes_ms = self._campaign.window_ms
        status, value = await self._call(
            "otp_send",
            [pow_key, *counted],
            [
                1 if pow_used else 0,
                pow_ms,
                opens_ms,
                closes_ms,
                rules.resend_seconds * 1000,
                rules.sends_per_phone_per_day,
                math.ceil(day.end - now) + 60,
                rules.sends_per_ip_per_hour,
                rules.sends_per_prefix_per_hour,
                rules.sms_budget_per_minute,
            ],
        )
        if status != 0:
            raise self._send_refusal(int(status), int(value), now, day.end)
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        started = time.perf_counter()
        try:
            await self._sender.send(self._campaign.id, phone, code, rules.code_ttl_seconds)
        except SmsFailed as exc:
            log.warning(
                "SMS not sent (%s): the send is not counted",
                exc,
                extra={"outcome": "sms_unavailable", "duration": time.perf_counter() - started},
            )
            await self._call("otp_refund", counted, [])
            raise http_error("sms_unavailable") from exc
        await self._call(
            "otp_store",
            [keys.otp_code(phone_key), keys.otp_stats(day.label)],
            [self.code_hash(phone_hash, code), rules.code_ttl_seconds * 1000, self._stats_ttl(now)],
        )
        return Sent(rules.code_ttl_seconds, rules.resend_seconds)

    def _send_refusal(self, status: int, value: int, now: float, day_end: float) -> VoteError:
        if status == 1:
            return http_error("pow_invalid")
        if status == 2:
            moment = self._campaign.closes_at if value else self._campaign.opens_at
            verb = "closed" if value else "opens"
            return http_error("voting_closed", f"Voting {verb} at {moment.isoformat()}.")
        if status == 3:
            return http_error(
                "rate_limited",
                "A code was sent to this phone a moment ago; wait before asking again.",
                retry_after=max(1, math.ceil(value / 1000)),
            )
        if status in (4, 5):
            return http_error(
                "rate_limited",
                "Too many codes were asked for from this network this hour.",
                retry_after=max(1, math.ceil(3600 - now % 3600)),
            )
        if status == 6:
            return http_error(
                "daily_limit",
                "This phone has been sent all of today's codes; more tomorrow.",
                retry_after=max(1, math.ceil(day_end - now)),
            )
        if status == 7:
            return http_error("sms_budget_exhausted", retry_after=max(1, math.ceil(60 - now % 60)))
        raise RuntimeError(f"otp_send.lua returned an unknown status {status}")

    async def verify(self, phone_hash: str, code: str, ip_hash: str) -> None:
        """Use up the live code of ``phone_hash`` if ``code`` is it; VoteError if not."""
        now = self._clock()
        keys = self._keys
        code_key = keys.otp_code(keys.phone_key(phone_hash))
        reply = await self._call(
            "otp_check",
            [keys.otp_tries(int(now // 3600), ip_hash), code_key],
            [self._rules.verifies_per_ip_per_hour],
        )
        if reply[0] == 1:
            raise http_error(
                "rate_limited",
                "Too many code checks from this network this hour.",
                retry_after=max(1, math.ceil(3600 - now % 3600)),
            )
        if reply[0] == 2:
            raise http_error("code_expired")
        stored = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
        matched = hmac.compare_digest(stored, self.code_hash(phone_hash, code))
        day = self._calendar.day(now)
        settled = await self._call(
            "otp_settle",
            [code_key, keys.otp_stats(day.label)],
            [stored, 1 if matched else 0, self._rules.wrong_codes_max, self._stats_ttl(now)],
        )
        if settled[0] == 0:
            return
        if settled[0] == 1:
            left = int(settled[1])
            message = f"The code is wrong; {left} tries left." if left else None
            raise http_error(
                "invalid_code",
                message or "The code is wrong, and that was the last try: ask for a new one.",
                details={"attempts_left": left},
            )
        raise http_error("code_expired")

    def _stats_ttl(self, now: float) -> int:
        return max(0, math.ceil(self._campaign.closes_at.timestamp() - now)) + _STATS_KEEP

    async def _call(self, name: str, keys: list[str], args: list[str | int]) -> Any:
        script: Script = self._scripts[name]
        try:
            return await script(self._client, keys, args)
        except (RedisError, OSError) as exc:
            raise RedisUnavailable(f"{name}: {exc}") from exc
