"""Appending signed checkpoints to the witness (``audit.witness``, docs/audit.md "Witness").

Each line is appended with one ``write()`` on an ``O_APPEND`` descriptor under an exclusive
``flock`` of the file (so several processes, and hosts on a share whose locks work, never
interleave lines, however long a line is), then ``fsync``. The write happens on a daemon
thread: a slow or hung share never blocks a login. A failed write keeps the line and
retries it before the next one, so an outage loses nothing once the share is back; it is
logged, counted (``authgate_audit_witness_failed_total``), shown by ``health()`` (``/readyz``
reports it as degraded, not down) and reported once per outage through ``on_change``.
"""
from __future__ import annotations

import fcntl
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import Counter

from authgate.audit.checkpoints import Checkpoint
from authgate.audit.witness import witness_line, witness_target

_log = logging.getLogger("authgate.audit.witness")
FAILED = Counter("authgate_audit_witness_failed_total",
                 "Signed checkpoints that could not be appended to the witness (retried)")
_PENDING_MAX = 10_000


@dataclass(frozen=True)
class WitnessHealth:
    target: str
    ok: bool
    pending: int
    error: str


class WitnessWriter:
    """Appends witness lines; ``on_change(ok, error)`` is called when an outage starts or
    ends (the audit log records it once per outage)."""

    def __init__(self, path: str | Path,
                 on_change: Callable[[bool, str], None] | None = None) -> None:
        self.path = str(path)
        self.on_change = on_change
        self._pending: list[bytes] = []
        self._ok, self._error = True, ""
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def append(self, cp: Checkpoint) -> None:
        """Queue the checkpoint's line; never blocks and never raises."""
        if os.getpid() != self._pid or self._thread is None:
            self._start()
        self._idle.clear()
        self._queue.put(witness_line(cp))

    def _start(self) -> None:
        self._pid = os.getpid()
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="audit-witness", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            line = self._queue.get()
            if line is None:
                return
            with self._lock:
                self._pending = [*self._pending, line][-_PENDING_MAX:]
            self.flush()
            if self._queue.empty():
                self._idle.set()

    def flush(self) -> bool:
        """Write every pending line; True when none is left."""
        with self._lock:
            lines = list(self._pending)
        if not lines:
            return True
        try:
            write_lines(witness_target(self.path), lines)
        except OSError as exc:
            FAILED.inc()
            self._changed(False, f"{type(exc).__name__}: {exc.strerror or exc}")
            return False
        with self._lock:
            self._pending = self._pending[len(lines):]
        self._changed(True, "")
        return True

    def _changed(self, ok: bool, error: str) -> None:
        with self._lock:
            was, self._ok, self._error = self._ok, ok, error
        if was == ok:
            return
        if ok:
            _log.warning("audit witness %s writable again", self.path)
        else:
            _log.error("audit witness %s not writable: %s", self.path, error)
        if self.on_change is not None:
            try:
                self.on_change(ok, error)
            except Exception:  # noqa: BLE001 - reporting must not stop the witness
                _log.exception("audit witness outage could not be recorded")

    def health(self) -> WitnessHealth:
        with self._lock:
            return WitnessHealth(self.path, self._ok, len(self._pending), self._error)

    def wait_idle(self, timeout: float) -> bool:
        return self._idle.wait(timeout)

    def close(self, timeout: float = 2.0) -> None:
        if self._thread is not None and os.getpid() == self._pid:
            self.wait_idle(timeout)
            self._queue.put(None)


def write_lines(target: Path, lines: list[bytes]) -> None:
    """Append ``lines`` with one ``write`` under ``flock``, then ``fsync``."""
    data = b"".join(lines)
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(data)
        while view:  # a short write is finished under the same lock: lines stay whole
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
