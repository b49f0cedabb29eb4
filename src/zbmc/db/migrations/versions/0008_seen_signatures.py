"""seen signatures: the replay guard of write requests

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seen_signatures",
        sa.Column("signed_at", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("signed_at", "digest", name=op.f("pk_seen_signatures")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("seen_signatures")
