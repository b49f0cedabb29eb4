"""billing progress and traffic samples

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "traffic_samples",
        sa.Column("sample_id", sa.String(length=128), nullable=False),
        sa.Column("instance_id", sa.String(length=40), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("in_bytes", sa.BigInteger(), nullable=False),
        sa.Column("out_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sample_id", name=op.f("pk_traffic_samples")),
    )
    with op.batch_alter_table("traffic_samples", schema=None) as batch_op:
        batch_op.create_index("ix_traffic_samples_instance_ts", ["instance_id", "ts"], unique=False)

    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("billing_anchor", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("metered_until", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("traffic_cycle_start", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("overage_billed_gb", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("recycled_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_column("recycled_at")
        batch_op.drop_column("overage_billed_gb")
        batch_op.drop_column("traffic_cycle_start")
        batch_op.drop_column("metered_until")
        batch_op.drop_column("billing_anchor")

    with op.batch_alter_table("traffic_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_traffic_samples_instance_ts")

    op.drop_table("traffic_samples")
