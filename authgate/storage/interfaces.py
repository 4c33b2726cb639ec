"""The storage contracts. Every implementation passes ``tests/contract``."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
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
    ReportOnlyCount,
    SealedRow,
)
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
    VerifierRow,
)
from authgate.storage.rows import (
    ChallengeRow,
    CredentialRow,
    EnrolmentCodeRow,
    RecoveryCodeRow,
    SealedSecret,
)
from authgate.storage.service_bind_rows import BindClaim, BindState, ServiceBindRow
from authgate.storage.sink_rows import SinkCursor


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

    def delete_except(self, username: str, *, keep_id_hash: str | None) -> int:
        """Delete every session of ``username`` but ``keep_id_hash``; return how many."""
        ...

    def delete_all(self) -> int:
        """Delete every session of every user (suspected compromise); return how many."""
        ...


# -- second factors ---------------------------------------------------------------------
# Every "use once" below is decided by the row count of one conditional UPDATE or DELETE,
# so two requests racing with the same code, step or challenge cannot both win.

class CredentialStore(Protocol):
    def add(self, row: CredentialRow) -> None: ...

    def list_for(self, username: str, *, active_only: bool = False) -> list[CredentialRow]: ...

    def get(self, cred_id: str) -> CredentialRow | None: ...

    def by_credential_id(self, credential_id: str) -> CredentialRow | None:
        """The *active* WebAuthn credential with this id, or None."""
        ...

    def accept_step(self, cred_id: str, step: int, now: datetime, *,
                    activate: bool = False) -> bool:
        """Record TOTP ``step`` only if newer than the last one (RFC 6238 5.2)."""
        ...

    def rename(self, cred_id: str, username: str, name: str) -> bool: ...

    def set_secret(self, cred_id: str, secret: str) -> bool: ...

    def delete(self, cred_id: str, username: str) -> bool: ...

    def delete_all(self, username: str) -> int: ...

    def all_secrets(self) -> list[SealedSecret]:
        """Every stored TOTP seed (ciphertext), for key rotation."""
        ...


class RecoveryCodeStore(Protocol):
    def replace(self, username: str, codes: Sequence[RecoveryCodeRow], now: datetime) -> None:
        """Store a new set; the previous set stops working in the same transaction."""
        ...

    def unused(self, username: str) -> list[RecoveryCodeRow]: ...

    def spend(self, code_id: str, now: datetime) -> bool:
        """Mark one code used; False when it already was (single use)."""
        ...

    def delete_for(self, username: str) -> int: ...


class EnrolmentCodeStore(Protocol):
    def add(self, row: EnrolmentCodeRow, code_hash: str) -> None: ...

    def redeem(self, *, username: str, code_hash: str, now: datetime) -> bool:
        """Spend a live code issued for ``username``; False for any other code."""
        ...

    def state(self, code_hash: str) -> EnrolmentCodeRow | None:
        """The code's row whatever its state, so a refusal can be audited precisely."""
        ...

    def list_for(self, username: str) -> list[EnrolmentCodeRow]: ...

    def revoke(self, code_id: str, now: datetime) -> bool: ...


class ChallengeStore(Protocol):
    def put(self, *, key: str, purpose: str, username: str, challenge: str,
            expires_at: datetime) -> None:
        """Keep one challenge per key (a new one replaces the old)."""
        ...

    def take(self, *, key: str, purpose: str, now: datetime) -> ChallengeRow | None:
        """The challenge once, if live and for ``purpose``; gone afterwards either way."""
        ...

    def peek(self, *, key: str, purpose: str, now: datetime) -> ChallengeRow | None:
        """The live challenge, left in place: it is taken in ``StepWrites.take_challenge``."""
        ...

    def purge(self, now: datetime) -> int:
        """Delete expired challenges (abandoned ceremonies); return how many."""
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
                      batch: int = 5000, text_event: str = "") -> Iterator[SealedRow]:
        """Every row with ``first_id <= id <= last_id`` as verification reads it (the
        sealed text of a record whose ``event`` is ``text_event`` as text)."""
        ...

    def id_span(self, since: int | None, until: int | None) -> tuple[int, int | None]:
        """The id range of the records with ``since <= ts < until`` (µs)."""
        ...

    def max_id(self) -> int:
        """The highest record id (0 when empty)."""
        ...

    def first_below(self, first_id: int) -> int | None:
        """The lowest record id below ``first_id``, if any."""
        ...

    def stored_later(self, chain_id: str, seq: int, after_id: int) -> int | None:
        """The lowest id above ``after_id`` of a record of ``chain_id`` before ``seq``."""
        ...

    def chain_edges(self, *, below: int, above: int | None) -> list[int]:
        """Each chain's last record id below ``below`` and first above ``above``."""
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

    def report_only_counts(self, *, since: datetime, until: datetime
                           ) -> tuple[list[ReportOnlyCount], bool]: ...


class SinkCursorStore(Protocol):
    """Each SIEM sink's delivery cursor and its deliverer's lease (``tables_sinks``). The
    lease is taken and the cursor moved by conditional UPDATEs: one deliverer at a time."""

    def ensure(self, sink: str, *, now: datetime) -> SinkCursor:
        """The sink's cursor; a new sink starts after the newest record stored now."""
        ...

    def read(self, sink: str) -> SinkCursor | None: ...

    def claim(self, sink: str, *, owner: str, now: datetime, until: datetime) -> bool:
        """Take or renew the lease if ``owner`` holds it or it ran out; False otherwise."""
        ...

    def advance(self, sink: str, *, owner: str, expected: int, last_id: int, last_ts: int,
                now: datetime, until: datetime) -> bool:
        """Move the cursor from ``expected`` to ``last_id`` (renewing the lease) only while
        ``owner`` holds the lease; False when another deliverer took it."""
        ...

    def release(self, sink: str, *, owner: str) -> None: ...


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


class ServiceBindStore(Protocol):
    """The service-bind circuit, shared by every worker and instance (issue 15 item 1).

    ``claim`` is atomic: of all callers that find a password fingerprint unknown, exactly one
    gets ``TRIAL`` until it settles or its lease ends; the others get ``BUSY``."""

    def claim(self, *, bind_dn: str, fingerprint: str, now: datetime,
              lease: timedelta) -> BindClaim: ...

    def settle(self, *, bind_dn: str, fingerprint: str, state: BindState, code: str,
               detail: str, now: datetime) -> None: ...

    def release(self, *, bind_dn: str, fingerprint: str) -> None:
        """Give up a trial that never reached AD's verdict (the DC did not answer)."""
        ...

    def refused(self, bind_dn: str) -> list[ServiceBindRow]: ...

    def reset(self, bind_dn: str) -> int:
        """Forget every fingerprint of ``bind_dn`` (the operator's reset); rows removed."""
        ...


class PasswordVerifierStore(Protocol):
    """One verifier per account (``regulation_verifiers``), replaced on each success."""

    def get(self, username: str) -> VerifierRow | None: ...

    def put(self, row: VerifierRow) -> None:
        """Insert or replace the account's verifier."""
        ...

    def delete(self, username: str) -> bool: ...
