"""Human-typable random codes shared by recovery and enrolment codes.

The alphabet has 32 symbols (5 bits each) and leaves out ``0 o 1 l``, which people misread.
Input is normalised before any comparison: case, spaces and dashes do not matter.
"""
from __future__ import annotations

import secrets
from typing import Final

ALPHABET: Final = "23456789abcdefghijkmnpqrstuvwxyz"
BITS_PER_SYMBOL: Final = 5
_SYMBOLS: Final = frozenset(ALPHABET)

assert len(ALPHABET) == 2**BITS_PER_SYMBOL and not _SYMBOLS & set("01lo")


def random_code(*, groups: int, group_size: int) -> str:
    """``groups`` groups of ``group_size`` symbols joined by dashes, e.g. ``k7qm-2xv9-hf3c``."""
    return "-".join("".join(secrets.choice(ALPHABET) for _ in range(group_size))
                    for _ in range(groups))


def normalise_code(code: str, *, length: int) -> str | None:
    """The canonical form (lower case, no spaces or dashes), or None if it cannot be a code.

    Refusing early keeps over-long or foreign input away from argon2 and HMAC.
    """
    if not isinstance(code, str) or len(code) > 4 * length:
        return None
    compact = "".join(code.split()).replace("-", "").lower()
    if len(compact) != length or not set(compact) <= _SYMBOLS:
        return None
    return compact
