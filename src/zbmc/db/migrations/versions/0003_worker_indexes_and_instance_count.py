"""worker indexes and per-tenant instance count

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("instance_count", sa.BigInteger(), server_default="0", nullable=False)
        )
    op.execute(
        "UPDATE tenants SET instance_count = "
        "(SELECT COUNT(*) FROM instances WHERE instances.tenant_id = tenants.tenant_id)"
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index("ix_instances_expired_time", ["expired_time"], unique=False)
        batch_op.create_index("ix_instances_metered_until", ["metered_until"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index("ix_instances_metered_until")
        batch_op.drop_index("ix_instances_expired_time")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("instance_count")
