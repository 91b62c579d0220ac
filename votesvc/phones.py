"""Phone numbers: normalisation and the keyed hash that stands for them.

No raw phone number is stored anywhere: Redis keys, stream entries and ledger
rows hold ``phone_hash()``, an HMAC-SHA256 under the service secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re

__all__ = ["hash_phone", "normalize_phone"]

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_SEPARATORS = str.maketrans("", "", " -")


def normalize_phone(raw: str) -> str | None:
    """The 11-digit mainland mobile number in ``raw``, or None if it is not one.

    Accepts an optional ``+86`` or ``0086`` prefix; spaces and dashes are ignored.
    """
    number = raw.translate(_SEPARATORS)
    if number.startswith("+86"):
        number = number[3:]
    elif number.startswith("0086"):
        number = number[4:]
    return number if _MOBILE.fullmatch(number) else None


def hash_phone(secret: bytes, number: str) -> str:
    """The keyed hash (64 hex digits) of a normalised number."""
    return hmac.new(secret, number.encode("ascii"), hashlib.sha256).hexdigest()
