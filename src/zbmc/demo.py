"""``zbmc serve --demo``: the demo catalogue, a simulated clock and a demo tenant with instances
of every charge type. Idempotent: a second start reuses the tenant and prints the same key."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.engine import Connection

from zbmc import catalogue
from zbmc.clock import SIMULATED, Clock
from zbmc.db.tables import access_keys, tenants
from zbmc.domain.lifecycle import RUNNING, STOPPED
from zbmc.provisioning import InstanceSpec, provision
from zbmc.tenancy import AccessKey, create_tenant

DEMO_TENANT = "demo"
DEMO_BALANCE = Decimal("10000.00")

# (zone, type, instance charge type, internet charge type, Mbps, package TB, status, name)
DEMO_INSTANCES = (
    ("SEL-A", "M6C", "PREPAID", "ByBandwidth", 100, None, RUNNING, "web-prepaid-bw"),
    ("SEL-A", "M6S", "PREPAID", "ByTrafficPackage", 50, "2", RUNNING, "store-prepaid-tp"),
    ("HKG-A", "M6C", "POSTPAID", "ByBandwidth", 200, None, RUNNING, "api-postpaid-bw"),
    ("HKG-A", "M6C", "POSTPAID", "ByTrafficPackage", 100, "1", STOPPED, "batch-postpaid-tp"),
    ("SEL-A", "M6C-HA", "PREPAID", "ByBandwidth", 100, None, RUNNING, "db-ha"),
    ("FRA-A", "M6C", "PREPAID", "ByBandwidth", 20, None, STOPPED, "edge-stopped"),
)


@dataclass(frozen=True)
class DemoSetup:
    key: AccessKey
    created: bool


def ensure_demo(conn: Connection, clock: Clock) -> DemoSetup:
    existing = conn.execute(
        select(access_keys.c.tenant_id, access_keys.c.key_id, access_keys.c.secret)
        .join(tenants, tenants.c.tenant_id == access_keys.c.tenant_id)
        .where(tenants.c.name == DEMO_TENANT, access_keys.c.revoked_at.is_(None))
        .order_by(access_keys.c.created_at)
    ).first()
    if existing is not None:
        return DemoSetup(AccessKey(existing.tenant_id, existing.key_id, existing.secret), False)
    clock.set_mode(conn, SIMULATED)
    catalogue.load(conn, catalogue.demo())
    now = clock.now(conn)
    key = create_tenant(conn, DEMO_TENANT, DEMO_BALANCE, now)
    for zone, type_id, charge, internet, mbps, package, status, name in DEMO_INSTANCES:
        provision(
            conn,
            InstanceSpec(
                tenant_id=key.tenant_id,
                zone_id=zone,
                instance_type_id=type_id,
                instance_charge_type=charge,
                internet_charge_type=internet,
                bandwidth=mbps,
                traffic_package_tb=None if package is None else Decimal(package),
                status=status,
                name=name,
                image_id="img-ubuntu-2404",
            ),
            now,
        )
    return DemoSetup(key, True)


def snippet(key: AccessKey, host: str, port: int, https: bool = False) -> str:
    # With the development CA, the SDK is told to trust it (certification=...).
    config = (
        'scheme="https", certification=os.environ["SSL_CERT_FILE"]' if https else 'scheme="http"'
    )
    return (
        ("import os\n" if https else "")
        + f'''from zenlayercloud.common.config import Config
from zenlayercloud.common.credential import Credential
from zenlayercloud.bmc.v20260201 import bmc_client, models

client = bmc_client.BmcClient(
    Credential("{key.access_key_id}", "{key.access_key_password}"),
    Config({config}, domain="{host}:{port}"),
)
query = models.DescribeInstancesRequest()
query.instanceName = "web-prepaid-bw"
instance = client.DescribeInstances(query).dataSet[0]
change = models.ModifyInstanceBandwidthRequest()
change.instanceId, change.bandwidthOutMbps = instance.instanceId, 150
print("order", client.ModifyInstanceBandwidth(change).orderNumber)'''
    )
