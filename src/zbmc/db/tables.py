"""The schema as SQLAlchemy Core tables. Money is integer cents, traffic volumes integer GB, times
integer Unix seconds (UTC), so both databases store exact values the same way."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

tenants = Table(
    "tenants",
    metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("balance", BigInteger, nullable=False),  # cents; always == SUM(ledger.amount)
    Column("created_at", BigInteger, nullable=False),
    # kept with every insert into instances: DescribeInstances' unfiltered totalCount
    Column("instance_count", BigInteger, nullable=False, server_default="0"),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.tenant_id"), nullable=False, index=True),
    Column("secret", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_id", String(40), primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("tenant_id", String(40), ForeignKey("tenants.tenant_id"), nullable=False, index=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
)

zones = Table(
    "zones",
    metadata,
    Column("zone_id", String(40), primary_key=True),
    Column("zone_name", String(200), nullable=False),
    Column("city_name", String(200), nullable=False),
    Column("area_name", String(200), nullable=False),
    Column("is_cloud_router_available", Boolean, nullable=False),
    Column("is_byoip_enabled", Boolean, nullable=False),
)

images = Table(
    "images",
    metadata,
    Column("image_id", String(64), primary_key=True),
    Column("image_name", String(200), nullable=False),
    Column("catalog", String(40), nullable=False),
    Column("image_type", String(40), nullable=False),
    Column("os_type", String(40), nullable=False),
)

instance_types = Table(
    "instance_types",
    metadata,
    Column("instance_type_id", String(64), primary_key=True),
    Column("description", String(400), nullable=False),
    Column("cpu_core_count", Integer, nullable=False),
    Column("cpu_detail", String(200), nullable=False),
    Column("cpu_cores", Integer, nullable=False),
    Column("cpu_threads", Integer, nullable=False),
    Column("base_frequency", String(40), nullable=False),
    Column("memory_size", Integer, nullable=False),
    Column("maximum_bandwidth", Integer, nullable=False),
    Column("support_raids", JSON, nullable=False),
    Column("support_subnet", Boolean, nullable=False),
    Column("is_ha", Boolean, nullable=False),
    Column("total_disk_size", Integer, nullable=False),
    Column("disk_description", String(200), nullable=False),
    Column("disks", JSON, nullable=False),
    Column("image_ids", JSON, nullable=False),
    Column("vpu_vendor", String(40), nullable=True),
    Column("vpu_card", String(40), nullable=True),
    Column("vpu_count", Integer, nullable=True),
    # a new random value whenever the row changes (triggers, migration 0010), like instances'
    Column("row_version", BigInteger, nullable=False, server_default=FetchedValue()),
)

# What is sold where, with the network defaults and the price list of that zone/type.
# Prices are exact decimal strings per unit: instance per month / hour, bandwidth per Mbps per
# month / hour, traffic package per TB per month / hour, overage per GB; discount in percent.
offerings = Table(
    "offerings",
    metadata,
    Column("zone_id", String(40), ForeignKey("zones.zone_id"), primary_key=True),
    Column(
        "instance_type_id",
        String(64),
        ForeignKey("instance_types.instance_type_id"),
        primary_key=True,
    ),
    Column("instance_charge_types", JSON, nullable=False),
    Column("internet_charge_types", JSON, nullable=False),
    Column("maximum_bandwidth_out", Integer, nullable=False),
    Column("default_bandwidth_out", Integer, nullable=False),
    Column("default_traffic_package_gb", BigInteger, nullable=False),
    Column("maximum_traffic_package_gb", BigInteger, nullable=False),
    Column("qty", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("discount", String(20), nullable=False),
    Column("instance_month", String(32), nullable=False),
    Column("instance_hour", String(32), nullable=False),
    Column("bandwidth_month", String(32), nullable=False),
    Column("bandwidth_hour", String(32), nullable=False),
    Column("traffic_tb_month", String(32), nullable=False),
    Column("traffic_tb_hour", String(32), nullable=False),
    Column("overage_gb", String(32), nullable=False),
    # the network agent caps inbound traffic too (docs/drivers.md)
    Column("cap_inbound", Boolean, nullable=False, server_default="0"),
)

instances = Table(
    "instances",
    metadata,
    Column("instance_id", String(40), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.tenant_id"), nullable=False),
    Column("zone_id", String(40), nullable=False),
    Column("instance_type_id", String(64), nullable=False),
    Column("instance_name", String(64), nullable=False),
    Column("hostname", String(64), nullable=False),
    Column("image_id", String(64), nullable=True),
    Column("instance_charge_type", String(16), nullable=False),
    Column("internet_charge_type", String(32), nullable=False),
    Column("status", String(20), nullable=False),
    Column("bandwidth", Integer, nullable=False),
    Column("traffic_package_gb", BigInteger, nullable=True),
    Column("period", Integer, nullable=True),
    Column("auto_renew", Boolean, nullable=False),
    Column("create_time", BigInteger, nullable=False),
    Column("period_start", BigInteger, nullable=True),  # start of the current prepaid period
    Column("expired_time", BigInteger, nullable=True),
    Column("bw_status", String(16), nullable=False),
    Column("bw_pending", Integer, nullable=True),
    Column("bw_order", String(40), nullable=True),
    Column("tp_status", String(16), nullable=True),
    Column("tp_pending_gb", BigInteger, nullable=True),
    Column("tp_order", String(40), nullable=True),
    # the last applied order of each kind: where metering's walk back through an instance's
    # applied changes starts (orders.previous_order, migration 0014)
    Column("bw_applied_order", String(40), nullable=True),
    Column("tp_applied_order", String(40), nullable=True),
    Column("primary_ip", String(64), nullable=True),
    Column("private_ip", String(64), nullable=True),
    Column("ipv6", String(64), nullable=True),
    Column("resource_group_id", String(64), nullable=True),
    Column("tags", JSON, nullable=False),
    # billing progress, written by the worker only
    Column("billing_anchor", BigInteger, nullable=True),  # prepaid periods count months from here
    Column("metered_until", BigInteger, nullable=True),  # hourly metering done up to here
    Column("traffic_cycle_start", BigInteger, nullable=True),  # package period being consumed
    Column("overage_billed_gb", BigInteger, nullable=False, server_default="0"),
    Column("recycled_at", BigInteger, nullable=True),
    # creation settings kept for DescribeInstances and reinstalls (spec instances.md §6, §10)
    Column("ipxe_url", String(1024), nullable=True),
    Column("key_id", String(64), nullable=True),
    Column("subnet_id", String(64), nullable=True),
    Column("raid_config", JSON, nullable=True),
    Column("partitions", JSON, nullable=True),
    Column("nic", JSON, nullable=True),
    Column("enable_gateway_mode", Boolean, nullable=False, server_default="0"),
    # the host operation in progress (CREATE, START, STOP, REBOOT, INSTALL), carried out by the
    # worker through the host driver: due at host_op_due, retried with backoff on failure
    Column("host_op", String(16), nullable=True),
    Column("host_op_due", BigInteger, nullable=True),
    Column("host_op_attempts", Integer, nullable=False, server_default="0"),
    Column("host_op_error", Text, nullable=True),
    # A new random value whenever the row changes, set by the database (a trigger, migration
    # 0010) whoever writes: DescribeInstances keeps each instance's encoded answer under it.
    Column("row_version", BigInteger, nullable=False, server_default=FetchedValue()),
    Index("ix_instances_tenant", "tenant_id", "instance_id"),
    Index("ix_instances_host_op_due", "host_op_due"),
    Index("ix_instances_recycled_at", "recycled_at"),  # the worker's releases
    # the worker's searches for ended periods and hours to meter
    Index("ix_instances_expired_time", "expired_time"),
    Index("ix_instances_metered_until", "metered_until"),
)

orders = Table(
    "orders",
    metadata,
    Column("order_number", String(40), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.tenant_id"), nullable=False, index=True),
    Column("instance_id", String(40), nullable=False),
    Column("kind", String(32), nullable=False),  # BANDWIDTH | TRAFFIC_PACKAGE | RENEW ...
    Column("from_value", BigInteger, nullable=True),
    Column("to_value", BigInteger, nullable=True),
    Column("amount", BigInteger, nullable=False),  # cents charged by this order
    Column(
        "state", String(20), nullable=False
    ),  # PROCESSING | WAIT_TO_ENABLE | ENABLED | CANCELLED
    Column("created_at", BigInteger, nullable=False),
    Column("effective_at", BigInteger, nullable=False),
    Column("applied_at", BigInteger, nullable=True),  # ENABLED orders only
    Column("cancelled_at", BigInteger, nullable=True),  # CANCELLED orders only
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    # BANDWIDTH and TRAFFIC_PACKAGE orders: the instance's applied order of the same kind before
    # this one (its ``*_applied_order`` when this one was made; an instance has at most one
    # pending order of a kind, so that is still the last applied one when this one applies)
    Column("previous_order", String(40), nullable=True),
    Index("ix_orders_due", "state", "effective_at"),
)

# The orders have no index by instance: an index keyed by instance takes a random leaf page of
# it for each accepted change (and another when the worker applies it), and one of the applied
# orders grows with every change ever made (docs/performance.md, stops 25 and 26). What needs an
# instance's orders finds them from the instance row: its pending order of each kind
# (``bw_order``, ``tp_order``: a release's withdrawal of waiting downgrades) and its last
# applied one (``*_applied_order``), from which metering walks back through
# ``orders.previous_order``. Listing one instance's orders, for operators, reads the tenant's.

ledger = Table(
    "ledger",
    metadata,
    Column(
        "entry_id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("tenant_id", String(40), ForeignKey("tenants.tenant_id"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # TOPUP | CHARGE | REFUND
    Column("amount", BigInteger, nullable=False),  # signed cents: + credit, - charge
    Column("balance_after", BigInteger, nullable=False),
    Column("order_number", String(40), nullable=True, index=True),
    Column("instance_id", String(40), nullable=True),
    Column("description", String(400), nullable=False),
    Column("period_start", BigInteger, nullable=True),
    Column("period_end", BigInteger, nullable=True),
    Index("ix_ledger_tenant", "tenant_id", "entry_id"),
)

# One row: the billing clock. In "simulated" mode time is the wall clock plus an offset that
# admins can only increase, so every process sees the same simulated time.
clock_state = Table(
    "clock_state",
    metadata,
    Column("clock_id", Integer, primary_key=True),
    Column("mode", String(16), nullable=False),  # system | simulated
    Column("offset_seconds", BigInteger, nullable=False),
)

# Traffic samples reported by network agents: bytes in and out over ``interval_seconds`` ending
# at ``ts``. ``sample_id`` is chosen by the agent, so a resent sample is ignored.
traffic_samples = Table(
    "traffic_samples",
    metadata,
    Column("sample_id", String(128), primary_key=True),
    Column("instance_id", String(40), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("interval_seconds", Integer, nullable=False),
    Column("in_bytes", BigInteger, nullable=False),
    Column("out_bytes", BigInteger, nullable=False),
    Index("ix_traffic_samples_instance_ts", "instance_id", "ts"),
)

# Resource groups per tenant; every tenant also has the implicit default group.
resource_groups = Table(
    "resource_groups",
    metadata,
    Column("resource_group_id", String(64), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.tenant_id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# Operator-configured address pools (a CIDR per pool, optionally per zone) and the addresses
# handed out from them. ``addresses.address`` is the primary key: no address is ever held twice.
address_pools = Table(
    "address_pools",
    metadata,
    Column("pool_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # PUBLIC_IPV4 | PRIVATE_IPV4 | IPV6
    Column("zone_id", String(40), nullable=True),  # None: every zone
    Column("cidr", String(64), nullable=False),
    Column("next_index", BigInteger, nullable=False, server_default="0"),  # next never-used host
)

addresses = Table(
    "addresses",
    metadata,
    Column("address", String(64), primary_key=True),
    Column("pool_id", String(64), ForeignKey("address_pools.pool_id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("instance_id", String(40), nullable=True),  # None: released, free to hand out again
    Index("ix_addresses_instance", "instance_id"),
    Index("ix_addresses_free", "pool_id", "instance_id"),
)

# Fault injection for tests (docs/behaviour.md): the next CREATE or INSTALL of a tenant, or of
# one instance, ends in CREATE_FAILED / INSTALL_FAILED. Consumed by the worker when it fires.
faults = Table(
    "faults",
    metadata,
    Column(
        "fault_id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("tenant_id", String(40), nullable=True),
    Column("instance_id", String(40), nullable=True),
    Column("operation", String(16), nullable=False),  # CREATE | INSTALL
    Column("created_at", BigInteger, nullable=False),
)

# Where each instance's traffic passes: the network host whose `zbmc agent` enforces its cap and
# the interface (on that host) that carries only this instance's traffic. Set by the operator.
network_attachments = Table(
    "network_attachments",
    metadata,
    Column("instance_id", String(40), primary_key=True),
    Column("host", String(128), nullable=False),
    Column("interface", String(15), nullable=False),  # Linux IFNAMSIZ - 1
    Column("created_at", BigInteger, nullable=False),
    Index("ix_network_attachments_host", "host", "interface", unique=True),
)

# Signatures of applied write requests, until their timestamp leaves the signature window
# (zbmc.replay, docs/security.md). Two integers: the timestamp leads the key, so inserts land
# near the B-tree's right edge and the worker prunes a range at its left edge; the second is
# 64 bits of the signature and the action, small so that a second's rows share few pages.
seen_signatures = Table(
    "seen_signatures",
    metadata,
    Column("signed_at", BigInteger, primary_key=True),  # X-ZC-Timestamp, Unix seconds
    Column("digest", BigInteger, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)

# The tenant's tags (the resource manager, zrm): key/value pairs that exist whether or not a
# resource carries them (CreateTags). Which instance carries which is instances.tags.
tags = Table(
    "tags",
    metadata,
    Column("tenant_id", String(40), ForeignKey("tenants.tenant_id"), primary_key=True),
    Column("tag_key", String(64), primary_key=True),
    Column("tag_value", String(64), primary_key=True),  # "" when the tag has no value
    Column("created_at", BigInteger, nullable=False),
)
