"""Recovery (look-up secret) codes: NIST 63B §5.1.2, ASVS 2.6.1-2.6.3.

Codes are shown once, stored only as argon2id hashes, and each is usable once: the caller
deletes or marks the matched ``code_id`` in the same transaction that accepts it. Each code
carries 60 bits from ``secrets`` (63B §5.1.2.1 asks for at least 20 bits when throttled;
ASVS 2.6.2 for at least 112 bits of entropy *or* at least 20 with a salted slow hash - we
do both, slow hash and well above 20).

Verification tries every stored hash, so it costs up to N argon2 verifications (N = unused
codes, at most 10): argon2 hashes are salted, so a lookup by hash is impossible. With the
default argon2-cffi parameters that is a few hundred milliseconds at worst, on a rare path,
and the caller's per-user throttle bounds it.
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from authgate.factors.codes import BITS_PER_SYMBOL, normalise_code, random_code
from authgate.factors.errors import InvalidRecoveryCode

GROUPS: Final = 3
GROUP_SIZE: Final = 4
LENGTH: Final = GROUPS * GROUP_SIZE
ENTROPY_BITS: Final = LENGTH * BITS_PER_SYMBOL  # 60

IdT = TypeVar("IdT", bound=Hashable)


@dataclass(frozen=True, slots=True)
class VerifiedRecoveryCode(Generic[IdT]):
    """The code matched ``code_id``: the caller must consume it now (single use)."""

    code_id: IdT
    #: the stored hash uses weaker parameters than ``hasher``; moot once consumed
    needs_rehash: bool


def generate_recovery_codes(count: int = 10) -> tuple[str, ...]:
    """``count`` distinct fresh codes like ``k7qm-2xv9-hf3c`` (60 bits each)."""
    if not 1 <= count <= 100:
        raise ValueError("count must be between 1 and 100")
    codes: dict[str, None] = {}
    while len(codes) < count:
        codes[random_code(groups=GROUPS, group_size=GROUP_SIZE)] = None
    return tuple(codes)


def hash_recovery_code(code: str, *, hasher: PasswordHasher) -> str:
    """The argon2id hash of the normalised code, for storage."""
    canonical = normalise_code(code, length=LENGTH)
    if canonical is None:
        raise ValueError("not a recovery code")
    return hasher.hash(canonical)


def verify_recovery_code(*, code: str, hashes: Sequence[tuple[IdT, str]],
                         hasher: PasswordHasher) -> VerifiedRecoveryCode[IdT]:
    """Find the stored, unused code that ``code`` matches, or raise
    :class:`InvalidRecoveryCode`. Malformed input is refused without hashing."""
    canonical = normalise_code(code, length=LENGTH)
    if canonical is None:
        raise InvalidRecoveryCode(detail="malformed recovery code")
    for code_id, stored in hashes:
        try:
            hasher.verify(stored, canonical)
        except (VerificationError, InvalidHashError):
            continue  # a mismatch, or a corrupt row that can never match
        return VerifiedRecoveryCode(code_id=code_id,
                                    needs_rehash=hasher.check_needs_rehash(stored))
    raise InvalidRecoveryCode()
