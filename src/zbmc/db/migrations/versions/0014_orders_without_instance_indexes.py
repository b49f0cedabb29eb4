"""Orders without indexes by instance: applied changes as chains (orders.previous_order,
instances.bw/tp_applied_order)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

Metering reads an instance's applied BANDWIDTH and TRAFFIC_PACKAGE changes since it last
metered. It found them through ix_orders_instance_applied (instance_id, applied_at), an index of
nearly every order ever made, keyed by instance: each applied change went to a random leaf page
of it, and that cost grew with the index (docs/performance.md, stop 26). Now each such order
names the instance's applied order of its kind before it (previous_order), and the instance
names its last applied order of each kind (bw_applied_order, tp_applied_order): metering walks
back from there through the primary key, and the index goes.

ix_orders_instance_unapplied (0013) goes too. A release withdraws an instance's waiting
downgrades through the orders the instance row names as pending (bw_order, tp_order), and each
accepted change no longer writes a random leaf page of that index (nor its application a second
one). Listing one instance's orders, for operators, reads the tenant's.

The upgrade links the orders that exist: the applied ones in the order metering read them
(applied_at, created_at, order_number), and each pending one to its instance's last applied
order of its kind. Plain ADD COLUMN (no table copy): the instances' triggers (0010, 0011) stay.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

KINDS = (("BANDWIDTH", "bw_applied_order"), ("TRAFFIC_PACKAGE", "tp_applied_order"))


def upgrade() -> None:
    op.add_column("orders", sa.Column("previous_order", sa.String(40), nullable=True))
    op.add_column("instances", sa.Column("bw_applied_order", sa.String(40), nullable=True))
    op.add_column("instances", sa.Column("tp_applied_order", sa.String(40), nullable=True))
    op.execute(
        "UPDATE orders SET previous_order = chain.previous FROM ("
        " SELECT order_number, LAG(order_number) OVER ("
        "  PARTITION BY instance_id, kind ORDER BY applied_at, created_at, order_number"
        " ) AS previous"
        " FROM orders WHERE state = 'ENABLED' AND kind IN ('BANDWIDTH', 'TRAFFIC_PACKAGE')"
        ") AS chain"
        " WHERE orders.order_number = chain.order_number AND chain.previous IS NOT NULL"
    )
    for kind, column in KINDS:
        op.execute(
            f"UPDATE instances SET {column} = head.order_number FROM ("
            " SELECT instance_id, order_number, ROW_NUMBER() OVER ("
            "  PARTITION BY instance_id"
            "  ORDER BY applied_at DESC, created_at DESC, order_number DESC"
            " ) AS n"
            f" FROM orders WHERE state = 'ENABLED' AND kind = '{kind}'"
            ") AS head"
            " WHERE head.n = 1 AND instances.instance_id = head.instance_id"
        )
        op.execute(
            f"UPDATE orders SET previous_order = ("
            f" SELECT {column} FROM instances WHERE instances.instance_id = orders.instance_id"
            f") WHERE kind = '{kind}' AND state IN ('PROCESSING', 'WAIT_TO_ENABLE')"
        )
    op.drop_index("ix_orders_instance_applied", table_name="orders")
    op.drop_index("ix_orders_instance_unapplied", table_name="orders")


def downgrade() -> None:
    for name, columns, predicate in (
        ("ix_orders_instance_applied", ["instance_id", "applied_at"], "state = 'ENABLED'"),
        ("ix_orders_instance_unapplied", ["instance_id", "state"], "state <> 'ENABLED'"),
    ):
        op.create_index(
            name,
            "orders",
            columns,
            unique=False,
            sqlite_where=sa.text(predicate),
            postgresql_where=sa.text(predicate),
        )
    op.drop_column("instances", "tp_applied_order")
    op.drop_column("instances", "bw_applied_order")
    op.drop_column("orders", "previous_order")
