"""SQLite WAL checkpoints off the request path (storage/wal_checkpoints.py, issue 20 item 3).

The hot-path connections checkpoint only past a backstop; a thread per process copies the
WAL into the database file every second. These tests use the real thread on real files."""
from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from authgate.storage import fastpath, wal_checkpoints
from authgate.storage.engine import make_engine, migrate

INSERT = "INSERT INTO audit_chains (chain_id, created_ts, writer, key_id) VALUES (?, ?, ?, ?)"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(wal_checkpoints, "EVERY", 0.05)
    path = tmp_path / "wal.db"
    migrate(f"sqlite:///{path}")
    return path


def _write(fast: fastpath.ThreadConnections, first: int, n: int) -> None:
    for i in range(first, first + n):
        fast.execute(INSERT, (f"chain-{i:06d}", i, "test", "k"))


def _threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "authgate-wal-checkpoint"]


def test_the_thread_copies_the_wal_while_requests_never_checkpoint(db: Path) -> None:
    """A hot-path connection checkpoints only past the backstop; the thread copies the WAL
    into the database file within a second or so."""
    engine = make_engine(f"sqlite:///{db}")
    fast = fastpath.ThreadConnections(engine)
    size_before = db.stat().st_size
    _write(fast, 0, 1)
    conn = fast._connection()  # noqa: SLF001 - the thread's own connection and its setting
    cur = conn.cursor()
    assert cur.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == \
        wal_checkpoints.BACKSTOP_PAGES
    cur.close()
    assert _threads(), "no checkpoint thread"
    _write(fast, 1, 2000)  # far below the backstop: only the thread copies
    deadline = time.monotonic() + 5
    while db.stat().st_size <= size_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert db.stat().st_size > size_before, "the WAL was never copied into the database"
    with sqlite3.connect(db) as check:
        assert check.execute("SELECT count(*) FROM audit_chains").fetchone()[0] == 2001
    engine.dispose()


def test_a_replaced_file_is_never_checkpointed_and_the_thread_stops(db: Path,
                                                                     tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{db}")
    checkpointer = wal_checkpoints.WalCheckpointer(fastpath.database_file(engine),  # type: ignore[arg-type]
                                                   every=0.05)
    checkpointer.ensure_running()
    thread = checkpointer._thread  # noqa: SLF001
    assert thread is not None and thread.is_alive()
    db.rename(tmp_path / "moved.db")
    db.write_bytes(b"")  # another file under the name
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert db.read_bytes() == b""  # nothing written into the stranger
    engine.dispose()


def _child_writes(path: str, out: multiprocessing.Queue, first: int) -> None:  # type: ignore[type-arg]
    engine = make_engine(f"sqlite:///{path}")
    fast = fastpath.ThreadConnections(engine)
    _write(fast, first, 200)
    out.put(len(_threads()))


def test_a_fork_during_checkpoints_leaves_a_working_child(db: Path) -> None:
    """A fork never copies the thread inside SQLite (it takes the checkpoint lock first):
    children forked while the parent checkpoints keep writing, and run their own thread."""
    engine = make_engine(f"sqlite:///{db}")
    fast = fastpath.ThreadConnections(engine)
    _write(fast, 0, 1)
    ctx = multiprocessing.get_context("fork")
    for round_ in range(6):
        _write(fast, 1 + round_ * 300, 300)  # the parent's thread has WAL to copy
        out = ctx.Queue()
        child = ctx.Process(target=_child_writes, args=(str(db), out, 10_000 + round_ * 1000))
        child.start()
        child.join(timeout=20)
        assert child.exitcode == 0, f"child {round_} hung or failed"
        assert out.get(timeout=1) >= 1  # the child's own checkpoint thread
    with sqlite3.connect(db) as check:
        assert check.execute("SELECT count(*) FROM audit_chains").fetchone()[0] == 1 + 6 * 500
    engine.dispose()
