"""Raw DB-API access for the few statements on the ``/verify`` hot path.

SQLAlchemy Core costs ~50-80 µs per statement here, more than SQLite itself; the session
lookup and the audit append run on every request to every protected app. One DB-API
connection per thread (and per process: re-opened after fork) runs prepared SQL directly,
and ``connections_for`` hands the *same* one to every hot-path store of an engine: with
SQLite, a connection that reads right after its own commit keeps its page cache, where a
second connection would find the WAL changed and drop its cache on every request.

SQLite's own busy handler sleeps at least 1 ms when another worker holds the write lock
for the ~30 µs of an insert, so these connections run with ``busy_timeout=0`` and retry a
busy transaction themselves after a short, growing pause (20 µs up to 1 ms), within the
same overall limit as every other connection. They run in autocommit mode: a lone insert
takes the write lock, commits and frees it inside one ``sqlite3_step``, during which Python
holds no GIL. In the default (implicit BEGIN) mode the lock stayed held from the insert to
the COMMIT, across the GIL's hand-back: in a portal process with dozens of threads that
wait could last a switch interval (5 ms) while every ``/verify`` worker waited for the
lock (issue 15 item 7). Several statements run between BEGIN IMMEDIATE and COMMIT.
Everything else keeps using SQLAlchemy. Errors become ``StorageError`` and the connection
is discarded.

PostgreSQL: each statement is a round trip, and psycopg in its default mode sends BEGIN
and COMMIT as two more, so a lookup and an append cost six. The hot-path connection runs in
autocommit mode instead (PostgreSQL runs a lone statement as its own transaction, with the
same atomicity and durability: docs "Transactions", SQL ``BEGIN``): a single-statement
``run`` is one round trip, and any other ``run`` is wrapped in an explicit BEGIN ... COMMIT.
A connection the server closed while it sat idle (a restart) is noticed before use without a
round trip (``_hung_up``) and replaced through the pool's pre-ping; one cut mid-statement
fails that statement (the caller denies) and is discarded.
"""
from __future__ import annotations

import os
import select
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Engine

from authgate.core.errors import StorageError
from authgate.storage.engine import SQLITE_BUSY_TIMEOUT_MS, database_file
from authgate.storage.wal_checkpoints import BACKSTOP_PAGES, WalCheckpointer

T = TypeVar("T")
_FIRST_PAUSE = 20e-6
_LONGEST_PAUSE = 1e-3
_SQLITE_BUSY = 5  # the primary code; extended codes (BUSY_SNAPSHOT, ...) share its low byte
_SHARED: weakref.WeakKeyDictionary[Engine, ThreadConnections] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()
#: hot-path connections inherited across fork(): never used, closed or garbage-collected
#: in the child (``ThreadConnections._let_go_inherited``)
_INHERITED: list[Any] = []


def connections_for(engine: Engine) -> ThreadConnections:
    """The engine's one set of hot-path connections (shared by its stores)."""
    with _SHARED_LOCK:
        found = _SHARED.get(engine)
        if found is None:
            found = _SHARED[engine] = ThreadConnections(engine)
        return found


def is_busy(exc: BaseException) -> bool:
    """SQLite's "database is locked": another connection holds the lock; worth a retry."""
    return isinstance(exc, sqlite3.Error) and exc.sqlite_errorcode & 0xFF == _SQLITE_BUSY


#: how long a read may trust the last check of the SQLite file (see ``query``)
READ_RECHECK = 0.1


class _ThreadState(threading.local):
    """This thread's connection, the process that opened it (a fork must reopen) and when
    this thread last found the SQLite file in place (``time.monotonic``)."""

    conn: Any = None
    pid: int = 0
    checked: float = float("-inf")


class ThreadConnections:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = _ThreadState()
        self._sqlite = engine.dialect.name == "sqlite"
        self._file = database_file(engine)  # a deleted SQLite file must fail, not go on
        self._checkpoints = WalCheckpointer(self._file) if self._file is not None else None
        self.placeholder = "?" if engine.dialect.paramstyle == "qmark" else "%s"

    def sql(self, text: str) -> str:
        """Write statements with ``?``; this adapts them to the driver's paramstyle."""
        return text if self.placeholder == "?" else text.replace("?", "%s")

    def _connection(self) -> Any:
        conn = self._local.conn
        if conn is not None and self._local.pid != os.getpid():
            self._let_go_inherited()  # forked: that one is the parent's, never ours to use
            conn = None
        if conn is not None and not self._sqlite and _hung_up(conn):
            self.discard()  # the server closed it while it was idle (a restart)
            conn = None
        if conn is None:
            conn = self._engine.raw_connection()
            if self._sqlite:
                cur = conn.cursor()
                cur.execute("PRAGMA busy_timeout=0")
                # checkpoints run in a thread of their own (storage/wal_checkpoints.py)
                cur.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
                cur.close()
                if self._checkpoints is not None:
                    self._checkpoints.ensure_running()
                # autocommit: a lone statement takes and frees the write lock inside one
                # sqlite3_step, with the GIL released (see the module docstring)
                sqlite_conn: Any = conn.driver_connection
                sqlite_conn.isolation_level = None
            else:
                conn.rollback()  # psycopg changes autocommit only outside a transaction
                driver: Any = conn.driver_connection  # psycopg's Connection
                driver.autocommit = True
            conn.detach()  # its settings differ from the pool's: never back into it
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _let_go_inherited(self) -> None:
        """A connection this process inherited across ``fork()`` is the parent's socket:
        closing it (or letting it be finalised) here would end the parent's database
        session mid-statement (psycopg sends PostgreSQL a Terminate). Kept, never touched."""
        _INHERITED.append(self._local.conn)
        self._local.conn = None

    def discard(self) -> None:
        """Drop this thread's connection (after an error: its state is unknown)."""
        if self._local.conn is not None and self._local.pid != os.getpid():
            self._let_go_inherited()
            return
        conn, self._local.conn = self._local.conn, None
        if conn is not None:
            try:  # closed first: that ends an open transaction (and frees SQLite's write
                # lock) now; invalidating a detached connection does not close it, so a
                # failed multi-statement ``run`` kept the lock until the garbage collector
                # reached the connection (a traceback still held it)
                conn.dbapi_connection.close()
            except Exception:  # noqa: BLE001, S110 - it is broken already; drop it
                pass
            try:
                conn.invalidate()
            except Exception:  # noqa: BLE001, S110 - it is broken already; drop it
                pass

    def run(self, work: Callable[[Any], T], *, one_statement: bool = False,
            read_only: bool = False) -> T:
        """``work(connection)`` as one transaction (it commits), retried while SQLite says
        busy, rolled back before each retry. Any other error: ``StorageError``.
        ``one_statement``: ``work`` runs a single statement, which PostgreSQL makes its own
        transaction (no BEGIN round trip; its COMMIT is then a no-op). ``read_only``: the
        SQLite file's check may be ``READ_RECHECK`` old (see ``query``)."""
        pause, deadline = _FIRST_PAUSE, 0.0
        while True:
            conn = None
            try:
                if self._file is not None:
                    self._check_file(read_only=read_only)
                conn = self._connection()
                if not one_statement:
                    _begin(conn, immediate=self._sqlite)
                return work(conn)
            except Exception as exc:
                if not (self._sqlite and is_busy(exc)) or not self._rolled_back(conn):
                    self.discard()
                    raise StorageError(f"database error: {type(exc).__name__}") from exc
                now = time.monotonic()
                deadline = deadline or now + SQLITE_BUSY_TIMEOUT_MS / 1000
                if now >= deadline:
                    self.discard()
                    raise StorageError("database error: busy for too long") from exc
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)

    def _check_file(self, *, read_only: bool) -> None:
        """Every write stats the file; a read trusts this thread's last check for
        ``READ_RECHECK``, so it may read a just-deleted file at most that long. It cannot
        open anything with it: ``/verify`` answers only after its audit append, a write,
        which finds the file gone and fails closed. One stat less per ``/verify`` (a stat
        costs 1.5-2.5 µs here; issue 20 item 3)."""
        now = time.monotonic()
        if read_only and now - self._local.checked < READ_RECHECK:
            return
        assert self._file is not None
        self._file.check()
        self._local.checked = now

    def _rolled_back(self, conn: Any) -> bool:
        if conn is None:
            return True  # busy while opening it: nothing to undo
        try:
            conn.rollback()
        except Exception:  # noqa: BLE001 - cannot tell where it stands: not retryable
            return False
        return True

    def query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        def read(conn: Any) -> list[tuple[Any, ...]]:
            cur = conn.cursor()
            cur.execute(sql, params)
            rows = cur.fetchall()
            cur.close()
            if self._sqlite and conn.in_transaction:  # end the read transaction
                conn.commit()
            return list(rows)

        return self.run(read, one_statement=True, read_only=True)

    def execute(self, sql: str, params: Sequence[Any]) -> int:
        def write(conn: Any) -> int:
            cur = conn.cursor()
            cur.execute(sql, params)
            count = int(cur.rowcount)
            cur.close()
            conn.commit()
            return count

        return self.run(write, one_statement=True)


def _hung_up(conn: Any) -> bool:
    """Whether PostgreSQL has spoken on an idle connection: between statements the server
    sends nothing unless it is ending the session (a fast shutdown or restart sends its
    FATAL "terminating connection" and closes: protocol docs, "Termination"). One
    non-blocking ``poll`` (no round trip) spares the first request after a restart the
    deny a dead connection would cost; a spurious wake-up only reopens the connection."""
    try:
        fd = conn.dbapi_connection.fileno()  # detached: no driver_connection any more
    except Exception:  # noqa: BLE001 - psycopg raises once it knows the connection is closed
        return True
    poller = select.poll()  # not select(): a busy worker's descriptors may pass 1024
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(0))


def _begin(conn: Any, *, immediate: bool) -> None:
    """Open a transaction on an autocommit connection (its COMMIT ends it). SQLite: BEGIN
    IMMEDIATE takes the write lock first, so a transaction that reads before it writes can
    never fail to upgrade its snapshot (SQLITE_BUSY_SNAPSHOT) halfway."""
    cur = conn.cursor()
    cur.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    cur.close()
