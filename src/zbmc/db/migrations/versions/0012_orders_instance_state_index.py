"""orders: the index on instance_id becomes (instance_id, state)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

The queries for one instance's orders in one state (metering's history of ENABLED bandwidth and
traffic-package changes, run for every POSTPAID instance each hour and at TerminateInstance, and
a release's withdrawal of WAIT_TO_ENABLE downgrades) had two indexes to choose from on SQLite:
ix_orders_instance_id (instance_id = ?) and ix_orders_due (state = ?). Without table statistics
SQLite took ix_orders_due, and ``state = 'ENABLED'`` matches nearly every order ever made: a
TerminateInstance cost 25 ms of CPU after a few hundred thousand bandwidth changes, against
1.6 ms on a fresh database (docs/performance.md). With both columns in one index it is the
index with more equal columns, and an instance's orders are a handful. Same number of indexes.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_index("ix_orders_instance_id")
        batch_op.create_index("ix_orders_instance_state", ["instance_id", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_index("ix_orders_instance_state")
        batch_op.create_index("ix_orders_instance_id", ["instance_id"], unique=False)
