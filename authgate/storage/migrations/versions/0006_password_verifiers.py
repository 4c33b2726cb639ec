"""password verifiers: argon2id of the last password AD accepted, one per account (issue 15)

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "regulation_verifiers",
        sa.Column("username", sa.String(256), primary_key=True),
        sa.Column("verifier", sa.String(256), nullable=False),
        sa.Column("password_stamp", sa.String(64), nullable=False),
        sa.Column("set_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("regulation_verifiers")
