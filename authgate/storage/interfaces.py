"""The storage contracts. Every implementation passes ``tests/contract``."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

from authgate.core.values import AuditEvent, SessionRecord, StoredAuditEvent
from authgate.storage.audit_rows import (
    AuditFilter,
    AuditRow,
    ChainHead,
    CheckpointRow,
    DayCounts,
    ExportFormat,
    FailingSource,
    PurgePoint,
    RawAuditRow,
    RenderedRow,
    SealedRow,
)


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


# -- Audit ---------------------------------------------------------------------------
# What the audit trail needs from its store (``audit.*`` takes these, only
# ``composition`` builds ``SqlAuditStore``). Row layouts: ``storage.audit_rows``.


class AuditAppender(Protocol):
    """One writer lane's hot append of already sealed rows."""

    def insert(self, row: tuple[Any, ...], *, register: tuple[Any, ...] | None = None) -> int:
        """Store one sealed row (``SEALED_FIELDS`` then ``mac``), first registering its
        chain ``(chain_id, created_ts, writer, key_id)`` if given; the new id."""
        ...

    def discard(self) -> None:
        """Drop the lane's connection after a failure."""
        ...

    def close(self) -> None: ...


class AuditStore(Protocol):
    def append(self, event: AuditEvent) -> int:
        """Store one *unsealed* record and return its id (verification reports it as
        damage: tests of tamper evidence use it). Raise StorageError on failure."""
        ...

    def appender(self) -> AuditAppender:
        """A new writer lane's appender (sealed records)."""
        ...

    def query(self, *, since: datetime | None = None, until: datetime | None = None,
              username: str | None = None, event: str | None = None,
              outcome: str | None = None, host: str | None = None, after_id: int = 0,
              limit: int | None = None) -> Iterator[StoredAuditEvent]: ...

    def stream_rows(self, wanted: AuditFilter, *, after_id: int = 0, batch: int = 5000,
                    descending: bool = False) -> Iterator[AuditRow]:
        """Matching rows one at a time by id (keyset batches: constant memory)."""
        ...

    def row_batches(self, wanted: AuditFilter, *, after_id: int = 0, batch: int = 5000,
                    descending: bool = False, last_id: int | None = None,
                    ) -> Iterator[list[RawAuditRow]]:
        """Matching rows a batch at a time by id, ascending up to ``last_id`` if given;
        plain tuples in ``AuditRow`` layout (the bulk export path)."""
        ...

    def rendered_batches(self, wanted: AuditFilter, *, fmt: ExportFormat, batch: int,
                         first_id: int, last_id: int | None,
                         ) -> Iterator[list[RenderedRow]] | None:
        """Export lines rendered by the database, or None when this backend does not
        render them (the caller renders ``row_batches`` itself)."""
        ...

    def stream_sealed(self, *, first_id: int = 1, last_id: int | None = None,
                      batch: int = 5000) -> Iterator[SealedRow]:
        """Every row with ``first_id <= id <= last_id`` as verification reads it."""
        ...

    def id_span(self, since: int | None, until: int | None) -> tuple[int, int | None]:
        """The id range of the records with ``since <= ts < until`` (µs)."""
        ...

    def max_id(self) -> int:
        """The highest record id (0 when empty)."""
        ...

    def registered_chains(self) -> set[str]: ...

    def head_of(self, chain_id: str) -> ChainHead | None: ...

    def heads_since(self, after_id: int) -> tuple[int, dict[str, ChainHead]]:
        """The highest id, and the head of every chain that grew, after ``after_id``."""
        ...

    def purge_points(self, before_ts: int) -> list[PurgePoint]: ...

    def delete_chain_prefix(self, chain_id: str, upto_id: int) -> int: ...

    def checkpoints(self) -> list[CheckpointRow]:
        """Every signed checkpoint in seq order (few rows)."""
        ...

    def last_checkpoint(self) -> CheckpointRow | None: ...

    def insert_checkpoint(self, *, seq: int, ts: int, kind: str, key_id: str, payload: str,
                          signature: str) -> bool:
        """False when another writer took ``seq`` first (the caller retries)."""
        ...

    def count(self) -> int: ...

    def daily_counts(self, *, since: datetime, until: datetime) -> list[DayCounts]:
        """The auditor's summary per day, aggregated by the database."""
        ...

    def top_failing_sources(self, *, since: datetime, until: datetime,
                            limit: int = 10) -> list[FailingSource]: ...
