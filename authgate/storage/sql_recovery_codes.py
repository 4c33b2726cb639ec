"""``SqlRecoveryCodeStore``: recovery (look-up) codes as argon2id hashes, each usable once.

Spending is a conditional UPDATE whose row count decides, so one code cannot be spent twice,
even by two requests at the same instant (ASVS 2.6.1).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, delete, insert, select, update

from authgate.storage.guard import storage_guard
from authgate.storage.rows import RecoveryCodeRow
from authgate.storage.tables_factors import recovery_codes as rc
from authgate.storage.timeconv import to_micros


class SqlRecoveryCodeStore:
    """The ``RecoveryCodeStore`` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def replace(self, username: str, codes: Sequence[RecoveryCodeRow], now: datetime) -> None:
        """Regenerating invalidates the whole previous set (ASVS 2.6.x)."""
        with storage_guard(), self._engine.begin() as conn:
            conn.execute(delete(rc).where(rc.c.username == username))
            if codes:
                conn.execute(insert(rc), [
                    {"id": c.id, "username": username, "code_hash": c.code_hash,
                     "created_at": to_micros(now), "used_at": None} for c in codes])

    def unused(self, username: str) -> list[RecoveryCodeRow]:
        with storage_guard(), self._engine.connect() as conn:
            return [RecoveryCodeRow(r.id, r.code_hash) for r in conn.execute(
                select(rc.c.id, rc.c.code_hash).where(rc.c.username == username,
                                                       rc.c.used_at.is_(None)))]

    def spend(self, code_id: str, now: datetime) -> bool:
        with storage_guard(), self._engine.begin() as conn:
            return conn.execute(update(rc).where(rc.c.id == code_id, rc.c.used_at.is_(None))
                                .values(used_at=to_micros(now))).rowcount == 1

    def delete_for(self, username: str) -> int:
        with storage_guard(), self._engine.begin() as conn:
            return int(conn.execute(delete(rc).where(rc.c.username == username)).rowcount)
