"""``SqlSessionStore``: server-side sessions in SQLite or PostgreSQL."""
from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from authgate.core.errors import StorageError
from authgate.core.values import Level, SessionRecord
from authgate.storage.fastpath import connections_for
from authgate.storage.guard import storage_guard
from authgate.storage.tables import sessions
from authgate.storage.timeconv import from_micros, to_micros


class SqlSessionStore:
    """The ``SessionStore`` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._fast = connections_for(engine)
        columns = ", ".join(c.name for c in sessions.columns)
        self._get_sql = self._fast.sql(f"SELECT {columns} FROM sessions WHERE id_hash = ?")  # noqa: S608
        self._touch_sql = self._fast.sql("UPDATE sessions SET last_seen = ? WHERE id_hash = ?")
        self._names = [c.name for c in sessions.columns]
        #: parsed records by their raw row: the row is read on every request (so a revoked
        #: or changed session is seen at once), but parsed again only when it changed
        self._parsed: dict[tuple[object, ...], SessionRecord] = {}

    def add(self, record: SessionRecord) -> None:
        with storage_guard(), self._engine.begin() as conn:
            conn.execute(insert(sessions).values(**session_values(record)))

    def get(self, id_hash: str) -> SessionRecord | None:
        """The hot path of every ``/verify``: raw DB-API (see ``storage.fastpath``)."""
        rows = self._fast.query(self._get_sql, (id_hash,))
        if not rows:
            return None
        raw = tuple(rows[0])
        record = self._parsed.get(raw)
        if record is None:
            if len(self._parsed) >= 10_000:
                self._parsed.clear()
            record = self._parsed[raw] = _record(dict(zip(self._names, raw, strict=True)))
        return record

    def touch(self, id_hash: str, last_seen: datetime) -> None:
        self._fast.execute(self._touch_sql, (to_micros(last_seen), id_hash))

    def replace(self, old_id_hash: str, record: SessionRecord) -> bool:
        with storage_guard(), self._engine.begin() as conn:
            gone = conn.execute(delete(sessions).where(sessions.c.id_hash == old_id_hash))
            if gone.rowcount != 1:
                return False
            conn.execute(insert(sessions).values(**session_values(record)))
            return True

    def update(self, record: SessionRecord) -> None:
        row = session_values(record)
        with storage_guard(), self._engine.begin() as conn:
            conn.execute(update(sessions).where(sessions.c.id_hash == row.pop("id_hash"))
                         .values(**row))

    def delete(self, id_hash: str) -> bool:
        with storage_guard(), self._engine.begin() as conn:
            return conn.execute(delete(sessions).where(sessions.c.id_hash == id_hash)
                                ).rowcount == 1

    def delete_for_user(self, username: str) -> int:
        with storage_guard(), self._engine.begin() as conn:
            return int(conn.execute(delete(sessions).where(sessions.c.username == username)
                                    ).rowcount)

    def delete_except(self, username: str, *, keep_id_hash: str | None) -> int:
        query = delete(sessions).where(sessions.c.username == username)
        if keep_id_hash is not None:
            query = query.where(sessions.c.id_hash != keep_id_hash)
        with storage_guard(), self._engine.begin() as conn:
            return int(conn.execute(query).rowcount)

    def delete_all(self) -> int:
        with storage_guard(), self._engine.begin() as conn:
            return int(conn.execute(delete(sessions)).rowcount)

    def list_for_user(self, username: str) -> list[SessionRecord]:
        query = (select(sessions).where(sessions.c.username == username)
                 .order_by(sessions.c.last_seen.desc()))
        with storage_guard(), self._engine.connect() as conn:
            return [_record(r) for r in conn.execute(query).mappings()]

    def purge_expired(self, now: datetime) -> int:
        with storage_guard(), self._engine.begin() as conn:
            return int(conn.execute(delete(sessions).where(
                sessions.c.expires_at <= to_micros(now))).rowcount)

    def ping(self) -> None:
        """Readiness proves a write and a read: a probe row inserted and read back inside a
        transaction that is then rolled back (SQLite and PostgreSQL really execute it, so a
        read-only, full, locked or vanished database fails here)."""
        probe = "readyz-" + secrets.token_hex(8)
        values = {**{c.name: "" for c in sessions.columns}, "id_hash": probe, "groups": "[]",
                  "data": "{}", "created_at": 0, "auth_time": 0, "last_seen": 0,
                  "expires_at": 0, "refreshed_at": None}
        with storage_guard(), self._engine.connect() as conn:
            with conn.begin() as tx:
                conn.execute(insert(sessions).values(**values))
                found = conn.execute(select(sessions.c.id_hash)
                                     .where(sessions.c.id_hash == probe)).scalar()
                tx.rollback()
        if found != probe:
            raise StorageError("readiness probe row not read back")


def session_values(r: SessionRecord) -> dict[str, Any]:
    """A record as its row's column values."""
    return {
        "id_hash": r.id_hash, "username": r.username, "groups": json.dumps(sorted(r.groups)),
        "level": r.level.value, "created_at": to_micros(r.created_at),
        "auth_time": to_micros(r.auth_time), "last_seen": to_micros(r.last_seen),
        "expires_at": to_micros(r.expires_at),
        "refreshed_at": to_micros(r.refreshed_at) if r.refreshed_at else None,
        "client_ip": r.client_ip, "user_agent": r.user_agent[:512],
        "display_name": r.display_name, "email": r.email, "stable_id": r.stable_id,
        "source": r.source, "data": json.dumps(r.data, sort_keys=True),
    }


def _record(row: Any) -> SessionRecord:
    return SessionRecord(
        id_hash=row["id_hash"], username=row["username"],
        groups=frozenset(json.loads(row["groups"])), level=Level(row["level"]),
        created_at=from_micros(row["created_at"]), auth_time=from_micros(row["auth_time"]),
        last_seen=from_micros(row["last_seen"]), expires_at=from_micros(row["expires_at"]),
        refreshed_at=from_micros(row["refreshed_at"]) if row["refreshed_at"] else None,
        client_ip=row["client_ip"], user_agent=row["user_agent"],
        display_name=row["display_name"], email=row["email"], stable_id=row["stable_id"],
        source=row["source"], data=json.loads(row["data"]),
    )
