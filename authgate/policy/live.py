"""The policy set in force: loaded at start, reloaded on SIGHUP or file change, and with
``require_approval`` only ever an approved digest (issue: reviewed policies).

A reload that fails (invalid or unapproved) keeps the last good set in force and reports the
rejection; in-flight requests keep the object they started with (sets are immutable and
swapped whole).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from authgate.core.errors import PolicyError
from authgate.policy import PolicySet
from authgate.policy.files import compute_digest, load_policy_set
from authgate.policy.files.approval import require_approved

_log = logging.getLogger("authgate.policy")


@dataclass(frozen=True)
class ReloadResult:
    changed: bool
    digest: str
    rejected_digest: str = ""
    problems: tuple[str, ...] = ()


class PolicyRuntime:
    def __init__(self, directory: Path, *, require_approval: bool,
                 on_reload: Callable[[ReloadResult], None] | None = None) -> None:
        self.directory = Path(directory)
        self.require_approval = require_approval
        self._on_reload = on_reload
        self._lock = threading.Lock()
        self._fingerprint = self._stat()
        self._current = self._load()  # raises: an invalid or unapproved set never starts
        self.rejected: ReloadResult | None = None
        self._next_look = 0.0
        self._forced = False

    @property
    def current(self) -> PolicySet:
        return self._current

    def _load(self) -> PolicySet:
        policy_set = load_policy_set(self.directory)
        if self.require_approval:
            require_approved(policy_set, self.directory)
        return policy_set

    def _stat(self) -> tuple[tuple[str, int, int], ...]:
        """A cheap fingerprint of the policy files (name, size, mtime) to notice edits."""
        try:
            entries = sorted(os.scandir(self.directory), key=lambda e: e.name)
        except OSError:
            return ()
        return tuple((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries
                     if e.is_file() and e.name.endswith((".yaml", ".yml")))

    def request_reload(self) -> None:
        """Reload on the next ``maybe_reload``, whether or not the files look changed (what
        SIGHUP asks). Only sets flags: safe in a signal handler, which may interrupt a
        ``reload`` holding the (non-reentrant) lock in the same thread."""
        self._forced = True
        self._next_look = 0.0

    def maybe_reload(self) -> ReloadResult | None:
        """Reload if the files changed or a reload was requested; looks at most once a
        second, so it can run per request."""
        now = time.monotonic()
        if now < self._next_look:
            return None
        self._next_look = now + 1.0
        forced, self._forced = self._forced, False
        fingerprint = self._stat()
        if fingerprint == self._fingerprint and not forced:
            return None
        return self.reload(fingerprint)

    def reload(self, fingerprint: tuple[tuple[str, int, int], ...] | None = None
               ) -> ReloadResult:
        """Load the files again. Never raises: an invalid, unapproved, missing or unreadable
        set keeps the last good one in force, logged at ERROR and reported (audited)."""
        with self._lock:
            self._fingerprint = fingerprint if fingerprint is not None else self._stat()
            try:
                candidate = self._load()
            except (PolicyError, OSError) as exc:
                result = self._reject(exc)
            else:
                changed = candidate.digest != self._current.digest
                self._current = candidate
                self.rejected = None
                result = ReloadResult(changed, candidate.digest)
        self._report(result)
        return result

    def _reject(self, exc: PolicyError | OSError) -> ReloadResult:
        problems = tuple(exc.problems) if isinstance(exc, PolicyError) else (
            f"{self.directory}: cannot read the policy files ({type(exc).__name__}: "
            f"{exc.strerror or exc})",)
        try:
            rejected_digest = compute_digest(self.directory)
        except OSError:
            rejected_digest = ""
        result = ReloadResult(False, self._current.digest, rejected_digest=rejected_digest,
                              problems=problems)
        self.rejected = result
        _log.error("policy reload rejected; the last good set %s stays in force: %s",
                   self._current.digest[:16], "; ".join(problems)[:1000])
        return result

    def _report(self, result: ReloadResult) -> None:
        if self._on_reload is None:
            return
        try:
            self._on_reload(result)
        except Exception:  # noqa: BLE001 - a failed report must not undo the reload
            _log.critical("policy reload could not be audited", exc_info=True)
