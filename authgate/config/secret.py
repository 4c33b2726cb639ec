"""A secret configuration value that never prints itself (repr, str, logs)."""
from __future__ import annotations

import hmac


class Secret:
    """A secret string that does not print itself."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, *, source: str = "") -> None:
        self._value = value
        #: the ``*_file`` it was read from (absolute), or "" for an inline/env value
        self.source = source

    def reveal(self) -> str:
        return self._value

    def current(self) -> str:
        """The value now: a secret from a file is read again (a fixed file takes effect
        without a restart). Raises ``OSError`` when the file cannot be read."""
        if not self.source:
            return self._value
        with open(self.source, encoding="utf-8") as f:
            return f.read().strip()

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(other._value.encode(),
                                                                 self._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)
