"""``SqlEnrolmentCodeStore``: admin-issued enrolment codes, stored as keyed hashes.

Redeeming is a conditional UPDATE (live, this user's, unused, unrevoked, unexpired) whose
row count decides, so a code cannot be spent twice (ASVS 2.3.1).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from authgate.storage.guard import storage_guard
from authgate.storage.rows import EnrolmentCodeRow
from authgate.storage.tables_factors import enrolment_codes as ec
from authgate.storage.timeconv import from_micros, to_micros


class SqlEnrolmentCodeStore:
    """The ``EnrolmentCodeStore`` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, row: EnrolmentCodeRow, code_hash: str) -> None:
        with storage_guard(), self._engine.begin() as conn:
            conn.execute(insert(ec).values(
                id=row.id, username=row.username, code_hash=code_hash,
                issued_by=row.issued_by, created_at=to_micros(row.created_at),
                expires_at=to_micros(row.expires_at), used_at=None, revoked_at=None))

    def redeem(self, *, username: str, code_hash: str, now: datetime) -> bool:
        """Spend a live code issued for this user; False for unknown, expired, used, revoked
        or another user's code (the caller audits which, from ``state``)."""
        with storage_guard(), self._engine.begin() as conn:
            return conn.execute(update(ec).where(
                ec.c.code_hash == code_hash, ec.c.username == username,
                ec.c.used_at.is_(None), ec.c.revoked_at.is_(None),
                ec.c.expires_at > to_micros(now)).values(used_at=to_micros(now))).rowcount == 1

    def state(self, code_hash: str) -> EnrolmentCodeRow | None:
        with storage_guard(), self._engine.connect() as conn:
            r = conn.execute(select(ec).where(ec.c.code_hash == code_hash)).mappings().first()
        return _row(r) if r else None

    def list_for(self, username: str) -> list[EnrolmentCodeRow]:
        with storage_guard(), self._engine.connect() as conn:
            rows = conn.execute(select(ec).where(ec.c.username == username)
                                .order_by(ec.c.created_at.desc())).mappings().all()
        return [_row(r) for r in rows]

    def revoke(self, code_id: str, now: datetime) -> bool:
        with storage_guard(), self._engine.begin() as conn:
            return conn.execute(update(ec).where(ec.c.id == code_id, ec.c.used_at.is_(None),
                                                 ec.c.revoked_at.is_(None))
                                .values(revoked_at=to_micros(now))).rowcount == 1


def _row(r: Any) -> EnrolmentCodeRow:
    get = r.__getitem__
    return EnrolmentCodeRow(
        id=get("id"), username=get("username"), issued_by=get("issued_by"),
        created_at=from_micros(get("created_at")), expires_at=from_micros(get("expires_at")),
        used_at=from_micros(get("used_at")) if get("used_at") else None,
        revoked_at=from_micros(get("revoked_at")) if get("revoked_at") else None)
