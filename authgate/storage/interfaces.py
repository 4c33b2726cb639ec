"""The storage contracts. Every implementation passes ``tests/contract``."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

from authgate.core.values import AuditEvent, SessionRecord, StoredAuditEvent


class SessionStore(Protocol):
    def add(self, record: SessionRecord) -> None: ...

    def get(self, id_hash: str) -> SessionRecord | None: ...

    def touch(self, id_hash: str, last_seen: datetime) -> None: ...

    def replace(self, old_id_hash: str, record: SessionRecord) -> bool:
        """Atomically swap a session for a new one (id rotation). False if the old is gone."""
        ...

    def update(self, record: SessionRecord) -> None: ...

    def delete(self, id_hash: str) -> bool: ...

    def delete_for_user(self, username: str) -> int: ...

    def list_for_user(self, username: str) -> list[SessionRecord]: ...

    def purge_expired(self, now: datetime) -> int: ...

    def ping(self) -> None:
        """Raise StorageError when the database cannot be used."""
        ...


class AuditStore(Protocol):
    def append(self, event: AuditEvent) -> int:
        """Store one record durably and return its id. Raise StorageError on failure."""
        ...

    def query(self, *, since: datetime | None = None, until: datetime | None = None,
              username: str | None = None, event: str | None = None,
              outcome: str | None = None, host: str | None = None, after_id: int = 0,
              limit: int | None = None) -> Iterator[StoredAuditEvent]: ...
