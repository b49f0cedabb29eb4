"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clock_state",
        sa.Column("clock_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("offset_seconds", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("clock_id", name=op.f("pk_clock_state")),
    )
    op.create_table(
        "images",
        sa.Column("image_id", sa.String(length=64), nullable=False),
        sa.Column("image_name", sa.String(length=200), nullable=False),
        sa.Column("catalog", sa.String(length=40), nullable=False),
        sa.Column("image_type", sa.String(length=40), nullable=False),
        sa.Column("os_type", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_images")),
    )
    op.create_table(
        "instance_types",
        sa.Column("instance_type_id", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=400), nullable=False),
        sa.Column("cpu_core_count", sa.Integer(), nullable=False),
        sa.Column("cpu_detail", sa.String(length=200), nullable=False),
        sa.Column("cpu_cores", sa.Integer(), nullable=False),
        sa.Column("cpu_threads", sa.Integer(), nullable=False),
        sa.Column("base_frequency", sa.String(length=40), nullable=False),
        sa.Column("memory_size", sa.Integer(), nullable=False),
        sa.Column("maximum_bandwidth", sa.Integer(), nullable=False),
        sa.Column("support_raids", sa.JSON(), nullable=False),
        sa.Column("support_subnet", sa.Boolean(), nullable=False),
        sa.Column("is_ha", sa.Boolean(), nullable=False),
        sa.Column("total_disk_size", sa.Integer(), nullable=False),
        sa.Column("disk_description", sa.String(length=200), nullable=False),
        sa.Column("disks", sa.JSON(), nullable=False),
        sa.Column("image_ids", sa.JSON(), nullable=False),
        sa.Column("vpu_vendor", sa.String(length=40), nullable=True),
        sa.Column("vpu_card", sa.String(length=40), nullable=True),
        sa.Column("vpu_count", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("instance_type_id", name=op.f("pk_instance_types")),
    )
    op.create_table(
        "tenants",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenants")),
    )
    op.create_table(
        "zones",
        sa.Column("zone_id", sa.String(length=40), nullable=False),
        sa.Column("zone_name", sa.String(length=200), nullable=False),
        sa.Column("city_name", sa.String(length=200), nullable=False),
        sa.Column("area_name", sa.String(length=200), nullable=False),
        sa.Column("is_cloud_router_available", sa.Boolean(), nullable=False),
        sa.Column("is_byoip_enabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("zone_id", name=op.f("pk_zones")),
    )
    op.create_table(
        "access_keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_access_keys_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_access_keys")),
    )
    with op.batch_alter_table("access_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_keys_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "instances",
        sa.Column("instance_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("zone_id", sa.String(length=40), nullable=False),
        sa.Column("instance_type_id", sa.String(length=64), nullable=False),
        sa.Column("instance_name", sa.String(length=64), nullable=False),
        sa.Column("hostname", sa.String(length=64), nullable=False),
        sa.Column("image_id", sa.String(length=64), nullable=True),
        sa.Column("instance_charge_type", sa.String(length=16), nullable=False),
        sa.Column("internet_charge_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("bandwidth", sa.Integer(), nullable=False),
        sa.Column("traffic_package_gb", sa.BigInteger(), nullable=True),
        sa.Column("period", sa.Integer(), nullable=True),
        sa.Column("auto_renew", sa.Boolean(), nullable=False),
        sa.Column("create_time", sa.BigInteger(), nullable=False),
        sa.Column("period_start", sa.BigInteger(), nullable=True),
        sa.Column("expired_time", sa.BigInteger(), nullable=True),
        sa.Column("bw_status", sa.String(length=16), nullable=False),
        sa.Column("bw_pending", sa.Integer(), nullable=True),
        sa.Column("bw_order", sa.String(length=40), nullable=True),
        sa.Column("tp_status", sa.String(length=16), nullable=True),
        sa.Column("tp_pending_gb", sa.BigInteger(), nullable=True),
        sa.Column("tp_order", sa.String(length=40), nullable=True),
        sa.Column("primary_ip", sa.String(length=64), nullable=True),
        sa.Column("private_ip", sa.String(length=64), nullable=True),
        sa.Column("ipv6", sa.String(length=64), nullable=True),
        sa.Column("resource_group_id", sa.String(length=64), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_instances_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_instances")),
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index("ix_instances_tenant", ["tenant_id", "instance_id"], unique=False)

    op.create_table(
        "ledger",
        sa.Column(
            "entry_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("order_number", sa.String(length=40), nullable=True),
        sa.Column("instance_id", sa.String(length=40), nullable=True),
        sa.Column("description", sa.String(length=400), nullable=False),
        sa.Column("period_start", sa.BigInteger(), nullable=True),
        sa.Column("period_end", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_ledger_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_ledger")),
    )
    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_order_number"), ["order_number"], unique=False)
        batch_op.create_index("ix_ledger_tenant", ["tenant_id", "entry_id"], unique=False)

    op.create_table(
        "offerings",
        sa.Column("zone_id", sa.String(length=40), nullable=False),
        sa.Column("instance_type_id", sa.String(length=64), nullable=False),
        sa.Column("instance_charge_types", sa.JSON(), nullable=False),
        sa.Column("internet_charge_types", sa.JSON(), nullable=False),
        sa.Column("maximum_bandwidth_out", sa.Integer(), nullable=False),
        sa.Column("default_bandwidth_out", sa.Integer(), nullable=False),
        sa.Column("default_traffic_package_gb", sa.BigInteger(), nullable=False),
        sa.Column("maximum_traffic_package_gb", sa.BigInteger(), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("discount", sa.String(length=20), nullable=False),
        sa.Column("instance_month", sa.String(length=32), nullable=False),
        sa.Column("instance_hour", sa.String(length=32), nullable=False),
        sa.Column("bandwidth_month", sa.String(length=32), nullable=False),
        sa.Column("bandwidth_hour", sa.String(length=32), nullable=False),
        sa.Column("traffic_tb_month", sa.String(length=32), nullable=False),
        sa.Column("traffic_tb_hour", sa.String(length=32), nullable=False),
        sa.Column("overage_gb", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_type_id"],
            ["instance_types.instance_type_id"],
            name=op.f("fk_offerings_instance_type_id_instance_types"),
        ),
        sa.ForeignKeyConstraint(
            ["zone_id"], ["zones.zone_id"], name=op.f("fk_offerings_zone_id_zones")
        ),
        sa.PrimaryKeyConstraint("zone_id", "instance_type_id", name=op.f("pk_offerings")),
    )
    op.create_table(
        "orders",
        sa.Column("order_number", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("instance_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("from_value", sa.BigInteger(), nullable=True),
        sa.Column("to_value", sa.BigInteger(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("effective_at", sa.BigInteger(), nullable=False),
        sa.Column("applied_at", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_orders_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("order_number", name=op.f("pk_orders")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_due", ["state", "effective_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_instance_id"), ["instance_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "tokens",
        sa.Column("token_id", sa.String(length=40), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_tokens_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_tokens")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_tokens_token_sha256")),
    )
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tokens_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tokens_tenant_id"))

    op.drop_table("tokens")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_orders_instance_id"))
        batch_op.drop_index("ix_orders_due")

    op.drop_table("orders")
    op.drop_table("offerings")
    with op.batch_alter_table("ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_tenant")
        batch_op.drop_index(batch_op.f("ix_ledger_order_number"))

    op.drop_table("ledger")
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index("ix_instances_tenant")

    op.drop_table("instances")
    with op.batch_alter_table("access_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_keys_tenant_id"))

    op.drop_table("access_keys")
    op.drop_table("zones")
    op.drop_table("tenants")
    op.drop_table("instance_types")
    op.drop_table("images")
    op.drop_table("clock_state")
