"""Phone numbers: normalisation and the keyed hash that stands for them.

No raw phone number is stored anywhere: Redis keys, stream entries and ledger
rows hold ``phone_hash()``, an HMAC-SHA256 under the service secret.

Files that leave the organisation (``votesvc export``) hold a second keyed hash
of that stored hash, under a key for one *label* (``label_hasher()``): one
phone's votes stay linkable within and across files of one label, but not to
the stored hash, nor across labels, nor back to the number without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re

__all__ = ["PhoneHasher", "hash_phone", "label_hasher", "normalize_phone"]

_LABEL_DOMAIN = b"export-label:"  # keeps label keys apart from any other use of the secret

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_SEPARATORS = str.maketrans("", "", " -")
_DIGITS = frozenset("0123456789")
_SECOND = frozenset("3456789")


def normalize_phone(raw: str) -> str | None:
    """The 11-digit mainland mobile number in ``raw``, or None if it is not one.

    Accepts an optional ``+86`` or ``0086`` prefix; spaces and dashes are ignored.
    """
    # The usual case, a bare number, without the translation and the regex
    # (``str.isdigit`` would also accept other scripts' digits: compare sets).
    if len(raw) == 11 and raw[0] == "1" and raw[1] in _SECOND and _DIGITS.issuperset(raw):
        return raw
    number = raw.translate(_SEPARATORS)
    if number.startswith("+86"):
        number = number[3:]
    elif number.startswith("0086"):
        number = number[4:]
    return number if _MOBILE.fullmatch(number) else None


def hash_phone(secret: bytes, number: str) -> str:
    """The keyed hash (64 hex digits) of a normalised number: HMAC-SHA256 under ``secret``."""
    return PhoneHasher(secret)(number)


def label_hasher(secret: bytes, label: str) -> PhoneHasher:
    """HMAC-SHA256 of stored phone hashes under a key derived for ``label``.

    The key is ``HMAC-SHA256(secret, "export-label:" + label)``; the result of
    ``label_hasher(secret, label)(stored_hash)`` is 64 hex digits.
    """
    key = hmac.new(secret, _LABEL_DOMAIN + label.encode("utf-8"), hashlib.sha256).digest()
    return PhoneHasher(key)


class PhoneHasher:
    """HMAC-SHA256 of phone numbers under one secret (RFC 2104), as :func:`hash_phone`.

    The two padded-key blocks are hashed once here, so the vote path pays per
    number two copies and two short updates, not a whole ``hmac.new``.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, secret: bytes) -> None:
        block = hashlib.sha256().block_size
        key = hashlib.sha256(secret).digest() if len(secret) > block else secret
        key = key.ljust(block, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def __call__(self, number: str) -> str:
        inner = self._inner.copy()
        inner.update(number.encode("ascii"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()
