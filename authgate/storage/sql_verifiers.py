"""``SqlPasswordVerifierStore``: the verifier of the last password AD accepted, per account.

One row per account, replaced on every success (an upsert), deleted when the password is
known to have changed. The row holds an argon2id string, a ``pwdLastSet`` stamp and a 6-bit
keyed prefilter, never a password; the pepper under them is not in the database
(``regulation.verifier``).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, delete, select

from authgate.storage.guard import storage_guard
from authgate.storage.regulation_rows import VerifierRow
from authgate.storage.tables_regulation import regulation_verifiers as ver
from authgate.storage.timeconv import from_micros, to_micros


def _upsert(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert
    return sqlite_insert


class SqlPasswordVerifierStore:
    """The ``PasswordVerifierStore`` contract on SQLAlchemy Core (SQLite and PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, username: str) -> VerifierRow | None:
        with storage_guard(), self._engine.connect() as conn:
            row = conn.execute(select(ver).where(ver.c.username == username)).one_or_none()
        if row is None:
            return None
        return VerifierRow(row.username, row.verifier, row.password_stamp,
                           from_micros(row.set_at), row.prefilter)

    def put(self, row: VerifierRow) -> None:
        values = {"username": row.username, "verifier": row.verifier,
                  "password_stamp": row.password_stamp, "set_at": to_micros(row.set_at),
                  "prefilter": row.prefilter}
        with storage_guard(), self._engine.begin() as conn:
            stmt = _upsert(conn)(ver).values(**values)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=[ver.c.username],
                set_={k: stmt.excluded[k] for k in ("verifier", "password_stamp", "set_at",
                                                          "prefilter")}))

    def delete(self, username: str) -> bool:
        with storage_guard(), self._engine.begin() as conn:
            return bool(conn.execute(delete(ver).where(ver.c.username == username)).rowcount)
