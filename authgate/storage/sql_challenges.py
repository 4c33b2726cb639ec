"""``SqlChallengeStore``: one-time WebAuthn challenges, bound to the session that asked.

Taking is a DELETE whose row count decides, so a challenge is used at most once, even by two
requests at the same instant (ASVS 2.9.2, WebAuthn §13.4.3).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, insert, select

from authgate.storage.guard import storage_guard
from authgate.storage.rows import ChallengeRow
from authgate.storage.tables_factors import challenges as ch
from authgate.storage.timeconv import to_micros


class SqlChallengeStore:
    """The ``ChallengeStore`` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def put(self, *, key: str, purpose: str, username: str, challenge: str,
            expires_at: datetime) -> None:
        with storage_guard(), self._engine.begin() as conn:
            conn.execute(delete(ch).where(ch.c.id_hash == key))
            conn.execute(insert(ch).values(id_hash=key, purpose=purpose, username=username,
                                           challenge=challenge,
                                           expires_at=to_micros(expires_at)))

    def take(self, *, key: str, purpose: str, now: datetime) -> ChallengeRow | None:
        """The challenge once; gone afterwards whether or not it verifies."""
        with storage_guard(), self._engine.begin() as conn:
            found = conn.execute(select(ch).where(ch.c.id_hash == key)).mappings().first()
            taken = found is not None and conn.execute(
                delete(ch).where(ch.c.id_hash == key)).rowcount == 1
        if found is None or not taken:
            return None
        if found["purpose"] != purpose or found["expires_at"] <= to_micros(now):
            return None
        return ChallengeRow(str(found["username"]), str(found["challenge"]))

    def peek(self, *, key: str, purpose: str, now: datetime) -> ChallengeRow | None:
        with storage_guard(), self._engine.connect() as conn:
            found = conn.execute(select(ch).where(ch.c.id_hash == key)).mappings().first()
        if found is None or found["purpose"] != purpose or found["expires_at"] <= to_micros(now):
            return None
        return ChallengeRow(str(found["username"]), str(found["challenge"]))

    def purge(self, now: datetime) -> int:
        with storage_guard(), self._engine.begin() as conn:
            return int(conn.execute(delete(ch).where(ch.c.expires_at <= to_micros(now))
                                    ).rowcount)
