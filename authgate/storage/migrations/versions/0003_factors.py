"""second factors, recovery codes, enrolment codes, challenges

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_used_at", sa.BigInteger, nullable=True),
        sa.Column("secret", sa.Text, nullable=True),
        sa.Column("last_step", sa.BigInteger, nullable=True),
        sa.Column("credential_id", sa.String(1400), nullable=True, unique=True),
        sa.Column("public_key", sa.Text, nullable=True),
        sa.Column("sign_count", sa.BigInteger, nullable=False),
        sa.Column("aaguid", sa.String(36), nullable=False),
        sa.Column("transports", sa.String(128), nullable=False),
        sa.Column("user_verified", sa.Boolean, nullable=False),
    )
    op.create_index("ix_credentials_username", "credentials", ["username"])
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("code_hash", sa.String(256), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("used_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_recovery_codes_username", "recovery_codes", ["username"])
    op.create_table(
        "enrolment_codes",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("issued_by", sa.String(256), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("used_at", sa.BigInteger, nullable=True),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_enrolment_codes_username", "enrolment_codes", ["username"])
    op.create_table(
        "challenges",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("challenge", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("challenges", "enrolment_codes", "recovery_codes", "credentials"):
        op.drop_table(table)
