"""DescribeInstances builds its page in wire form (``instance_wire``) instead of through the
pydantic models: the bytes a client receives must be exactly what the models give.

A page holding every kind of instance (prepaid and postpaid, by bandwidth and by traffic
package, HA and not, with and without image, tags, a named resource group, a stored NIC, RAID
and partitions, a key, an iPXE URL, a subnet, gateway mode, addresses or none, recycled) is
asked for through the live server in both API versions, and compared byte for byte with the
reference: the rows read the way DescribeInstances read them before, ``instance_info`` for each,
``to_wire`` of ``DescribeInstancesResponse`` and the pipeline's JSON encoder.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert, select, update

from tests.harness import V2022, V2026, Stack, Tenant
from zbmc.clock import iso
from zbmc.db.tables import images, instance_types, instances, resource_groups, tenants
from zbmc.pipeline import _ENCODE
from zbmc.services.bmc.instance_types import instance_type_model
from zbmc.services.bmc.instances import DescribeInstancesResponse, instance_info
from zbmc.store import resource_groups as groups_store
from zbmc.wire import to_wire


def variety(stack: Stack, tenant: Tenant) -> list[str]:
    """Instances of every kind the stored rows can describe (ids in page order)."""
    made = [
        tenant.instance(),
        tenant.instance(instance_charge_type="POSTPAID"),
        tenant.instance(internet_charge_type="ByTrafficPackage", traffic_package="2"),
        tenant.instance(
            instance_charge_type="POSTPAID",
            internet_charge_type="ByTrafficPackage",
            traffic_package="0.5",
        ),
        tenant.instance(type="M6C-HA"),
        tenant.instance(type="M6S", zone="HKG-A"),
        tenant.instance(),
        tenant.instance(),
        tenant.instance(),
    ]
    group = f"rg-{tenant.tenant_id}"
    engine = stack.engine()
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(resource_groups).values(
                    resource_group_id=group,
                    tenant_id=tenant.tenant_id,
                    name="Wire \u00e9quipe \u2603",
                    created_at=int(time.time()),
                )
            )
            changes: list[dict[str, Any]] = [
                {"image_id": "img-ubuntu-2204", "tags": [{"key": "env", "value": "prod"}]},
                {
                    "resource_group_id": group,
                    "tags": [{"key": "a", "value": ""}, {"key": "\u00fc", "value": "\u4e2d"}],
                },
                {"nic": {"wanName": "eth0", "lanName": "eth1"}, "key_id": "key-123"},
                {
                    "raid_config": {"raidType": 1},
                    "partitions": [{"fsType": "ext4", "fsPath": "/", "size": 50}],
                    "ipxe_url": 'http://boot.example/ipxe?a=1&b="2"',
                },
                {"subnet_id": "subnet-1", "enable_gateway_mode": True},
                {"primary_ip": None, "private_ip": None, "ipv6": None},
                {"resource_group_id": "rg-deleted-group", "auto_renew": False},
                {"status": "RECYCLE", "instance_name": "na\u00efve-name"},
                {"image_id": "img-no-longer-listed"},
            ]
            for instance_id, values in zip(made, changes, strict=True):
                conn.execute(
                    update(instances).where(instances.c.instance_id == instance_id).values(**values)
                )
    finally:
        engine.dispose()
    return sorted(made)


def reference(stack: Stack, tenant: Tenant, version: str, request_id: str) -> bytes:
    """The body as the models gave it (the handler's code before ``instance_wire``)."""
    engine = stack.engine()
    try:
        with engine.connect() as conn:
            rows = list(
                conn.execute(
                    select(instances)
                    .where(instances.c.tenant_id == tenant.tenant_id)
                    .order_by(instances.c.instance_id)
                )
            )
            total = conn.execute(
                select(tenants.c.instance_count).where(tenants.c.tenant_id == tenant.tenant_id)
            ).scalar_one()
            types = {
                t.instance_type_id: instance_type_model(t, with_images=False)
                for t in conn.execute(select(instance_types))
            }
            names = {r.image_id: r.image_name for r in conn.execute(select(images))}
            group_names = groups_store.names(conn, (row.resource_group_id for row in rows))
    finally:
        engine.dispose()
    response = DescribeInstancesResponse(
        total_count=total,
        data_set=[
            instance_info(
                row, types[row.instance_type_id], names.get(row.image_id or ""), group_names
            )
            for row in rows
        ],
    )
    data = {"requestId": request_id, **to_wire(response, version)}
    return _ENCODE({"requestId": request_id, "response": data}).encode()


@pytest.mark.parametrize("version", [V2022, V2026])
def test_a_page_of_every_kind_is_byte_for_byte_the_models_answer(
    stack: Stack, version: str
) -> None:
    tenant = stack.tenant()
    ids = variety(stack, tenant)
    key = (tenant.access_key_id, tenant.access_key_password)
    answer = stack.raw({"pageSize": 100}, action="DescribeInstances", version=version, key=key)
    assert answer.status_code == 200, answer.text
    request_id = json.loads(answer.content)["requestId"]
    expected = reference(stack, tenant, version, request_id)
    assert answer.content == expected
    listed = [item["instanceId"] for item in json.loads(answer.content)["response"]["dataSet"]]
    assert listed == ids


@given(st.integers(min_value=-62_135_596_800, max_value=253_402_300_799))
def test_wire_times_are_strftime_s(ts: int) -> None:
    assert iso(ts) == datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
