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
    Index("ix_audit_ts", "ts"),
    Index("ix_audit_username_ts", "username", "ts"),
)
