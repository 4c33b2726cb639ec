"""A secret configuration value that never prints itself (repr, str, logs).

A key file may hold **several keys, one per line**: the first is the key in use, the lines
below it are earlier keys kept for reading only (what they signed or sealed before a
rotation still checks). ``authgate keys rotate`` writes files of this shape
(docs/deployment.md, "Rotating keys"); a file with one line is a single key, as before.
"""
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
        """The key in use: the first line (later lines are :meth:`older` keys)."""
        return self._value.strip().split("\n", 1)[0].strip()

    def older(self) -> tuple[str, ...]:
        """Earlier keys, newest first: the non-blank lines after the first. Kept so that
        what they signed before a rotation still verifies (cryptography's MultiFernet
        idea: one key writes, every listed key reads)."""
        lines = [line.strip() for line in self._value.strip().splitlines()]
        return tuple(line for line in lines[1:] if line)

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
