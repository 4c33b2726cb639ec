"""Opening an audit database that this process may only read (issue 16).

An auditor verifies a copy handed over read-only (mode 0444, a read-only directory, a
mounted snapshot). ``engine.make_engine`` opens the file for writing and would fail, so a
SQLite file this process cannot write is opened with SQLite's ``mode=ro`` URI instead
(https://www.sqlite.org/uri.html); without a ``-wal`` or ``-shm`` beside it, also
``immutable=1``: nothing else writes a copy, and SQLite then needs no shared-memory file
it could not create. Verification then still runs; only its own ``audit.verify`` record
cannot be written, and the CLI says so.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url


def read_only_engine(url: str) -> Engine | None:
    """A read-only engine for a SQLite file this process cannot write; None otherwise
    (the caller opens it as usual)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    path = Path(parsed.database).resolve()
    if not path.is_file() or (_writable(path)
                              and os.access(path.parent, os.W_OK | os.X_OK)):
        return None
    quiet = not any(Path(f"{path}{end}").exists() for end in ("-wal", "-shm"))
    target = f"file:{quote(str(path))}?mode=ro" + ("&immutable=1" if quiet else "")
    engine = create_engine(f"sqlite:///{target}&uri=true" if "?" in target
                           else f"sqlite:///{target}?uri=true",
                           connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _query_only)
    return engine


def missing_file(url: str) -> str | None:
    """For a SQLite URL whose file does not exist, what to say (opening it would create an
    empty database, which verification would then call wiped): None otherwise."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or \
            parsed.database == ":memory:" or Path(parsed.database).exists():
        return None
    return f"no database file at {parsed.database}"


def _writable(path: Path) -> bool:
    try:
        os.close(os.open(path, os.O_RDWR))
    except PermissionError:
        return False
    return True


def _query_only(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA query_only=ON")
    cur.close()
