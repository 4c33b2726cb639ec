"""The hot-path connection under SQLite's write lock: it waits, retries, and fails closed.

Another connection holds the database's write lock (``BEGIN IMMEDIATE``), as a second
gunicorn worker does for the ~30 µs of each of its inserts; here it is held for as long
as the test likes.
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from authgate.audit.chain import Keyring
from authgate.audit.checkpoints import Ed25519Signer, TrustedKeys
from authgate.audit.log import AuditLog
from authgate.core.errors import StorageError
from authgate.storage import fastpath
from authgate.storage.engine import SQLITE_BUSY_TIMEOUT_MS, make_engine, migrate
from authgate.storage.sql_audit import SqlAuditStore
from tests.audit.conftest import TickingClock, check, event, sql


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "busy.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_engine(db: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{db}")
    yield eng
    eng.dispose()


@pytest.fixture
def log(sqlite_engine: Engine, keyring: Keyring, signer: Ed25519Signer) -> AuditLog:
    return AuditLog(SqlAuditStore(sqlite_engine), TickingClock(), keyring=keyring,
                    signer=signer, checkpoint_every=10_000)


class WriteLock:
    """Another process's view: a plain sqlite3 connection holding the write lock."""

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(db, isolation_level=None)

    def __enter__(self) -> WriteLock:
        self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("COMMIT")
        self.conn.close()


def record_in_thread(log: AuditLog, n: int) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(log.record(event(n)))
        except Exception as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("earlier", [0, 3], ids=["first-record-registers-chain", "later"])
def test_append_waits_for_the_lock_then_lands(log: AuditLog, db: Path, keyring: Keyring,
                                              trusted: TrustedKeys, sqlite_engine: Engine,
                                              earlier: int) -> None:
    for n in range(earlier):
        log.record(event(n))
    with WriteLock(db):
        thread, outcome = record_in_thread(log, 99)
        thread.join(0.3)
        assert thread.is_alive() and outcome == [], f"must wait, not fail: {outcome!r}"
    thread.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], int), outcome
    assert sql(sqlite_engine, "SELECT request_id FROM audit_events WHERE id = :i",
               i=outcome[0]) == [("r99",)]
    assert sql(sqlite_engine, "SELECT count(*) FROM audit_chains") == [(1,)]
    trail = check(log, keyring, trusted)
    assert trail.records == earlier + 1


def test_busy_past_the_limit_fails_closed_and_the_chain_stays_whole(
        log: AuditLog, db: Path, keyring: Keyring, trusted: TrustedKeys,
        monkeypatch: pytest.MonkeyPatch) -> None:
    log.record(event(0))
    monkeypatch.setattr(fastpath, "SQLITE_BUSY_TIMEOUT_MS", 150)
    with WriteLock(db), pytest.raises(StorageError, match="busy"):
        log.record(event(1))
    log.record(event(2))  # the lane re-reads its head: no gap, no fork in the chain
    trail = check(log, keyring, trusted)
    assert trail.records == 2
    assert [(c.first_seq, c.last_seq) for c in trail.chains] == [(1, 2)]


def test_hot_path_connections_never_return_to_the_pool(log: AuditLog,
                                                       sqlite_engine: Engine) -> None:
    """The hot path's connections wait in Python (busy_timeout 0); the pool's keep
    SQLite's own limit, which every SQLAlchemy user relies on. A thread that ends (a
    gthread worker's) drops its connection without discarding it: it must not come back."""
    import gc

    thread = threading.Thread(target=lambda: [log.record(event(n)) for n in range(3)])
    thread.start()
    thread.join()
    del thread
    gc.collect()
    held = [sqlite_engine.connect() for _ in range(3)]  # more than were ever pooled
    try:
        for conn in held:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() \
                == SQLITE_BUSY_TIMEOUT_MS
    finally:
        for conn in held:
            conn.close()


def test_session_lookup_and_audit_append_share_one_connection(sqlite_engine: Engine) -> None:
    from authgate.storage.sql_sessions import SqlSessionStore

    sessions = SqlSessionStore(sqlite_engine)
    appender = SqlAuditStore(sqlite_engine).appender()
    assert sessions._fast is appender._fast is fastpath.connections_for(sqlite_engine)  # noqa: SLF001
    other = make_engine(f"sqlite:///{sqlite_engine.url.database}")
    assert fastpath.connections_for(other) is not appender._fast  # noqa: SLF001
    other.dispose()


def test_a_migrated_database_is_already_in_wal_mode(db: Path) -> None:
    """Switching to WAL needs the database to itself, which a busy gateway never gives
    the first connection of a new worker: the upgrade does it once."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_deleted_file_fails_every_write_at_once_and_reads_within_the_recheck(
        sqlite_engine: Engine, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20 item 3: a read may trust its thread's last file check for READ_RECHECK (one
    stat less per /verify); a write never does, so an answer that needs its audit append
    fails closed at once, and a read stops working once the recheck is due."""
    fast = fastpath.connections_for(sqlite_engine)
    clock = [1000.0]
    monkeypatch.setattr(fastpath.time, "monotonic", lambda: clock[0])
    assert fast.query("SELECT count(*) FROM sessions", ()) == [(0,)]
    db.unlink()
    assert fast.query("SELECT count(*) FROM sessions", ()) == [(0,)]  # stale, within 0.1 s
    with pytest.raises(StorageError) as write:
        fast.execute("DELETE FROM sessions WHERE id_hash = ?", ("x",))
    clock[0] += fastpath.READ_RECHECK
    with pytest.raises(StorageError) as read:
        fast.query("SELECT count(*) FROM sessions", ())
    for failed in (write, read):
        assert str(failed.value.__cause__) == "database file missing"
