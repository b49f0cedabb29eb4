"""`zbmc admin instance import`: an existing fleet from JSON lines or CSV in one transaction, all
or nothing with the failing line named; imported instances served through the SDK; addresses
claimed from the pools or allocated; and the cheap schema-head check agreeing with Alembic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StackFactory
from tests.harness import Stack
from tests.test_create import call, describe
from zbmc.db.migrate import alembic_head, head_revision


@pytest.fixture
def fresh(make_stack: StackFactory) -> Stack:
    return make_stack()


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_jsonl_import_is_served(fresh: Stack, tmp_path: Path, version: str) -> None:
    tenant = fresh.tenant(balance="100.00")
    group = fresh.admin.json("resource-group", "add", tenant.tenant_id, "legacy")["resourceGroupId"]
    records = [
        {
            "tenantId": tenant.tenant_id,
            "zoneId": "SEL-A",
            "instanceTypeId": "M6C",
            "instanceChargeType": "PREPAID",
            "internetChargeType": "ByBandwidth",
            "bandwidthOutMbps": 200,
            "period": 3,
            "expiredTime": "2030-01-15T00:00:00Z",
            "createTime": "2024-10-15T00:00:00Z",
            "instanceId": "900000000000000001",
            "instanceName": "old-web",
            "hostname": "old-web.example",
            "imageId": "img-centos-79",
            "primaryPublicIpAddress": "198.18.0.200",  # inside the SEL-A pool: claimed
            "privateIpAddress": "192.168.7.7",  # outside every pool: kept as given
            "tags": {"rack": "a1"},
            "resourceGroupId": group,
        },
        {
            "tenantId": tenant.tenant_id,
            "zoneId": "HKG-A",
            "instanceTypeId": "M6S",
            "instanceChargeType": "POSTPAID",
            "internetChargeType": "ByTrafficPackage",
            "status": "STOPPED",
        },
    ]
    answer = fresh.admin.json("instance", "import", str(write_jsonl(tmp_path / "f.jsonl", records)))
    assert answer["imported"] == 2
    ids = answer["instanceIds"]
    assert ids[0] == "900000000000000001"
    first, second = describe(tenant, ids, version)
    assert (first.instanceName, first.hostname, first.period) == ("old-web", "old-web.example", 3)
    assert (first.createTime, first.expiredTime) == ("2024-10-15T00:00:00Z", "2030-01-15T00:00:00Z")
    assert first.primaryPublicIpAddress == "198.18.0.200"
    assert first.privateIpAddresses == ["192.168.7.7"]
    assert first.resourceGroupName == "legacy"
    assert (first.instanceStatus, second.instanceStatus) == ("RUNNING", "STOPPED")
    assert second.trafficPackageSize == 0.0  # POSTPAID ByTrafficPackage buys no package
    assert second.primaryPublicIpAddress.startswith("198.18.64.")  # from the HKG-A pool
    assert tenant.balance() == 100  # imported instances are not charged
    assert call(tenant, version, "DescribeInstances").totalCount == 2
    pools = {p["poolId"]: p["held"] for p in fresh.admin.json("pool", "list")}
    assert (pools["demo-public-sel-a"], pools["demo-public-hkg-a"]) == (1, 1)


def test_csv_import(fresh: Stack, tmp_path: Path) -> None:
    tenant = fresh.tenant()
    path = tmp_path / "fleet.csv"
    path.write_text(
        "tenantId,zoneId,instanceTypeId,instanceChargeType,internetChargeType,"
        "bandwidthOutMbps,trafficPackageSize,instanceName,tags\n"
        f"{tenant.tenant_id},SEL-A,M6C,PREPAID,ByTrafficPackage,50,2,csv-1,env=prod;team=db\n"
        f"{tenant.tenant_id},FRA-A,M6S,PREPAID,ByBandwidth,20,,csv-2,\n"
    )
    ids = fresh.admin.json("instance", "import", str(path))["instanceIds"]
    one, two = describe(tenant, ids)
    assert (one.instanceName, one.trafficPackageSize, two.instanceName) == ("csv-1", 2.0, "csv-2")
    assert {(t.key, t.value) for t in one.tags.tags} == {("env", "prod"), ("team", "db")}


def test_import_leaves_postgresql_statistics_current(fresh: Stack, tmp_path: Path) -> None:
    """On PostgreSQL the import ends with ANALYZE: the planner knows the new rows at once."""
    if not fresh.database_url.startswith("postgresql"):
        pytest.skip("SQLite plans without table statistics")
    tenant = fresh.tenant()
    path = write_jsonl(
        tmp_path / "fleet.jsonl",
        [{**good(tenant.tenant_id), "instanceName": f"stat-{n}"} for n in range(50)],
    )
    fresh.admin.json("instance", "import", str(path))
    engine = fresh.engine()
    try:
        with engine.connect() as conn:
            # reltuples: -1 until the table's first ANALYZE or VACUUM, then what it counted
            stats = conn.exec_driver_sql(
                "SELECT relname, reltuples FROM pg_class"
                " WHERE relname IN ('instances', 'addresses') ORDER BY relname"
            ).all()
    finally:
        engine.dispose()
    assert stats == [("addresses", 150), ("instances", 50)]  # public, private, IPv6 each


def good(tenant_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "tenantId": tenant_id,
        "zoneId": "SEL-A",
        "instanceTypeId": "M6C",
        "instanceChargeType": "PREPAID",
        "internetChargeType": "ByBandwidth",
        **extra,
    }


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"zoneId": "FRA-A", "instanceTypeId": "L6G"}, "L6G is not offered in FRA-A"),
        ({"tenantId": "tnt-nope"}, "tenant 'tnt-nope' does not exist"),
        ({"bandwidthOutMbps": 10_001}, "bandwidthOutMbps must be 1..10000"),
        ({"internetChargeType": "ByTrafficPackage", "trafficPackageSize": 0.07}, "0.05 TB"),
        ({"status": "CREATING"}, "status must be RUNNING or STOPPED"),
        ({"imageId": "img-nope"}, "image 'img-nope' does not exist"),
        ({"hostname": "bad_host"}, "hostname 'bad_host' is malformed"),
        ({"resourceGroupId": "rg-nope"}, "resource group 'rg-nope'"),
        ({"primaryPublicIpAddress": "198.18.0.1"}, "198.18.0.1 is also on line 1"),
        ({"primaryPublicIpAddress": "2001:db8::5"}, "is not an IPv4 address"),
        ({"unknown": 1}, "unknown keys ['unknown']"),
        ({"instanceChargeType": None}, "instanceChargeType is required"),
    ],
)
def test_bad_line_imports_nothing(
    fresh: Stack, tmp_path: Path, bad: dict[str, Any], message: str
) -> None:
    tenant = fresh.tenant()
    records = [
        good(tenant.tenant_id, primaryPublicIpAddress="198.18.0.1"),
        good(tenant.tenant_id),
        {k: v for k, v in good(tenant.tenant_id, **bad).items() if v is not None},
        good(tenant.tenant_id),
    ]
    output = fresh.admin.fails(
        "instance", "import", str(write_jsonl(tmp_path / "f.jsonl", records))
    )
    assert "line 3:" in output
    assert message in output
    assert call(tenant, "2026-02-01", "DescribeInstances").totalCount == 0
    assert all(p["held"] == 0 for p in fresh.admin.json("pool", "list"))


def test_addresses_and_ids_already_held(fresh: Stack, tmp_path: Path) -> None:
    tenant = fresh.tenant()
    first = [
        good(tenant.tenant_id, instanceId="900000000000000009", privateIpAddress="192.168.1.1")
    ]
    fresh.admin.run("instance", "import", str(write_jsonl(tmp_path / "a.jsonl", first)))
    again = fresh.admin.fails("instance", "import", str(tmp_path / "a.jsonl"))
    assert "line 1: instance 900000000000000009 already exists" in again
    taken = [good(tenant.tenant_id, privateIpAddress="192.168.1.1")]
    output = fresh.admin.fails("instance", "import", str(write_jsonl(tmp_path / "b.jsonl", taken)))
    assert "line 1: 192.168.1.1 is held by an instance" in output
    created = describe(tenant, ["900000000000000009"])[0].primaryPublicIpAddress
    pooled = [good(tenant.tenant_id, primaryPublicIpAddress=created)]
    output = fresh.admin.fails("instance", "import", str(write_jsonl(tmp_path / "c.jsonl", pooled)))
    assert f"line 1: {created} is held by instance 900000000000000009" in output
    broken = tmp_path / "d.jsonl"
    broken.write_text(json.dumps(good(tenant.tenant_id)) + "\n{not json\n")
    assert "line 2: not JSON" in fresh.admin.fails("instance", "import", str(broken))


def test_schema_head_check_agrees_with_alembic() -> None:
    assert head_revision() == alembic_head()
