"""A pending policy change against the set in force, file by file (issue 19 item 4): what
the admin console shows a reviewer before `authgate policy approve`.

Pure: the two sets' ``sources`` (file name and the very bytes each digest covers) in, a
readable unified diff per file out (``difflib``), bounded so a rewritten file cannot make the
page unbounded.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

#: diff lines kept per file; the rest is counted
MAX_LINES = 400


@dataclass(frozen=True)
class FileDiff:
    """One file that differs: ``added``, ``removed`` or ``changed``; its diff lines (each
    starting with ``+``, ``-``, `` `` or ``@@``) and how many more were left out."""

    name: str
    status: str
    lines: tuple[str, ...]
    left_out: int
    added: int
    removed: int


def policy_diff(in_force: tuple[tuple[str, bytes], ...], pending: tuple[tuple[str, bytes], ...],
                *, max_lines: int = MAX_LINES) -> tuple[FileDiff, ...]:
    """Every file whose bytes differ, in file-name order (the order rules are read)."""
    old, new = dict(in_force), dict(pending)
    out = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        status = "added" if before is None else "removed" if after is None else "changed"
        lines = list(difflib.unified_diff(
            _text(before), _text(after), fromfile=f"in force/{name}",
            tofile=f"pending/{name}", lineterm="", n=3))[2:]  # the two header lines
        added = sum(1 for line in lines if line.startswith("+"))
        removed = sum(1 for line in lines if line.startswith("-"))
        out.append(FileDiff(name, status, tuple(lines[:max_lines]),
                            max(0, len(lines) - max_lines), added, removed))
    return tuple(out)


def _text(data: bytes | None) -> list[str]:
    return [] if data is None else data.decode("utf-8", "replace").splitlines()
