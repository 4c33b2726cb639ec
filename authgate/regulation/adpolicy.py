"""AD's ``lockoutThreshold`` and ``lockOutObservationWindow``, read with the service account
and cached, so an administrator's change to the domain policy reaches authgate within
``ttl`` without a read per login (MS-ADTS 3.1.1.5.3)."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from authgate.core.clock import Clock
from authgate.core.errors import AuthgateError
from authgate.directory import LockoutPolicySource
from authgate.regulation.limits import AdBudget, LockoutMargin, ad_budget, check_lockout_margin

_log = logging.getLogger("authgate.regulation")
ReadPolicy = Callable[[], tuple[int, timedelta]]


#: Until AD's policy has been read once: as if AD locked at 2 failures within an hour, i.e.
#: at most one failed bind per account per hour. LdapDirectory finds the user with the
#: service account before any bind, so while that account cannot read AD no bind is sent
#: anyway and the user gets the directory's "unavailable" answer, not a ban.
FALLBACK = (2, timedelta(hours=1))
RETRY_AFTER = timedelta(seconds=30)


class AdPolicyUnknown(AuthgateError):
    """The domain lockout policy was never read."""

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
        self._failed_at: datetime | None = None

    @property
    def present(self) -> bool:
        return self._read is not None

    def policy(self) -> tuple[int, timedelta] | None:
        """(threshold, observation window); the last good value when a refresh fails."""
        if self._read is None:
            return None
        now = self._clock.now()
        with self._lock:
            due = self._read_at is None or now - self._read_at >= self._ttl
            backing_off = self._failed_at is not None and now - self._failed_at < RETRY_AFTER
            if due and not backing_off:
                try:
                    self._value = self._read()
                    self._read_at, self._failed_at = now, None
                except AuthgateError as exc:
                    self._failed_at = now
                    _log.warning("domain lockout policy not read (%s): %s", "keeping the last"
                                 if self._value else "using the fallback", exc)
            if self._value is None:
                raise AdPolicyUnknown("domain lockout policy never read")
            return self._value

    def budget(self) -> AdBudget | None:
        try:
            value = self.policy()
        except AdPolicyUnknown:
            value = FALLBACK
        return None if value is None else ad_budget(*value)


def lockout_margin(source: LockoutPolicySource | None,
                   regulation: object) -> LockoutMargin | None:
    """Read the domain policy and check the policy's per-user limit against it; None for a
    directory without AD lockout (file). Raises the directory's error when AD is down.
    Called at start-up (logged) and by ``authgate check-config`` (an error fails it)."""
    if source is None:
        return None
    threshold, window = source.domain_lockout_policy()
    return check_lockout_margin(regulation.max_failures_per_user,  # type: ignore[attr-defined]
                                threshold, ad_window=window,
                                policy_window=regulation.window)  # type: ignore[attr-defined]
