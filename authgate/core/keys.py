"""Per-purpose keys derived from one configured secret, so operators manage a single secret.

HKDF-SHA256 (RFC 5869) with ``info = b"authgate/" + purpose``: keys for different purposes
(enrolment-code hashing, regulation counters, ...) are independent, and learning one reveals
nothing about the secret or the others. The audit chain has its own one-argument
``audit.chain.chain_key``: a different construction, kept apart by name.
"""
from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_subkey(secret: str, purpose: bytes) -> bytes:
    """A 32-byte key for ``purpose`` from ``secret`` (HKDF, RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"authgate/" + purpose).derive(secret.encode())
