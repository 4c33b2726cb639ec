"""The password verifier's 6-bit keyed prefilter: 63 of 64 wrong guesses at a guarded
account cost no argon2id (issue 15 item 7, availability under attack)

Revision ID: 0008
Revises: 0007
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: rows written before it have none and are checked with argon2id every time
    with op.batch_alter_table("regulation_verifiers") as batch:
        batch.add_column(sa.Column("prefilter", sa.SmallInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("regulation_verifiers") as batch:
        batch.drop_column("prefilter")
