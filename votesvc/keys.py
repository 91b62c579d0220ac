"""Every Redis key votesvc uses, built here and nowhere else.

Keys that one script call touches share a Redis Cluster hash slot through a
``{...}`` hash tag: a phone's day record (its votes and its burst window) lives
in the slot of its counter shard, together with that shard's tally hash and
vote stream. The
counters are split into ``shards`` so that the hot keys spread over a cluster;
the live tally is the sum over shards.

Layout (``C`` = campaign id, ``S`` = shard number, two digits)::

    votesvc:{C:sS}:tally            hash  nominee id -> accepted votes
    votesvc:{C:sS}:votes            stream of accepted votes (flushed to the ledger)
    votesvc:{C:sS}:day:YYYYMMDD     hash  phone key -> "CODES:T1,T2[:KEYS]": the nominee
                                    codes voted that day, the times of its recent
                                    attempts, the idempotency keys of its accepted votes
    votesvc:{C:sS}:marker           string, "this shard's data is the ledger's": written
                                    by a process that opened the ledger; missing, the
                                    shard's votes are refused (Redis lost its data)
    votesvc:{C:ip:IPHASH}:W         string, an IP's count in rate window W
    votesvc:{C:ledger}:snapshot-lock  string, the flusher writing this tally snapshot
    votesvc:{C:ledger}:flushers     hash  flusher (consumer name) -> last seen, epoch ms
    votesvc:{C:meta}                hash  the campaign's settings as the ledger keeps them
                                    (nominee codes, shards, secret fingerprint): its mirror

Verification (one hash tag per campaign: every step's keys in one slot; PH =
a phone key, IPH = an IP hash, PXH = a network prefix hash, all keyed hashes)::

    votesvc:{C:otp}:code:PH         hash  the live one-time code: its keyed hash, wrong
                                    tries; expires with the code
    votesvc:{C:otp}:cool:PH         string, present during the resend cooldown
    votesvc:{C:otp}:sends:DAY:PH    string, codes sent to the phone that campaign day
    votesvc:{C:otp}:ip:HOUR:IPH     string, codes sent for the IP in that clock hour
    votesvc:{C:otp}:px:HOUR:PXH     string, codes sent for the prefix in that clock hour
    votesvc:{C:otp}:try:HOUR:IPH    string, verify attempts from the IP in that clock hour
    votesvc:{C:otp}:budget:MINUTE   string, codes sent by the whole campaign that minute
    votesvc:{C:otp}:pow:CHALLENGE   string, a proof of work already used (until it expires)
    votesvc:{C:otp}:stats:DAY       hash  sent / verified -> count, per campaign day

The ledger flusher reads every stream through the consumer group ``ledger``.
"""

from __future__ import annotations

__all__ = ["PHONE_KEY_CHARS", "Keys"]

PREFIX = "votesvc"
# A phone's day record is keyed by this many hex digits of its HMAC (64 bits):
# collisions within one shard and day are negligible at millions of phones.
PHONE_KEY_CHARS = 16


class Keys:
    """Key names for one campaign split into ``shards`` counter shards."""

    __slots__ = ("_ip_prefix", "_otp_prefix", "_shard_prefixes", "campaign_id", "shards")

    def __init__(self, campaign_id: str, shards: int) -> None:
        if shards < 1:
            raise ValueError("shards must be >= 1")
        self.campaign_id = campaign_id
        self.shards = shards
        self._shard_prefixes = tuple(
            f"{PREFIX}:{{{campaign_id}:s{shard:02d}}}:" for shard in range(shards)
        )
        self._ip_prefix = f"{PREFIX}:{{{campaign_id}:ip:"
        self._otp_prefix = f"{PREFIX}:{{{campaign_id}:otp}}:"

    def shard_of(self, phone_hash: str) -> int:
        """The counter shard that holds a phone's state (``phone_hash`` is hex)."""
        return int(phone_hash[:8], 16) % self.shards

    @staticmethod
    def phone_key(phone_hash: str) -> str:
        return phone_hash[:PHONE_KEY_CHARS]

    def tally(self, shard: int) -> str:
        return self._shard_prefixes[shard] + "tally"

    def stream(self, shard: int) -> str:
        return self._shard_prefixes[shard] + "votes"

    def day(self, shard: int, day: str) -> str:
        return self._shard_prefixes[shard] + "day:" + day

    def marker(self, shard: int) -> str:
        return self._shard_prefixes[shard] + "marker"

    def markers(self) -> list[str]:
        return [self.marker(shard) for shard in range(self.shards)]

    def meta(self) -> str:
        """The mirror of the ledger's campaign_meta row."""
        return f"{PREFIX}:{{{self.campaign_id}:meta}}"

    def otp_code(self, phone_key: str) -> str:
        return f"{self._otp_prefix}code:{phone_key}"

    def otp_cooldown(self, phone_key: str) -> str:
        return f"{self._otp_prefix}cool:{phone_key}"

    def otp_phone_sends(self, day: str, phone_key: str) -> str:
        return f"{self._otp_prefix}sends:{day}:{phone_key}"

    def otp_ip_sends(self, hour: int, ip_hash: str) -> str:
        return f"{self._otp_prefix}ip:{hour}:{ip_hash}"

    def otp_prefix_sends(self, hour: int, prefix_hash: str) -> str:
        return f"{self._otp_prefix}px:{hour}:{prefix_hash}"

    def otp_tries(self, hour: int, ip_hash: str) -> str:
        return f"{self._otp_prefix}try:{hour}:{ip_hash}"

    def otp_budget(self, minute: int) -> str:
        return f"{self._otp_prefix}budget:{minute}"

    def otp_pow(self, challenge: str) -> str:
        return f"{self._otp_prefix}pow:{challenge}"

    def otp_stats(self, day: str) -> str:
        return f"{self._otp_prefix}stats:{day}"

    def ip_window(self, ip_hash: str, window: int) -> str:
        return f"{self._ip_prefix}{ip_hash}}}:{window}"

    def tallies(self) -> list[str]:
        return [self.tally(shard) for shard in range(self.shards)]

    def streams(self) -> list[str]:
        return [self.stream(shard) for shard in range(self.shards)]

    def snapshot_lock(self) -> str:
        """Held by the flusher that writes this interval's tally snapshot."""
        return f"{PREFIX}:{{{self.campaign_id}:ledger}}:snapshot-lock"

    def flushers(self) -> str:
        """The running flushers' heartbeats: consumer name -> last seen (Redis time, ms)."""
        return f"{PREFIX}:{{{self.campaign_id}:ledger}}:flushers"
