"""DescribeInstances builds its page from each instance's encoded answer (``instance_fragment``,
kept per process in ``fragments`` under a key that changes with anything the answer shows)
instead of through the pydantic models: the bytes a client receives must be exactly what the
models give, on a page read the first time and on a page read again after any change.

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

from tests.conftest import StackFactory
from tests.harness import V2022, V2026, Stack, Tenant, wait_until
from tests.test_instances import call
from zbmc.clock import iso
from zbmc.db.tables import images, instance_types, instances, resource_groups, tenants
from zbmc.pipeline import _ENCODE
from zbmc.services.bmc.instance_types import instance_type_model
from zbmc.services.bmc.instances import DescribeInstancesResponse, instance_info
from zbmc.store import instance_pages as pages
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
    for _ in range(2):  # built, then from the cache
        answer = stack.raw({"pageSize": 100}, action="DescribeInstances", version=version, key=key)
        assert answer.status_code == 200, answer.text
        request_id = json.loads(answer.content)["requestId"]
        expected = reference(stack, tenant, version, request_id)
        assert answer.content == expected
        listed = [item["instanceId"] for item in json.loads(answer.content)["response"]["dataSet"]]
        assert listed == ids


def page(stack: Stack, tenant: Tenant, version: str = V2026, **query: Any) -> tuple[bytes, bytes]:
    """The answer to DescribeInstances and the models' answer (``reference``), read right after
    it, each with the request id blanked out."""
    key = (tenant.access_key_id, tenant.access_key_password)
    body = {"pageSize": 100, **query}
    answer = stack.raw(body, action="DescribeInstances", version=version, key=key)
    assert answer.status_code == 200, answer.text
    request_id = json.loads(answer.content)["requestId"]
    expected = reference(stack, tenant, version, request_id)
    blank = request_id.encode()
    return answer.content.replace(blank, b"R"), expected.replace(blank, b"R")


def change_rows(stack: Stack, table: Any, where: Any, **values: Any) -> None:
    """A write by another process (no API involved), as the worker or the admin CLI make."""
    engine = stack.engine()
    try:
        with engine.begin() as conn:
            assert conn.execute(update(table).where(where).values(**values)).rowcount == 1
    finally:
        engine.dispose()


# A new value for every column an answer shows, in an order where each one is visible when set
# (the period, the expiry and auto-renew show for PREPAID only, the package for ByTrafficPackage).
COLUMN_CHANGES: list[dict[str, Any]] = [
    {"instance_name": "renamed-by-sql"},
    {"hostname": "host-by-sql"},
    {"zone_id": "HKG-A"},
    {"instance_type_id": "M6S"},
    {"image_id": "img-ubuntu-2204"},
    {"ipxe_url": "http://boot.example/other"},
    {"bandwidth": 321},
    {"period": 3},
    {"primary_ip": "203.0.113.9"},
    {"ipv6": "2001:db8::99"},
    {"private_ip": "10.9.9.9"},
    {"subnet_id": "subnet-9"},
    {"create_time": 1_700_000_000},
    {"expired_time": 1_800_000_000},
    {"status": "STOPPED"},
    {"raid_config": {"raidType": 5}},
    {"partitions": [{"fsType": "xfs", "fsPath": "/data", "size": 80}]},
    {"nic": {"wanName": "eth7", "lanName": "eth8"}},
    {"auto_renew": False},
    {"key_id": "key-by-sql"},
    {"tags": [{"key": "by", "value": "sql"}]},
    {"enable_gateway_mode": True},
    {"internet_charge_type": "ByTrafficPackage"},
    {"traffic_package_gb": 3000},
    {"instance_charge_type": "POSTPAID"},
]


def test_every_column_changed_by_any_writer_shows_on_the_next_page(
    make_stack: StackFactory,
) -> None:
    """Each change is made in the database by another connection (the worker's, the admin
    CLI's, another API process's): the page read right after it is the models' answer of the
    changed row, never the one cached before. Also the image's and the resource group's names
    and the instance type, which live in other tables."""
    # every column the answer is made of (a column added to it must be added here, and to the
    # trigger's list: migration 0011)
    changed = {column for values in COLUMN_CHANGES for column in values} | {"resource_group_id"}
    assert changed == {*pages.SHOWN, "instance_type_id"}
    stack = make_stack()
    tenant = stack.tenant()
    instance_id = tenant.instance()
    tenant.instance()  # a neighbour on the same page, unchanged
    group = stack.admin.json("resource-group", "add", tenant.tenant_id, "before")["resourceGroupId"]
    changes: list[tuple[Any, Any, dict[str, Any]]] = [
        (instances, instances.c.instance_id == instance_id, values) for values in COLUMN_CHANGES
    ]
    changes += [
        (instances, instances.c.instance_id == instance_id, {"resource_group_id": group}),
        (resource_groups, resource_groups.c.resource_group_id == group, {"name": "after"}),
        (images, images.c.image_id == "img-ubuntu-2204", {"image_name": "Renamed 22.04"}),
        (instance_types, instance_types.c.instance_type_id == "M6S", {"cpu_detail": "other"}),
        (instance_types, instance_types.c.instance_type_id == "M6S", {"is_ha": True}),
    ]
    for version in (V2026, V2022):
        before, expected = page(stack, tenant, version)
        assert before == expected
    for table, where, values in changes:
        before, _ = page(stack, tenant, V2026)  # cached now
        change_rows(stack, table, where, **values)
        for version in (V2026, V2022):
            answer, expected = page(stack, tenant, version)
            assert answer == expected, values
        assert answer != before, values


def test_changes_through_the_api_and_the_worker_show_on_the_next_page(
    stack: Stack, version: str
) -> None:
    tenant = stack.tenant()
    renamed, changed = tenant.instance(), tenant.instance(instance_charge_type="POSTPAID")
    page(stack, tenant, version)  # cached
    call(tenant, version, "ModifyInstancesAttribute", instanceIds=[renamed], instanceName="by-api")
    answer, expected = page(stack, tenant, version)
    assert answer == expected
    assert b'"by-api"' in answer
    call(tenant, version, "ModifyInstanceBandwidth", instanceId=changed, bandwidthOutMbps=150)
    # the worker finishes the change (Processing -> Enable): the row changes again
    wait_until(lambda: b'"bandwidthOutMbps": 150' in page(stack, tenant, version)[0])
    answer, expected = page(stack, tenant, version)
    assert answer == expected


@given(st.integers(min_value=-62_135_596_800, max_value=253_402_300_799))
def test_wire_times_are_strftime_s(ts: int) -> None:
    assert iso(ts) == datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
