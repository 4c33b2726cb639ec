"""AD's ``lockoutThreshold`` and ``lockOutObservationWindow``, read with the service account
and cached, so an administrator's change to the domain policy reaches authgate within
``ttl`` without a read per login (MS-ADTS 3.1.1.5.3)."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from authgate.clock import Clock
from authgate.errors import AuthgateError
from authgate.regulation.limits import AdBudget, LockoutMargin, ad_budget, check_lockout_margin

_log = logging.getLogger("authgate.regulation")
ReadPolicy = Callable[[], tuple[int, timedelta]]


class AdPolicyUnknown(AuthgateError):
    """The domain lockout policy was never read: binds are refused (fail closed)."""

    reason = "ad_policy_unavailable"


class AdLockoutSource:
    """``budget()`` is None without AD (file directory) or when AD never locks."""

    def __init__(self, read: ReadPolicy | None, *, clock: Clock,
                 ttl: timedelta = timedelta(minutes=10)) -> None:
        self._read = read
        self._clock = clock
        self._ttl = ttl
        self._lock = threading.Lock()
        self._value: tuple[int, timedelta] | None = None
        self._read_at: datetime | None = None

    @property
    def present(self) -> bool:
        return self._read is not None

    def policy(self) -> tuple[int, timedelta] | None:
        """(threshold, observation window); the last good value when a refresh fails."""
        if self._read is None:
            return None
        now = self._clock.now()
        with self._lock:
            if self._read_at is None or now - self._read_at >= self._ttl:
                try:
                    self._value = self._read()
                    self._read_at = now
                except AuthgateError as exc:
                    if self._value is None:
                        raise AdPolicyUnknown(f"domain lockout policy unreadable: {exc}") from exc
                    _log.warning("keeping the last domain lockout policy: %s", exc)
            return self._value

    def budget(self) -> AdBudget | None:
        value = self.policy()
        return None if value is None else ad_budget(*value)


def lockout_margin(directory: object, regulation: object) -> LockoutMargin | None:
    """Read the domain policy and check the policy's per-user limit against it; None for a
    directory without AD lockout (file). Raises the directory's error when AD is down.
    Called at start-up (logged) and by ``authgate check-config`` (an error fails it)."""
    read = getattr(directory, "domain_lockout_policy", None)
    if read is None:
        return None
    threshold, window = read()
    return check_lockout_margin(regulation.max_failures_per_user,  # type: ignore[attr-defined]
                                threshold, ad_window=window,
                                policy_window=regulation.window)  # type: ignore[attr-defined]
