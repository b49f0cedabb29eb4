"""network attachments for the agent, inbound caps per offering

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
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
        "network_attachments",
        sa.Column("instance_id", sa.String(length=40), nullable=False),
        sa.Column("host", sa.String(length=128), nullable=False),
        sa.Column("interface", sa.String(length=15), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_network_attachments")),
    )
    op.create_index(
        "ix_network_attachments_host",
        "network_attachments",
        ["host", "interface"],
        unique=True,
    )
    with op.batch_alter_table("offerings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("cap_inbound", sa.Boolean(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("offerings", schema=None) as batch_op:
        batch_op.drop_column("cap_inbound")
    op.drop_index("ix_network_attachments_host", table_name="network_attachments")
    op.drop_table("network_attachments")
