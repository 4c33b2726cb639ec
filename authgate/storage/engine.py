"""Engine construction (the one place that knows SQLite from PostgreSQL) and migrations."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).with_name("migrations")
#: how long a SQLite connection waits for another one's lock before the statement fails
SQLITE_BUSY_TIMEOUT_MS = 10_000


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine tuned per backend. SQLite: WAL, synchronous=NORMAL (durable across process
    crashes, one fsync per checkpoint), a busy timeout so several workers can write."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False},
                               pool_size=8, max_overflow=16)
        event.listen(engine, "connect", sqlite_pragmas)
    else:
        engine = create_engine(url, echo=echo, pool_size=8, max_overflow=8,
                               pool_pre_ping=True, pool_recycle=1800)
    # A forked worker must never share the parent's sockets or file handles.
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    return engine


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

    command.upgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(url: str) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()
