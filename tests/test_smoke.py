from __future__ import annotations

from tests.harness import Stack, Tenant


def test_describe_zones_lists_demo_zones(stack: Stack, tenant: Tenant, version: str) -> None:
    from zenlayercloud.bmc.v20260201 import models

    zones = tenant.client(version).DescribeZones(models.DescribeZonesRequest()).zoneSet
    assert {z.zoneId for z in zones} >= {"SEL-A", "HKG-A", "FRA-A"}
