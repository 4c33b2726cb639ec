"""Engine construction (the one place that knows SQLite from PostgreSQL) and migrations."""
from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from authgate.core.errors import StorageError

MIGRATIONS = Path(__file__).with_name("migrations")
#: how long a SQLite connection waits for another one's lock before the statement fails
SQLITE_BUSY_TIMEOUT_MS = 10_000


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine tuned per backend. SQLite: WAL, synchronous=NORMAL (durable across process
    crashes, one fsync per checkpoint), a busy timeout so several workers can write."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False},
                               pool_size=8, max_overflow=16)
        event.listen(engine, "connect", sqlite_pragmas)
        if parsed.database and parsed.database != ":memory:":
            _watch(engine, DatabaseFile.create(Path(parsed.database)))
    else:
        engine = create_engine(url, echo=echo, pool_size=8, max_overflow=8,
                               pool_pre_ping=True, pool_recycle=1800)
    # A forked worker must never share the parent's sockets or file handles.
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    return engine


class DatabaseFile:
    """The SQLite file an engine was opened on, created 0600 (it holds sessions and the
    audit trail; SQLite gives its -wal and -shm files the database file's mode).

    A connection keeps working on a file deleted or renamed under it, so without this check
    the gateway would go on allowing and recording into an unlinked inode. Every checkout
    and every hot-path statement compares the path's (device, inode) with the one opened:
    gone or replaced → ``StorageError``, and callers deny (fail closed)."""

    def __init__(self, path: Path, identity: tuple[int, int]) -> None:
        self.path = path
        self.identity = identity

    @classmethod
    def create(cls, path: Path) -> DatabaseFile:
        prepare_sqlite_file(path)
        st = os.stat(path)
        return cls(path, (st.st_dev, st.st_ino))

    def check(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise StorageError("database file missing") from exc
        if (st.st_dev, st.st_ino) != self.identity:
            raise StorageError("database file replaced")


_FILES: weakref.WeakKeyDictionary[Engine, DatabaseFile] = weakref.WeakKeyDictionary()


def database_file(engine: Engine) -> DatabaseFile | None:
    """The watched SQLite file of ``engine`` (``None`` for PostgreSQL and ``:memory:``)."""
    return _FILES.get(engine)


def _watch(engine: Engine, file: DatabaseFile) -> None:
    _FILES[engine] = file
    # before connecting: SQLite would otherwise create a new, empty file at the path
    event.listen(engine, "do_connect", lambda *_args: file.check())
    event.listen(engine, "checkout", lambda *_args: file.check())


def prepare_sqlite_file(path: Path) -> None:
    """Create the database file with mode 0600 if it does not exist yet (never widened by
    the umask; an existing file keeps the mode its operator gave it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """Every SQLite connection's settings. WAL mode is stored in the database file: set
    once (switching needs the database to itself), only read on every later connection."""
    cur = dbapi_conn.cursor()
    if cur.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA wal_autocheckpoint=8000")  # ~32 MiB WAL: fewer checkpoint fsyncs
    cur.close()


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database to ``revision`` (``authgate db upgrade``)."""
    from alembic import command

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        prepare_sqlite_file(Path(str(parsed.database)))
    command.upgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(url: str) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()
