"""Table definitions. Alembic migrations under ``migrations/`` are the source of truth for
the database; this metadata must match them (a test compares the two)."""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

sessions = Table(
    "sessions", metadata,
    Column("id_hash", String(64), primary_key=True),  # sha256(token): the DB never holds tokens
    Column("username", String(256), nullable=False),
    Column("groups", Text, nullable=False),  # JSON list
    Column("level", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("auth_time", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("refreshed_at", BigInteger, nullable=True),
    Column("client_ip", String(64), nullable=False),
    Column("user_agent", String(512), nullable=False),
    Column("display_name", String(256), nullable=False),
    Column("email", String(256), nullable=False),
    Column("stable_id", String(128), nullable=False),
    Column("source", String(32), nullable=False),
    Column("data", Text, nullable=False),  # JSON object: small per-session state
    Index("ix_sessions_username", "username"),
    Index("ix_sessions_expires_at", "expires_at"),
)

audit_events = Table(
    "audit_events", metadata,
    Column("id", Integer().with_variant(BigInteger, "postgresql"), primary_key=True,
           autoincrement=True),
    Column("ts", BigInteger, nullable=False),
    Column("event", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("username", String(256), nullable=False),
    Column("client_ip", String(64), nullable=False),
    Column("user_agent", String(512), nullable=False),
    Column("host", String(256), nullable=False),
    Column("path", String(2048), nullable=False),
    Column("method", String(16), nullable=False),
    Column("rule_id", String(128), nullable=False),
    Column("policy_digest", String(64), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("detail", Text, nullable=False),  # JSON object, never a secret
    # The hash chain (migration 0002, docs/audit.md): canonical-form version, the writer's
    # chain, position in it, HMAC key id, the predecessor's MAC and this record's MAC.
    # No index on (chain_id, seq): within a chain id order is seq order (one writer per
    # chain), so verification scans the primary key; each index costs every append.
    Column("v", Integer, nullable=False, server_default="1"),
    Column("chain_id", String(32), nullable=False, server_default=""),
    Column("seq", BigInteger, nullable=False, server_default="0"),
    Column("key_id", String(32), nullable=False, server_default=""),
    Column("prev", String(64), nullable=False, server_default=""),
    Column("mac", String(64), nullable=False, server_default=""),
    Index("ix_audit_ts", "ts"),
    Index("ix_audit_username_ts", "username", "ts"),
)

#: One row per audit chain (one chain per writer lane of each process), registered in the
#: transaction of the chain's first record; a registered chain with no records was deleted.
audit_chains = Table(
    "audit_chains", metadata,
    Column("chain_id", String(32), primary_key=True),
    Column("created_ts", BigInteger, nullable=False),
    Column("writer", String(128), nullable=False),  # host:pid, for investigators
    Column("key_id", String(32), nullable=False),
)

#: Signed checkpoints (Ed25519), themselves chained by ``seq`` and the previous signature.
audit_checkpoints = Table(
    "audit_checkpoints", metadata,
    Column("id", Integer().with_variant(BigInteger, "postgresql"), primary_key=True,
           autoincrement=True),
    Column("seq", BigInteger, nullable=False, unique=True),
    Column("ts", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # canonical JSON, exactly the signed bytes
    Column("signature", String(256), nullable=False),
)
