"""One exception per kind of audit failure, rooted at ``AuthgateError``.

Damage found by verification names the first bad record and the kind of damage
(ASVS 7.3.3); the CLI prints it and exits 1.
"""
from __future__ import annotations

from authgate.core.errors import AuthgateError


class AuditError(AuthgateError):
    reason = "audit_error"


class AuditKeyMissing(AuditError):
    """No chain key (``secrets.audit_key``) or no signing key where one is needed."""

    reason = "audit_key_missing"


class UntrustedKey(AuditError):
    """A signature was made with a key that is not among the trusted ones."""

    reason = "audit_untrusted_key"


class ChainDamage(AuditError):
    """The stored trail differs from what was written. ``kind`` names the damage."""

    kind = "damaged"
    reason = "audit_damaged"

    def __init__(self, message: str, *, record_id: int | None = None, chain_id: str = "",
                 seq: int | None = None) -> None:
        self.message = message
        self.record_id = record_id if type(record_id) is int else None
        #: as the record holds them; a value of another type (an insider's edit) is
        #: not repeated: the message and the record id say where
        self.chain_id = chain_id if type(chain_id) is str else ""
        self.seq = seq if type(seq) is int else None
        where = f"record {self.record_id}" if self.record_id is not None else "chain"
        super().__init__(f"{self.kind}: {where} (chain {self.chain_id or '-'} seq "
                         f"{self.seq if self.seq is not None else '-'}): {message}")

    def __reduce__(self) -> tuple[object, ...]:  # survives the trip from a worker process
        return (_rebuild, (type(self), self.message, self.record_id, self.chain_id, self.seq))


def _rebuild(cls: type[ChainDamage], message: str, record_id: int | None, chain_id: str,
             seq: int | None) -> ChainDamage:
    return cls(message, record_id=record_id, chain_id=chain_id, seq=seq)


class RecordAltered(ChainDamage):
    """A record's MAC does not match its content: edited, or rewritten without the key."""

    kind = "altered"


class RecordForged(ChainDamage):
    """A record no writer made: unknown chain, or a second record at a taken position."""

    kind = "forged"


class RecordsMissing(ChainDamage):
    """A gap in a chain: records were deleted from the middle."""

    kind = "missing"


class RecordsReordered(ChainDamage):
    """Authentic records out of their written order (swapped or moved)."""

    kind = "reordered"


class ChainTruncated(ChainDamage):
    """A chain ends before a head that a signed checkpoint saw: its tail was deleted."""

    kind = "truncated"


class ChainHeadCut(ChainDamage):
    """A chain does not start at its beginning or at a signed retention cut."""

    kind = "head_cut"


class ChainDeleted(ChainDamage):
    """A registered or checkpointed chain has no records left."""

    kind = "chain_deleted"


class RecordUnsealed(ChainDamage):
    """A record outside any chain (written before migration 0002, or inserted by hand)."""

    kind = "unsealed"


class UnknownKeyId(ChainDamage):
    """A record names a chain key that is not configured (add it to previous_keys)."""

    kind = "unknown_key"


class CheckpointInvalid(ChainDamage):
    """A checkpoint's signature fails, its key id is one no configured key knows, a column
    holds a value authgate never writes, or the sequence has a fork."""

    kind = "checkpoint_invalid"


class CheckpointDeleted(CheckpointInvalid):
    """A checkpoint is gone: a gap in the sequence, or a sealed ``audit.checkpoint`` record
    names a checkpoint the table no longer holds (deleting the newest ones hides a tail
    cut, issue 16), or a witnessed checkpoint is missing from a database that holds later
    records."""

    kind = "checkpoint_deleted"


class TrailWiped(ChainDamage):
    """No record at all: a trail authgate has written to is never empty (every run writes,
    and ``audit verify`` records itself), so an empty one was wiped or is a stale copy
    (an SQLite file copied without its ``-wal``)."""

    kind = "wiped"


class SchemaAltered(ChainDamage):
    """An audit table or column was dropped or renamed (verification checks the schema
    first: a query failing on it is evidence, not "could not check")."""

    kind = "schema_altered"


class TrailUnreadable(ChainDamage):
    """A value no authgate writer stores made verification itself fail (an id or a number
    of another type, nesting beyond any record): damage, never a traceback or exit 2."""

    kind = "unreadable"


class ExportInvalid(AuditError):
    """An exported file fails offline verification (edited, cut, or manifest forged)."""

    reason = "audit_export_invalid"

    def __init__(self, message: str, *, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


class ChainWiped(TrailWiped):
    """The database holds no record while a witness or anchor saw signed checkpoints."""

    kind = "wiped"


class RolledBack(ChainDamage):
    """The database is an older copy: it ends before a witnessed checkpoint was signed."""

    kind = "rolled_back"


class WitnessInvalid(ChainDamage):
    """A witness or anchor line is edited: bad signature, or not what the key signed."""

    kind = "witness_invalid"
