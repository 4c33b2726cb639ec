"""SQLite WAL checkpoints off the request path (issue 20 item 3).

A connection that commits past ``wal_autocheckpoint`` pages copies the WAL back into the
database file and fsyncs it inside that commit. On the hot path that was one ``/verify`` in
a few thousand waiting 10-20 ms, and with it every request queued behind its worker (the
p99). So the hot-path connections checkpoint only as a backstop (``BACKSTOP_PAGES``), and
each process that uses them runs one daemon thread that asks for a PASSIVE checkpoint every
``EVERY`` seconds on a connection of its own: it copies what no reader still needs, never
waits for a lock, never blocks a writer, and sqlite3 releases the GIL while it works, so the
request thread goes on. Should the thread stall, the backstop still bounds the WAL.

Fork safety: a fork must not copy the thread inside SQLite (it could hold one of SQLite's
process-wide mutexes, and the child would hang on its next open: a test's forked
``audit verify --jobs`` did, before every call below took the lock). Every SQLite call of
the thread (open, checkpoint, close) runs under a lock that every fork takes first
(``os.register_at_fork``); the child starts its own thread when it first opens a hot-path
connection.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from typing import Any

from authgate.storage.engine import DatabaseFile

EVERY = 1.0
#: the hot-path connections' own ``wal_autocheckpoint`` (pages: 64 MiB of WAL at 2 KiB)
BACKSTOP_PAGES = 32_000
_log = logging.getLogger("authgate.storage")
_FORK_LOCK = threading.Lock()  # held by a checkpoint; taken by every fork
os.register_at_fork(before=_FORK_LOCK.acquire, after_in_parent=_FORK_LOCK.release,
                    after_in_child=_FORK_LOCK.release)


class WalCheckpointer:
    """One per database file and process (``ensure_running`` restarts it after a fork)."""

    def __init__(self, file: DatabaseFile, *, every: float = EVERY) -> None:
        self._file = file
        self._every = every
        self._pid = 0
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def ensure_running(self) -> None:
        """Start this process's thread unless it runs (cheap: called per new connection)."""
        with self._start:
            thread = self._thread
            if self._pid == os.getpid() and thread is not None and thread.is_alive():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=_run, args=(weakref.ref(self), self._every),
                                            name="authgate-wal-checkpoint", daemon=True)
            self._thread.start()

    def checkpoint(self, conn: sqlite3.Connection | None) -> sqlite3.Connection:
        """One PASSIVE checkpoint on ``conn`` (opened first if None; returned). Call it
        holding ``_FORK_LOCK``: opening, closing and checkpointing all take SQLite's
        process-wide mutexes."""
        self._file.check()  # never checkpoint (or create) a file that was replaced
        if conn is None:  # its own connection; ``mode=rw`` never creates a missing file
            conn = sqlite3.connect(f"file:{self._file.path}?mode=rw", uri=True,
                                   isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return conn


def _run(owner: weakref.ref[WalCheckpointer], every: float) -> None:
    """The thread: ends with its checkpointer (the engine went away) or its file. Every
    SQLite call is made holding ``_FORK_LOCK`` (see the module)."""
    conn: Any = None
    try:
        while True:
            time.sleep(every)
            checkpointer = owner()
            if checkpointer is None:
                break
            try:
                with _FORK_LOCK:
                    conn = checkpointer.checkpoint(conn)
            except Exception as exc:  # noqa: BLE001 - a background thread has no caller
                _log.warning("WAL checkpoint failed (%s); the thread stops, the hot "
                             "path's own checkpoints bound the WAL", type(exc).__name__)
                break
            finally:
                del checkpointer
    finally:
        if conn is not None:
            with _FORK_LOCK:
                conn.close()

