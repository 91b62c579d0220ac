"""Keys derived from the service secret, one per purpose.

``VOTESVC_SECRET`` keys the phone hash; every other keyed use (the proof-of-work
challenges, votesvc's voter tokens, the stored one-time codes) takes its own
key, derived here, so that no two uses ever share a key and a value made for
one purpose is worthless for another.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["derive_key"]

_DOMAIN = b"votesvc-key:"


def derive_key(secret: bytes, purpose: str) -> bytes:
    """HMAC-SHA256(secret, "votesvc-key:" + purpose): 32 bytes for ``purpose`` alone."""
    return hmac.new(secret, _DOMAIN + purpose.encode("utf-8"), hashlib.sha256).digest()
