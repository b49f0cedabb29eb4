"""orders.cancelled_at: a cancelled order has a cancelled time and no applied time

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cancelled_at", sa.BigInteger(), nullable=True))
    # Until now a cancellation was written into applied_at.
    op.execute(
        "UPDATE orders SET cancelled_at = applied_at, applied_at = NULL WHERE state = 'CANCELLED'"
    )


def downgrade() -> None:
    op.execute("UPDATE orders SET applied_at = cancelled_at WHERE state = 'CANCELLED'")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("cancelled_at")
