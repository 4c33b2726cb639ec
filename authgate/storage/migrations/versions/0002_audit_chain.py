"""audit hash chain: chain columns, chain registry, signed checkpoints

Revision ID: 0002
Revises: 0001

Records written before this revision have no chain (``chain_id`` empty); ``authgate audit
verify`` reports them as unsealed. See docs/audit.md.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.Integer().with_variant(sa.BigInteger, "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("v", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("chain_id", sa.String(32), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("seq", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("key_id", sa.String(32), nullable=False, server_default=""))
        batch.add_column(sa.Column("prev", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("mac", sa.String(64), nullable=False, server_default=""))
    op.create_table(
        "audit_chains",
        sa.Column("chain_id", sa.String(32), primary_key=True),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
        sa.Column("writer", sa.String(128), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("signature", sa.String(256), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_chains")
    with op.batch_alter_table("audit_events") as batch:
        for name in ("mac", "prev", "key_id", "seq", "chain_id", "v"):
            batch.drop_column(name)
