"""tags: the tenant's tags of the resource manager (zrm)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("tag_key", sa.String(length=64), nullable=False),
        sa.Column("tag_value", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_tags_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "tag_key", "tag_value", name=op.f("pk_tags")),
    )


def downgrade() -> None:
    op.drop_table("tags")
