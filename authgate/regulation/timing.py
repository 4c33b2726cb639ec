"""A floor under the failure path's response time (no user enumeration, no ban oracle).

An unknown AD user costs no bind and a banned source costs no directory call at all, so both
answer measurably faster than a wrong password (ASVS 2.2.1, OWASP "authentication responses").
Every failed password step is padded to a high quantile (default p90) of the durations of
recent real failed binds. Padding to the median would not do: the median of
``max(real, median)`` is well above the median itself, so the real path would stay slower.
Padded to p90, all three paths share one median, and only one real failure in ten is
slower than the floor; the padding is measured only from real binds, so it cannot drift
upwards by itself. Successes are never padded (they are told apart by the session anyway).
``NoFloor`` is the null object for tests that measure nothing (never an ``enabled`` flag).

The samples live in each worker process and start empty: right after a restart, an unknown
name (no bind) answered faster than a real one until that worker had seen a real failed
bind (issue 15 item 9). So every portal worker seeds its floor at start (``seed_from``) with
the slowest of a few dummy verifications shaped like a real failure (a refused AD bind for
a DN that names no account, or the file directory's dummy argon2id), which count against
no account. The seed stays a lower bound until ``trusted_after`` real samples are in: a
quantile of one or two samples says little (a single fast bind would lower the floor below
what an unknown name costs), then the real samples alone decide.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol


class Floor(Protocol):
    """What the regulator needs of a failure floor."""

    monotonic: Callable[[], float]

    def observe(self, seconds: float) -> None: ...

    def floor(self) -> float: ...

    def seed(self, seconds: float) -> None: ...

    def pad(self, started: float) -> float: ...


class FailureFloor:
    """A quantile of the last ``samples`` failed-bind durations, in seconds."""

    def __init__(self, *, samples: int = 101, quantile: float = 0.9, ceiling: float = 2.0,
                 initial: float = 0.0, trusted_after: int = 10,
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._samples: deque[float] = deque(maxlen=samples)
        self._lock = threading.Lock()
        self._ceiling = ceiling
        self._quantile = quantile
        self._initial = initial
        self._trusted_after = trusted_after
        self._sleep = sleep
        self.monotonic = monotonic

    def observe(self, seconds: float) -> None:
        if 0 <= seconds <= self._ceiling:
            with self._lock:
                self._samples.append(seconds)

    def floor(self) -> float:
        with self._lock:
            if not self._samples:
                return self._initial
            ordered = sorted(self._samples)
        index = min(len(ordered) - 1, int(self._quantile * len(ordered)))
        measured = ordered[index]
        if len(ordered) < self._trusted_after:  # too few real binds yet: the seed still holds
            measured = max(measured, self._initial)
        return min(measured, self._ceiling)

    def seed(self, seconds: float) -> None:
        """The floor until the first real sample (never lowered, never above the ceiling)."""
        with self._lock:
            self._initial = max(self._initial, min(max(seconds, 0.0), self._ceiling))

    def pad(self, started: float) -> float:
        """Sleep until ``started + floor``; returns the time slept."""
        remaining = started + self.floor() - self.monotonic()
        if remaining > 0:
            self._sleep(remaining)
            return remaining
        return 0.0


def seed_from(floor: Floor, probe: Callable[[], object], *, runs: int = 3) -> float:
    """Seed ``floor`` with the slowest of ``runs`` timed calls of ``probe`` (a dummy
    verification that fails like a wrong password). Returns the seed, in seconds."""
    slowest = 0.0
    for _ in range(runs):
        started = floor.monotonic()
        probe()
        slowest = max(slowest, floor.monotonic() - started)
    floor.seed(slowest)
    return slowest


class NoFloor:
    """Pads nothing and learns nothing: for tests whose subject is not timing."""

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic

    def observe(self, seconds: float) -> None:
        return None

    def floor(self) -> float:
        return 0.0

    def seed(self, seconds: float) -> None:
        return None

    def pad(self, started: float) -> float:
        return 0.0
