"""Issue 14 item 5: the SQLite database and its -wal/-shm files are created 0600, whether
the gateway or ``authgate db upgrade`` creates them."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from authgate.storage.engine import make_engine, migrate


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _modes(db: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mode & 0o777 for p in db.parent.glob(db.name + "*")}


def test_migrate_creates_the_database_and_its_wal_files_0600(tmp_path: Path) -> None:
    db = tmp_path / "state" / "authgate.db"
    migrate(f"sqlite:///{db}")
    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:  # WAL mode: -wal and -shm exist while a connection is open
        conn.execute(text("SELECT count(*) FROM sessions")).all()
        modes = _modes(db)
    engine.dispose()
    assert {"authgate.db", "authgate.db-wal", "authgate.db-shm"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes


def test_the_engine_creates_a_missing_database_0600(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
        modes = _modes(db)
    engine.dispose()
    assert set(modes.values()) == {0o600}, modes
