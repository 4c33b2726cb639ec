"""A floor under the failure path's response time (no user enumeration, no ban oracle).

An unknown AD user costs no bind and a banned source costs no directory call at all, so both
answer measurably faster than a wrong password (ASVS 2.2.1 / 3.x, OWASP "authentication
responses"). Every failed password step is padded to the moving median of real failed binds;
real failures at or above the median are left alone, so the padding costs nothing on the
typical path and the median never drifts upwards on its own.
"""
from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable


class FailureFloor:
    """The median of the last ``samples`` failed-bind durations, in seconds."""

    def __init__(self, *, samples: int = 63, ceiling: float = 2.0, initial: float = 0.0,
                 enabled: bool = True, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._samples: deque[float] = deque(maxlen=samples)
        self._lock = threading.Lock()
        self._ceiling = ceiling
        self._initial = initial
        self.enabled = enabled
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
            return min(statistics.median(self._samples), self._ceiling)

    def pad(self, started: float) -> float:
        """Sleep until ``started + floor``; returns the time slept."""
        if not self.enabled:
            return 0.0
        remaining = started + self.floor() - self.monotonic()
        if remaining > 0:
            self._sleep(remaining)
            return remaining
        return 0.0
