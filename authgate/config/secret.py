"""A secret configuration value that never prints itself (repr, str, logs)."""
from __future__ import annotations

import hmac


class Secret:
    """A secret string that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(other._value.encode(),
                                                                 self._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)
