from __future__ import annotations

import hashlib
import hmac

import pytest

from votesvc.phones import PhoneHasher, hash_phone, label_hasher, normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("008613800138000", "13800138000"),
        (" 138-0013-8000 ", "13800138000"),
        ("+86 199 9999 9999", "19999999999"),
        ("12800138000", None),
        ("23800138000", None),
        ("1380013800", None),
        ("8613800138000", None),
        ("\uff11\uff13\uff18\uff10\uff10\uff11\uff13\uff18\uff10\uff10\uff10", None),
        ("138.0013.8000", None),
        ("1380013800\u0660", None),  # eleven characters, one an Arabic-Indic digit
        ("1380013800a", None),
        ("1 380013800", None),
        ("", None),
    ],
)
def test_normalize_phone(raw: str, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


def test_hash_is_keyed() -> None:
    one = hash_phone(b"a", "13800138000")
    assert len(one) == 64
    assert one == hash_phone(b"a", "13800138000")
    assert one != hash_phone(b"b", "13800138000")


@pytest.mark.parametrize("secret", [b"", b"k", b"x" * 64, b"y" * 65, b"z" * 200])
def test_phone_hasher_is_hmac_sha256(secret: bytes) -> None:
    hasher = PhoneHasher(secret)
    for number in ("13800138000", "19999999999"):
        expected = hmac.new(secret, number.encode(), hashlib.sha256).hexdigest()
        assert hasher(number) == expected
        assert hash_phone(secret, number) == expected


def test_label_hasher_is_hmac_of_the_stored_hash_under_a_key_for_the_label() -> None:
    secret, stored = b"s" * 64, hash_phone(b"s" * 64, "13800138000")
    key = hmac.new(secret, b"export-label:" + "审计-2026".encode(), hashlib.sha256).digest()
    labelled = label_hasher(secret, "审计-2026")(stored)
    assert labelled == hmac.new(key, stored.encode(), hashlib.sha256).hexdigest()
    assert labelled != stored
    assert labelled != label_hasher(secret, "审计-2027")(stored)
    assert labelled != label_hasher(b"t" * 64, "审计-2026")(stored)
