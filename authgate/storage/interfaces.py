"""The storage contracts. Every implementation passes ``tests/contract``."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from authgate.core.values import AuditEvent, SessionRecord, StoredAuditEvent
from authgate.storage.regulation_rows import (
    Ban,
    BanOrder,
    FactorCounts,
    FailureCounts,
    PriorBan,
    Reservation,
    Settlement,
    Snapshot,
    Verdict,
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


class AuditStore(Protocol):
    def append(self, event: AuditEvent) -> int:
        """Store one record durably and return its id. Raise StorageError on failure."""
        ...

    def query(self, *, since: datetime | None = None, until: datetime | None = None,
              username: str | None = None, event: str | None = None,
              outcome: str | None = None, host: str | None = None, after_id: int = 0,
              limit: int | None = None) -> Iterator[StoredAuditEvent]: ...


# -- Regulation ---------------------------------------------------------------------------------
# The brute-force store applies decisions it does not make: the business rules (admission,
# spray and IP-ban order, escalation) are pure functions in ``authgate.regulation.rules``,
# bound to one policy snapshot and handed to every call as ``rules``.


class RegulationRules(Protocol):
    """The rules for one attempt, asked by the store while it holds the row locks."""

    @property
    def window(self) -> timedelta:
        """How far back the policy counters look."""
        ...

    @property
    def chain_window(self) -> timedelta | None:
        """How long AD's failure chain lasts (with slack); None when AD never locks."""
        ...

    def judge(self, snapshot: Snapshot) -> str:
        """The reason to refuse a password attempt, or "" to admit (and reserve) it."""
        ...

    def escalations(self, counts: FailureCounts) -> tuple[BanOrder, ...]:
        """The bans a counted failure starts, in the order the store applies them."""
        ...

    def judge_factor(self, counts: FactorCounts) -> str:
        """The reason to refuse a second-factor attempt, or "" to admit it."""
        ...

    def factor_escalations(self, counts: FactorCounts) -> tuple[BanOrder, ...]:
        """The bans a counted second-factor failure starts."""
        ...

    def ban(self, order: BanOrder, *, prior: PriorBan, now: datetime) -> Ban:
        """The ban to store: its level and end follow the subject's previous ban."""
        ...


class RegulationStore(Protocol):
    """Atomic counters shared by every authgate instance (SQLite or PostgreSQL)."""

    def admit(self, *, attempt: str, username: str, ip: str, password_mac: str | None,
              rules: RegulationRules, now: datetime) -> Verdict: ...

    def settle_failure(self, r: Reservation, *, password_mac: str, bind_reached: bool,
                       rules: RegulationRules, now: datetime) -> Settlement: ...

    def settle_success(self, r: Reservation, *, now: datetime) -> None: ...

    def settle_neutral(self, r: Reservation, *, keep_ad_slot: bool, now: datetime
                       ) -> None: ...

    def admit_factor(self, *, attempt: str, username: str, rules: RegulationRules,
                     now: datetime) -> str: ...

    def settle_factor(self, *, attempt: str, username: str, success: bool,
                      rules: RegulationRules, now: datetime) -> Ban | None: ...

    def active_bans(self, now: datetime) -> list[Ban]: ...

    def lift(self, subjects: Sequence[str], *, prefixes: Sequence[str] = ()) -> list[str]: ...

    def purge(self, now: datetime, horizon: datetime) -> int: ...
