"""instance lifecycle: creation settings, host operations, resource groups, address pools, faults

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ipxe_url", sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column("key_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("subnet_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("raid_config", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("partitions", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("nic", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("enable_gateway_mode", sa.Boolean(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("host_op", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("host_op_due", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("host_op_attempts", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("host_op_error", sa.Text(), nullable=True))
        batch_op.create_index("ix_instances_host_op_due", ["host_op_due"], unique=False)
    op.create_table(
        "resource_groups",
        sa.Column("resource_group_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.tenant_id"],
            name=op.f("fk_resource_groups_tenant_id_tenants"),
        ),
        sa.PrimaryKeyConstraint("resource_group_id", name=op.f("pk_resource_groups")),
    )
    with op.batch_alter_table("resource_groups", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_resource_groups_tenant_id"), ["tenant_id"], unique=False
        )
    op.create_table(
        "address_pools",
        sa.Column("pool_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("zone_id", sa.String(length=40), nullable=True),
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("next_index", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("pool_id", name=op.f("pk_address_pools")),
    )
    op.create_table(
        "addresses",
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("pool_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("instance_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["address_pools.pool_id"],
            name=op.f("fk_addresses_pool_id_address_pools"),
        ),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_addresses")),
    )
    with op.batch_alter_table("addresses", schema=None) as batch_op:
        batch_op.create_index("ix_addresses_instance", ["instance_id"], unique=False)
        batch_op.create_index("ix_addresses_free", ["pool_id", "instance_id"], unique=False)
    op.create_table(
        "faults",
        sa.Column(
            "fault_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=40), nullable=True),
        sa.Column("instance_id", sa.String(length=40), nullable=True),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("fault_id", name=op.f("pk_faults")),
    )


def downgrade() -> None:
    op.drop_table("faults")
    with op.batch_alter_table("addresses", schema=None) as batch_op:
        batch_op.drop_index("ix_addresses_free")
        batch_op.drop_index("ix_addresses_instance")
    op.drop_table("addresses")
    op.drop_table("address_pools")
    with op.batch_alter_table("resource_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_resource_groups_tenant_id"))
    op.drop_table("resource_groups")
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index("ix_instances_host_op_due")
        for column in (
            "host_op_error",
            "host_op_attempts",
            "host_op_due",
            "host_op",
            "enable_gateway_mode",
            "nic",
            "partitions",
            "raid_config",
            "subnet_id",
            "key_id",
            "ipxe_url",
        ):
            batch_op.drop_column(column)
