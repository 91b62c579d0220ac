"""Key layout: every key one script call touches shares one cluster hash slot."""

from __future__ import annotations

from redis.crc import key_slot

from votesvc.keys import Keys
from votesvc.phones import hash_phone


def slot(key: str) -> int:
    return key_slot(key.encode())


def test_a_phones_keys_share_the_slot_of_its_counter_shard_and_stream() -> None:
    keys = Keys("craftsman-2026", 16)
    for n in range(500):
        phone_hash = hash_phone(b"secret", f"139{n:08d}")
        shard = keys.shard_of(phone_hash)
        slots = {
            slot(keys.day(shard, "20261121")),
            slot(keys.tally(shard)),
            slot(keys.stream(shard)),
        }
        assert len(slots) == 1


def test_an_ips_window_keys_share_a_slot() -> None:
    keys = Keys("craftsman-2026", 16)
    for ip_hash in ("0123456789abcdef", "fedcba9876543210"):
        assert slot(keys.ip_window(ip_hash, 100)) == slot(keys.ip_window(ip_hash, 99))


def test_counter_shards_spread_over_slots_and_phones_over_shards() -> None:
    keys = Keys("craftsman-2026", 16)
    assert len({slot(key) for key in keys.tallies()}) == 16
    shards = {keys.shard_of(hash_phone(b"secret", f"139{n:08d}")) for n in range(1000)}
    assert shards == set(range(16))


def test_keys_carry_the_campaign_and_no_phone_number() -> None:
    keys = Keys("craftsman-2026", 4)
    phone_hash = hash_phone(b"secret", "13800138000")
    key = keys.day(keys.shard_of(phone_hash), "20261121")
    assert key.startswith("votesvc:{craftsman-2026:s")
    phone_key = keys.phone_key(phone_hash)  # the day hash's field for this phone
    assert phone_key == phone_hash[:16]
    assert "13800138000" not in phone_key


def test_the_ledgers_own_keys_share_one_slot() -> None:
    keys = Keys("craftsman-2026", 16)
    assert slot(keys.flushers()) == slot(keys.snapshot_lock())
    assert keys.flushers().startswith("votesvc:{craftsman-2026:ledger}:")
