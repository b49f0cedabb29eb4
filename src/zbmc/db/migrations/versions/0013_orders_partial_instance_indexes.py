"""orders: the index by instance becomes two partial ones, applied orders and the others

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

ix_orders_instance_state (instance_id, state) held every order ever made. An accepted change
inserted its order at a random leaf of it (the instance's place), and the worker moved the
entry when it applied the order: two random pages of an index that grows by one entry a change.
Under a steady SQLite ModifyInstanceBandwidth load the API thread's, the worker's and the WAL
checkpointer's CPU per request rose by a fifth within a minute of load, and dropping the index
removed the rise (docs/performance.md, stop 25).

Now ix_orders_instance_applied (instance_id, applied_at) holds the ENABLED orders (metering's
history of an instance's changes) and ix_orders_instance_unapplied (instance_id, state) the
others: the pending and cancelled ones, a few per instance (a release's withdrawal of
WAIT_TO_ENABLE downgrades). An accepted change enters only the small index; the worker moves
it to the large one once. The queries carry the predicates word for word
(zbmc.db.tables.APPLIED / UNAPPLIED).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

APPLIED = "state = 'ENABLED'"
UNAPPLIED = "state <> 'ENABLED'"


def upgrade() -> None:
    op.drop_index("ix_orders_instance_state", table_name="orders")
    for name, columns, predicate in (
        ("ix_orders_instance_applied", ["instance_id", "applied_at"], APPLIED),
        ("ix_orders_instance_unapplied", ["instance_id", "state"], UNAPPLIED),
    ):
        op.create_index(
            name,
            "orders",
            columns,
            unique=False,
            sqlite_where=sa.text(predicate),
            postgresql_where=sa.text(predicate),
        )


def downgrade() -> None:
    op.drop_index("ix_orders_instance_unapplied", table_name="orders")
    op.drop_index("ix_orders_instance_applied", table_name="orders")
    op.create_index("ix_orders_instance_state", "orders", ["instance_id", "state"], unique=False)
