"""Recovery codes, admin-issued enrolment codes and one-time WebAuthn challenges.

Every "use once" is a conditional UPDATE or DELETE whose row count decides, so a code or a
challenge cannot be spent twice, even by two requests at the same instant (ASVS 2.6.1, 2.3.1).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from authgate.storage.guard import storage_guard
from authgate.storage.tables_factors import challenges, enrolment_codes, recovery_codes
from authgate.storage.timeconv import from_micros, to_micros


@dataclass(frozen=True)
class EnrolmentCodeRow:
    id: str
    username: str
    issued_by: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


class SqlCodeStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- recovery codes ---------------------------------------------------------------
    def replace_recovery_codes(self, username: str, hashed: list[tuple[str, str]],
                               now: datetime) -> None:
        """Regenerating invalidates the whole previous set (ASVS 2.6.x)."""
        rc = recovery_codes
        with storage_guard(), self._engine.begin() as conn:
            conn.execute(delete(rc).where(rc.c.username == username))
            if hashed:
                conn.execute(insert(rc), [
                    {"id": i, "username": username, "code_hash": h,
                     "created_at": to_micros(now), "used_at": None} for i, h in hashed])

    def unused_recovery_codes(self, username: str) -> list[tuple[str, str]]:
        rc = recovery_codes
        with storage_guard(), self._engine.connect() as conn:
            return [(r.id, r.code_hash) for r in conn.execute(
                select(rc.c.id, rc.c.code_hash).where(rc.c.username == username,
                                                       rc.c.used_at.is_(None)))]

    def spend_recovery_code(self, code_id: str, now: datetime) -> bool:
        rc = recovery_codes
        with storage_guard(), self._engine.begin() as conn:
            return conn.execute(update(rc).where(rc.c.id == code_id, rc.c.used_at.is_(None))
                                .values(used_at=to_micros(now))).rowcount == 1

    def delete_recovery_codes(self, username: str) -> int:
        rc = recovery_codes
        with storage_guard(), self._engine.begin() as conn:
            return int(conn.execute(delete(rc).where(rc.c.username == username)).rowcount)

    # -- enrolment codes --------------------------------------------------------------
    def add_enrolment_code(self, row: EnrolmentCodeRow, code_hash: str) -> None:
        with storage_guard(), self._engine.begin() as conn:
            conn.execute(insert(enrolment_codes).values(
                id=row.id, username=row.username, code_hash=code_hash,
                issued_by=row.issued_by, created_at=to_micros(row.created_at),
                expires_at=to_micros(row.expires_at), used_at=None, revoked_at=None))

    def redeem_enrolment_code(self, *, username: str, code_hash: str, now: datetime) -> bool:
        """Spend a live code issued for this user; False for unknown, expired, used, revoked
        or another user's code (the caller audits which, from ``enrolment_code_state``)."""
        ec = enrolment_codes
        with storage_guard(), self._engine.begin() as conn:
            return conn.execute(update(ec).where(
                ec.c.code_hash == code_hash, ec.c.username == username,
                ec.c.used_at.is_(None), ec.c.revoked_at.is_(None),
                ec.c.expires_at > to_micros(now)).values(used_at=to_micros(now))).rowcount == 1

    def enrolment_code_state(self, code_hash: str) -> EnrolmentCodeRow | None:
        ec = enrolment_codes
        with storage_guard(), self._engine.connect() as conn:
            r = conn.execute(select(ec).where(ec.c.code_hash == code_hash)).mappings().first()
        return _enrolment_row(r) if r else None

    def enrolment_codes_for(self, username: str) -> list[EnrolmentCodeRow]:
        ec = enrolment_codes
        with storage_guard(), self._engine.connect() as conn:
            rows = conn.execute(select(ec).where(ec.c.username == username)
                                .order_by(ec.c.created_at.desc())).mappings().all()
        return [_enrolment_row(r) for r in rows]

    def revoke_enrolment_code(self, code_id: str, now: datetime) -> bool:
        ec = enrolment_codes
        with storage_guard(), self._engine.begin() as conn:
            return conn.execute(update(ec).where(ec.c.id == code_id, ec.c.used_at.is_(None),
                                                 ec.c.revoked_at.is_(None))
                                .values(revoked_at=to_micros(now))).rowcount == 1

    # -- one-time challenges ----------------------------------------------------------
    def put_challenge(self, *, key: str, purpose: str, username: str, challenge: str,
                      expires_at: datetime) -> None:
        ch = challenges
        with storage_guard(), self._engine.begin() as conn:
            conn.execute(delete(ch).where(ch.c.id_hash == key))
            conn.execute(insert(ch).values(id_hash=key, purpose=purpose, username=username,
                                           challenge=challenge,
                                           expires_at=to_micros(expires_at)))

    def take_challenge(self, *, key: str, purpose: str, now: datetime
                       ) -> tuple[str, str] | None:
        """(username, challenge) once; gone afterwards whether or not it verifies."""
        ch = challenges
        with storage_guard(), self._engine.begin() as conn:
            found = conn.execute(select(ch).where(ch.c.id_hash == key)).mappings().first()
            taken = found is not None and conn.execute(
                delete(ch).where(ch.c.id_hash == key)).rowcount == 1
        if found is None or not taken:
            return None
        if found["purpose"] != purpose or found["expires_at"] <= to_micros(now):
            return None
        return str(found["username"]), str(found["challenge"])

    def purge_challenges(self, now: datetime) -> int:
        ch = challenges
        with storage_guard(), self._engine.begin() as conn:
            return int(conn.execute(delete(ch).where(ch.c.expires_at <= to_micros(now))
                                    ).rowcount)


def _enrolment_row(r: Any) -> EnrolmentCodeRow:
    get = r.__getitem__
    return EnrolmentCodeRow(
        id=get("id"), username=get("username"), issued_by=get("issued_by"),
        created_at=from_micros(get("created_at")), expires_at=from_micros(get("expires_at")),
        used_at=from_micros(get("used_at")) if get("used_at") else None,
        revoked_at=from_micros(get("revoked_at")) if get("revoked_at") else None)
