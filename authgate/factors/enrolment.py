"""Admin-issued enrolment codes (ASVS 2.3.1, NIST 63B §6.1.2.1).

A user with no factor may bind one only with a code an administrator issued for them, so a
stolen directory password alone can never enrol an attacker's authenticator. Codes carry 80
bits from ``secrets`` (ASVS asks >= 40) in dash-separated groups a person can read aloud.

They are stored as HMAC-SHA256 under a server key kept outside the database: a database leak
yields neither codes nor, unlike a plain hash, anything to brute-force offline. The hash is
deterministic, so the caller may look the code up by it. Expiry, single use and the binding
to one user are the caller's (the store's) job; this module only proves the code.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Final

from authgate.factors.codes import BITS_PER_SYMBOL, normalise_code, random_code
from authgate.factors.errors import InvalidCode

GROUPS: Final = 4
GROUP_SIZE: Final = 4
LENGTH: Final = GROUPS * GROUP_SIZE
ENTROPY_BITS: Final = LENGTH * BITS_PER_SYMBOL  # 80
MIN_KEY_BYTES: Final = 32
_DOMAIN: Final = b"authgate-enrolment-code-v1\x00"


def new_enrolment_code() -> str:
    """A fresh code like ``k7qm-2xv9-hf3c-8dpa``: show it to the admin once, store the hash."""
    return random_code(groups=GROUPS, group_size=GROUP_SIZE)


def hash_enrolment_code(code: str, *, key: bytes) -> str:
    """Hex HMAC-SHA256 of the normalised code, keyed with the server's enrolment key."""
    canonical = normalise_code(code, length=LENGTH)
    if canonical is None:
        raise InvalidCode(detail="malformed enrolment code")
    return _mac(canonical, key)


def verify_enrolment_code(*, code: str, expected_hash: str, key: bytes) -> None:
    """Return if ``code`` hashes to ``expected_hash`` (constant-time), else raise
    :class:`InvalidCode`."""
    canonical = normalise_code(code, length=LENGTH)
    if canonical is None:
        raise InvalidCode(detail="malformed enrolment code")
    if not hmac.compare_digest(_mac(canonical, key).encode("ascii"),
                               expected_hash.encode("utf-8")):
        raise InvalidCode()


def _mac(canonical: str, key: bytes) -> str:
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the enrolment key must be at least {MIN_KEY_BYTES} bytes")
    return hmac.new(key, _DOMAIN + canonical.encode("ascii"), hashlib.sha256).hexdigest()
