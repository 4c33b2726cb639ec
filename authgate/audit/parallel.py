"""Run a function over parts in forked worker processes (verification of 1,000,000+ records
is CPU-bound: the MAC of each record, and decoding its columns)."""
from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
_TASK: Callable[[Any], Any] | None = None


def _run(part: Any) -> Any:
    assert _TASK is not None
    return _TASK(part)


def parallel_map(task: Callable[[Any], T], parts: Sequence[Any], *, jobs: int) -> list[T]:
    """``[task(p) for p in parts]``, in forked children when ``jobs > 1``. The children
    inherit ``task`` (keys included) by fork; nothing secret is pickled or sent. The first
    exception raised by a part, in part order, is raised here."""
    global _TASK
    if jobs <= 1 or len(parts) <= 1:
        return [task(p) for p in parts]
    _TASK = task
    try:
        with multiprocessing.get_context("fork").Pool(min(jobs, len(parts))) as pool:
            return pool.map(_run, parts, chunksize=1)
    finally:
        _TASK = None
