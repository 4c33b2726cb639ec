"""Run a function over parts in forked worker processes (verifying or exporting 1,000,000+
records is CPU-bound: the MAC of each record, and decoding its columns), split the records
into such parts, and keep the cyclic garbage collector out of such a pass."""
from __future__ import annotations

import gc
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from authgate.storage.interfaces import AuditStore
from authgate.storage.timeconv import to_micros

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


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for one bulk pass (forked workers inherit it): a
    pass allocates a tuple per row, and every few hundred allocations set off a collection
    that walks them, 5% of an export here. A pass makes no reference cycles; reference
    counting frees each batch, and collection resumes as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def id_spans(store: AuditStore, *, since: datetime | None, until: datetime | None,
             jobs: int, lead: float = 1.0) -> list[tuple[int, int | None]]:
    """The ids of the records with ``since <= ts < until`` in up to ``jobs`` spans
    ``(first, last)``, equal but for the first, ``lead`` times the others' size; one span
    (``last`` None: to the end) when there is nothing to split."""
    lo, hi = store.id_span(to_micros(since) if since else None,
                           to_micros(until) if until else None)
    if jobs <= 1:
        return [(lo, hi)]
    top = hi if hi is not None else store.max_id()
    # integers only: ids reach 2**63, where a float loses the last bits and the spans
    # would skip or repeat records depending on ``jobs`` (issue 16)
    total, weights = top - lo + 1, [round(lead * 1000)] + [1000] * (jobs - 1)
    cuts = [lo + total * sum(weights[:i]) // sum(weights) for i in range(jobs + 1)]
    bounds = [(a, min(top, b - 1)) for a, b in zip(cuts, cuts[1:], strict=False)]
    return [(a, b) for a, b in bounds if a <= b] or [(lo, hi)]
