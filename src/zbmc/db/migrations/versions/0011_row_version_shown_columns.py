"""instances' row_version trigger fires only for an UPDATE that sets a column DescribeInstances
shows: on SQLite a table's trigger cost every UPDATE of it about 3 µs in sqlite3 and 0.02-0.04 ms
of server CPU per ModifyInstanceBandwidth request (whose API UPDATE sets only the bandwidth
change's state, order and pending value, none of them shown)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

``UPDATE OF`` decides when the statement is compiled, from its SET list: a statement that sets
none of these columns carries no trigger program at all. A column added to DescribeInstances'
answer must be added here (by a new migration); tests/test_describe_instances_wire.py changes
every shown column and fails otherwise.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Every instances column that services.bmc.instances._fields reads (store.instance_pages.SHOWN
# and the key's instance id and type).
SHOWN = (
    "instance_id",
    "instance_type_id",
    "zone_id",
    "instance_name",
    "hostname",
    "image_id",
    "ipxe_url",
    "instance_charge_type",
    "bandwidth",
    "internet_charge_type",
    "period",
    "primary_ip",
    "ipv6",
    "private_ip",
    "subnet_id",
    "create_time",
    "expired_time",
    "resource_group_id",
    "status",
    "traffic_package_gb",
    "raid_config",
    "partitions",
    "nic",
    "auto_renew",
    "key_id",
    "tags",
    "enable_gateway_mode",
)


def _sqlite(columns: str) -> str:
    return f"""
CREATE TRIGGER instances_row_version AFTER UPDATE {columns} ON instances FOR EACH ROW
WHEN NEW.row_version = OLD.row_version
BEGIN
    UPDATE instances SET row_version = random() WHERE rowid = NEW.rowid;
END
"""


def _postgres(columns: str) -> str:
    return f"""
CREATE TRIGGER instances_row_version BEFORE UPDATE {columns} ON instances FOR EACH ROW
EXECUTE FUNCTION instances_row_version()
"""


def _replace(columns: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER instances_row_version")
        op.execute(_sqlite(columns))
        return
    op.execute("DROP TRIGGER instances_row_version ON instances")
    op.execute(_postgres(columns))


def upgrade() -> None:
    _replace("OF " + ", ".join(SHOWN))


def downgrade() -> None:
    _replace("")
