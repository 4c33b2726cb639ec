"""``SqlCredentialStore``: TOTP and WebAuthn credentials. Replay and clone checks are single
conditional UPDATEs, so two requests racing with the same code cannot both win."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from authgate.storage.guard import storage_guard
from authgate.storage.rows import CredentialRow, SealedSecret
from authgate.storage.tables_factors import credentials as t
from authgate.storage.timeconv import from_micros, to_micros


class SqlCredentialStore:
    """The ``CredentialStore`` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, row: CredentialRow) -> None:
        values = {k: v for k, v in row.__dict__.items()}
        values["created_at"] = to_micros(row.created_at)
        values["last_used_at"] = to_micros(row.last_used_at) if row.last_used_at else None
        with storage_guard(), self._engine.begin() as conn:
            conn.execute(insert(t).values(**values))

    def list_for(self, username: str, *, active_only: bool = False) -> list[CredentialRow]:
        query = select(t).where(t.c.username == username).order_by(t.c.created_at)
        if active_only:
            query = query.where(t.c.active.is_(True))
        return self._rows(query)

    def get(self, cred_id: str) -> CredentialRow | None:
        rows = self._rows(select(t).where(t.c.id == cred_id))
        return rows[0] if rows else None

    def by_credential_id(self, credential_id: str) -> CredentialRow | None:
        rows = self._rows(select(t).where(t.c.credential_id == credential_id,
                                          t.c.active.is_(True)))
        return rows[0] if rows else None

    def accept_step(self, cred_id: str, step: int, now: datetime, *,
                    activate: bool = False) -> bool:
        """Record TOTP step ``step`` as used, only if it is newer than the last (RFC 6238
        5.2: a code is accepted once). False when another request got there first."""
        newer = (t.c.last_step.is_(None)) | (t.c.last_step < step)
        values: dict[str, Any] = {"last_step": step, "last_used_at": to_micros(now)}
        if activate:
            values["active"] = True
        return self._update_one(update(t).where(t.c.id == cred_id, newer).values(**values))

    def rename(self, cred_id: str, username: str, name: str) -> bool:
        return self._update_one(update(t).where(t.c.id == cred_id, t.c.username == username)
                                .values(name=name))

    def set_secret(self, cred_id: str, secret: str) -> bool:
        return self._update_one(update(t).where(t.c.id == cred_id).values(secret=secret))

    def delete(self, cred_id: str, username: str) -> bool:
        with storage_guard(), self._engine.begin() as conn:
            return conn.execute(delete(t).where(t.c.id == cred_id, t.c.username == username)
                                ).rowcount == 1

    def delete_all(self, username: str) -> int:
        with storage_guard(), self._engine.begin() as conn:
            return int(conn.execute(delete(t).where(t.c.username == username)).rowcount)

    def all_secrets(self) -> list[SealedSecret]:
        """Every TOTP secret (ciphertext), for key rotation."""
        with storage_guard(), self._engine.connect() as conn:
            return [SealedSecret(r.id, r.username, r.secret) for r in conn.execute(
                select(t.c.id, t.c.username, t.c.secret).where(t.c.secret.is_not(None)))]

    def _update_one(self, statement: Any) -> bool:
        with storage_guard(), self._engine.begin() as conn:
            return conn.execute(statement).rowcount == 1

    def _rows(self, query: Any) -> list[CredentialRow]:
        with storage_guard(), self._engine.connect() as conn:
            return [credential_row(r) for r in conn.execute(query).mappings()]


def credential_row(r: Any) -> CredentialRow:
    """A row (a mapping by column name) as a ``CredentialRow``."""
    return CredentialRow(
        id=r["id"], username=r["username"], kind=r["kind"], name=r["name"],
        active=bool(r["active"]), created_at=from_micros(r["created_at"]),
        last_used_at=from_micros(r["last_used_at"]) if r["last_used_at"] else None,
        secret=r["secret"], last_step=r["last_step"], credential_id=r["credential_id"],
        public_key=r["public_key"], sign_count=int(r["sign_count"]), aaguid=r["aaguid"],
        transports=r["transports"], user_verified=bool(r["user_verified"]),
    )
