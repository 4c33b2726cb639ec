"""brute-force regulation: failure chains, subjects and bans, events, familiar IPs, passwords

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "regulation_users",
        sa.Column("username", sa.String(256), primary_key=True),
        sa.Column("chain", sa.Integer, nullable=False),
        sa.Column("chain_unfamiliar", sa.Integer, nullable=False),
        sa.Column("pending", sa.Integer, nullable=False),
        sa.Column("chain_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "regulation_subjects",
        sa.Column("subject", sa.String(320), primary_key=True),
        sa.Column("ban_until", sa.BigInteger, nullable=True),
        sa.Column("ban_level", sa.Integer, nullable=False),
        sa.Column("ban_reason", sa.String(64), nullable=False),
        sa.Column("banned_at", sa.BigInteger, nullable=True),
        sa.Column("seen_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "regulation_events",
        sa.Column("attempt", sa.String(32), primary_key=True),
        sa.Column("subject", sa.String(320), primary_key=True),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_regulation_events_subject_at", "regulation_events", ["subject", "at"])
    op.create_table(
        "regulation_familiar",
        sa.Column("username", sa.String(256), primary_key=True),
        sa.Column("ip", sa.String(64), primary_key=True),
        sa.Column("last_success", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "regulation_passwords",
        sa.Column("username", sa.String(256), primary_key=True),
        sa.Column("mac", sa.String(64), primary_key=True),
        sa.Column("seen_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_regulation_passwords_mac", "regulation_passwords", ["mac", "seen_at"])


def downgrade() -> None:
    for table in ("regulation_passwords", "regulation_familiar", "regulation_events",
                  "regulation_subjects", "regulation_users"):
        op.drop_table(table)
