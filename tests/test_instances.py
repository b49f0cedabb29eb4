"""DescribeInstances (filters, paging, the InstanceInfo shape), Start/StopInstances and
ModifyInstancesAttribute, through the official SDK in both API versions."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any

import pytest
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import ZenlayerCloudSdkException

from tests.harness import V2022, V2026, Stack, Tenant, wait_until

ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
INSTANCE_INFO_KEYS = {
    "instanceId",
    "zoneId",
    "instanceName",
    "hostname",
    "instanceTypeId",
    "instanceType",
    "imageId",
    "imageName",
    "ipxeUrl",
    "instanceChargeType",
    "bandwidthOutMbps",
    "internetChargeType",
    "period",
    "primaryPublicIpAddress",
    "publicIpAddresses",
    "privateIpAddresses",
    "ipv6Addresses",
    "subnetIds",
    "createTime",
    "expiredTime",
    "resourceGroupId",
    "resourceGroupName",
    "instanceStatus",
    "trafficPackageSize",
    "raidConfig",
    "partitions",
    "nic",
    "autoRenew",
    "keyId",
    "tags",
    "enableGatewayMode",
}
V2026_INSTANCE_INFO_KEYS = {"primaryPublicIPv6Address", "ipmiEnabled"}
INSTANCE_TYPE_KEYS = {
    "instanceTypeId",
    "description",
    "cpuCoreCount",
    "cpuDetail",
    "cpuCores",
    "cpuThreads",
    "baseFrequency",
    "memorySize",
    "maximumBandwidth",
    "supportRaids",
    "supportSubnet",
    "isHA",
    "diskInfo",
}
V2026_INSTANCE_TYPE_KEYS = {"vpuVendor", "vpuCard", "vpuCount"}


def models(version: str) -> Any:
    module = "v20260201" if version == V2026 else "v20221120"
    return importlib.import_module(f"zenlayercloud.bmc.{module}.models")


def request(version: str, action: str, **fields: Any) -> Any:
    req = getattr(models(version), f"{action}Request")()
    for key, value in fields.items():
        setattr(req, key, value)
    return req


def call(tenant: Tenant, version: str, action: str, **fields: Any) -> Any:
    return getattr(tenant.client(version), action)(request(version, action, **fields))


def raw(tenant: Tenant, action: str, body: dict[str, Any], version: str) -> tuple[int, Any]:
    response = tenant.stack.raw(
        body, action=action, version=version, key=(tenant.access_key_id, tenant.access_key_password)
    )
    return response.status_code, response.json()


def assert_error(
    tenant: Tenant, version: str, action: str, body: dict[str, Any], code: str, status: int
) -> None:
    """The SDK raises ``code``; the same request sent raw answers HTTP ``status``."""
    with pytest.raises(ZenlayerCloudSdkException) as caught:
        call(tenant, version, action, **body)
    assert caught.value.code == code, caught.value.message
    got_status, payload = raw(tenant, action, body, version)
    assert (got_status, payload["code"]) == (status, code)


def describe(tenant: Tenant, version: str = V2026, **filters: Any) -> Any:
    return call(tenant, version, "DescribeInstances", **filters)


def names(tenant: Tenant, version: str = V2026, **filters: Any) -> set[str]:
    answer = describe(tenant, version, pageSize=1000, **filters)
    assert answer.totalCount == len(answer.dataSet)
    return {i.instanceName for i in answer.dataSet}


def statuses(tenant: Tenant, ids: list[str]) -> dict[str, str]:
    answer = describe(tenant, instanceIds=ids)
    return {i.instanceId: i.instanceStatus for i in answer.dataSet}


# --- a fleet of distinguishable instances, shared by the filter tests ----------------------------


@dataclass
class Fleet:
    tenant: Tenant
    ids: dict[str, str]  # instanceName -> instanceId


def _create(stack: Stack, tenant_id: str, name: str, *options: str) -> str:
    args = ["instance", "create", "--tenant", tenant_id, "--name", name, *options]
    return str(stack.admin.json(*args)["instanceId"])


@pytest.fixture(scope="module")
def fleet(stack: Stack) -> Fleet:
    tenant = stack.tenant()
    tid = tenant.tenant_id
    common = ["--instance-charge-type", "PREPAID", "--internet-charge-type", "ByBandwidth"]
    ids = {
        "web-1": _create(
            stack,
            tid,
            "web-1",
            *common,
            "--zone=SEL-A",
            "--type=M6C",
            "--bandwidth=100",
            "--hostname=web-1.seoul",
            "--image=img-ubuntu-2404",
            "--tag=env=prod",
            "--tag=team=web",
        ),
        "web-2": _create(
            stack,
            tid,
            "web-2",
            "--instance-charge-type=POSTPAID",
            "--internet-charge-type=ByTrafficPackage",
            "--zone=HKG-A",
            "--type=M6S",
            "--bandwidth=50",
            "--hostname=cache.hongkong",
            "--image=img-debian-12",
            "--status=STOPPED",
            "--tag=env=dev",
            "--tag=team=web",
        ),
        "db-1": _create(
            stack,
            tid,
            "db-1",
            *common,
            "--zone=SEL-A",
            "--type=M6C-HA",
            "--bandwidth=200",
            "--period=3",
            "--tag=env=prod",
        ),
    }
    return Fleet(tenant, ids)


ALL = {"web-1", "web-2", "db-1"}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ALL),
        ({"zoneId": "SEL-A"}, {"web-1", "db-1"}),
        ({"zoneId": "FRA-A"}, set()),
        ({"instanceTypeId": "M6S"}, {"web-2"}),
        ({"internetChargeType": "ByTrafficPackage"}, {"web-2"}),
        ({"internetChargeType": "ByBandwidth"}, {"web-1", "db-1"}),
        ({"imageId": "img-ubuntu-2404"}, {"web-1"}),
        ({"imageId": "img-windows-2022"}, set()),
        ({"instanceStatus": "STOPPED"}, {"web-2"}),
        ({"instanceStatus": "RUNNING"}, {"web-1", "db-1"}),
        ({"instanceName": "web-1"}, {"web-1"}),
        ({"instanceName": "web"}, set()),
        ({"instanceName": "web*"}, {"web-1", "web-2"}),
        ({"instanceName": "WEB*"}, set()),
        ({"instanceName": "*"}, ALL),
        ({"hostname": "web-1.seoul"}, {"web-1"}),
        ({"hostname": "web-1"}, set()),
        ({"hostname": "cache*"}, {"web-2"}),
        ({"hostname": "db-*"}, {"db-1"}),
        ({"resourceGroupId": "default"}, ALL),
        ({"resourceGroupId": "rg-other"}, set()),
        ({"subnetId": "subnet-1"}, set()),
        ({"tagKeys": ["team"]}, {"web-1", "web-2"}),
        ({"tagKeys": ["env", "team"]}, {"web-1", "web-2"}),
        ({"tagKeys": ["owner"]}, set()),
        ({"zoneId": "SEL-A", "instanceName": "web*"}, {"web-1"}),
    ],
)
def test_describe_instances_filters(
    fleet: Fleet, version: str, filters: dict[str, Any], expected: set[str]
) -> None:
    assert names(fleet.tenant, version, **filters) == expected


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([("env", "prod")], {"web-1", "db-1"}),
        ([("env", "prod"), ("team", "web")], {"web-1"}),
        ([("env", "staging")], set()),
    ],
)
def test_describe_instances_tags_filter(
    fleet: Fleet, version: str, pairs: list[tuple[str, str]], expected: set[str]
) -> None:
    tags = []
    for key, value in pairs:
        tag = models(version).Tag()
        tag.key, tag.value = key, value
        tags.append(tag)
    assert names(fleet.tenant, version, tags=tags) == expected


def test_describe_instances_by_ids_and_addresses(fleet: Fleet, version: str) -> None:
    tenant = fleet.tenant
    assert names(tenant, version, instanceIds=[fleet.ids["web-1"], fleet.ids["db-1"]]) == {
        "web-1",
        "db-1",
    }
    assert names(tenant, version, instanceIds=["0", fleet.ids["web-2"]]) == {"web-2"}
    info = {i.instanceName: i for i in describe(tenant, version).dataSet}
    public = [info["web-1"].primaryPublicIpAddress, info["web-2"].primaryPublicIpAddress]
    assert all(public)
    assert names(tenant, version, publicIpAddresses=public) == {"web-1", "web-2"}
    assert names(tenant, version, publicIpAddresses=["192.0.2.1"]) == set()
    private = info["db-1"].privateIpAddresses
    assert private
    assert names(tenant, version, privateIpAddresses=private) == {"db-1"}
    assert names(tenant, version, privateIpAddresses=["192.0.2.1"]) == set()


@pytest.mark.parametrize(
    ("filters", "code"),
    [
        ({"zoneId": "SEL--A"}, "INVALID_ZONE_NOT_FOUND"),
        ({"instanceTypeId": "X9"}, "INVALID_INSTANCE_TYPE_NOT_FOUND"),
        ({"imageId": "img-nope"}, "INVALID_IMAGE_NOT_FOUND"),
    ],
)
def test_describe_instances_unknown_filter_values(
    fleet: Fleet, version: str, filters: dict[str, Any], code: str
) -> None:
    assert_error(fleet.tenant, version, "DescribeInstances", filters, code, 404)


@pytest.mark.parametrize("paging", [{"pageSize": 0}, {"pageSize": 1001}, {"pageNum": 0}])
def test_describe_instances_bad_paging(fleet: Fleet, version: str, paging: dict[str, int]) -> None:
    assert_error(fleet.tenant, version, "DescribeInstances", paging, "INVALID_PARAMETER", 400)


def test_describe_instances_paging(stack: Stack, version: str) -> None:
    tenant = stack.tenant()
    created = {tenant.instance(name=f"page-{n}") for n in range(25)}
    seen: list[str] = []
    for page, size in ((1, 10), (2, 10), (3, 10), (4, 10)):
        answer = describe(tenant, version, pageSize=10, pageNum=page)
        assert answer.totalCount == 25
        assert len(answer.dataSet) == [10, 10, 5, 0][page - 1], (page, size)
        seen += [i.instanceId for i in answer.dataSet]
    assert len(seen) == len(set(seen)) == 25
    assert set(seen) == created
    default = describe(tenant, version)
    assert (default.totalCount, len(default.dataSet)) == (25, 20)
    everything = describe(tenant, version, pageSize=1000)
    assert [i.instanceId for i in everything.dataSet] == seen


def test_instance_info_raw_keys(fleet: Fleet, version: str) -> None:
    status, payload = raw(fleet.tenant, "DescribeInstances", {}, version)
    assert status == 200
    body = payload["response"]
    assert body["totalCount"] == 3
    expected = INSTANCE_INFO_KEYS | (V2026_INSTANCE_INFO_KEYS if version == V2026 else set())
    type_keys = INSTANCE_TYPE_KEYS | (V2026_INSTANCE_TYPE_KEYS if version == V2026 else set())
    by_name = {item["instanceName"]: item for item in body["dataSet"]}
    for item in body["dataSet"]:
        assert set(item) == expected
        assert set(item["instanceType"]) == type_keys
        assert "imageIds" not in item["instanceType"]
        assert ISO_TIME.match(item["createTime"])

    web1 = by_name["web-1"]
    assert web1["instanceId"] == fleet.ids["web-1"]
    assert (web1["zoneId"], web1["instanceTypeId"]) == ("SEL-A", "M6C")
    assert web1["instanceType"]["instanceTypeId"] == "M6C"
    assert (web1["imageId"], web1["imageName"]) == ("img-ubuntu-2404", "Ubuntu 24.04 LTS x86_64")
    assert web1["hostname"] == "web-1.seoul"
    assert (web1["instanceChargeType"], web1["period"], web1["autoRenew"]) == ("PREPAID", 1, True)
    assert ISO_TIME.match(web1["expiredTime"])
    assert web1["expiredTime"] > web1["createTime"]
    assert (web1["internetChargeType"], web1["bandwidthOutMbps"]) == ("ByBandwidth", 100)
    assert web1["trafficPackageSize"] is None
    assert web1["publicIpAddresses"] == [web1["primaryPublicIpAddress"]]
    assert web1["nic"] == {"wanName": "wan0", "lanName": "lan0"}
    assert web1["tags"] == {
        "tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "web"}]
    }
    assert web1["instanceStatus"] == "RUNNING"

    postpaid = by_name["web-2"]
    assert postpaid["instanceChargeType"] == "POSTPAID"
    assert postpaid["period"] is None
    assert postpaid["expiredTime"] is None
    assert postpaid["autoRenew"] is False
    assert postpaid["trafficPackageSize"] == 0.0  # a postpaid instance buys no package
    assert postpaid["instanceStatus"] == "STOPPED"

    ha = by_name["db-1"]
    assert ha["period"] == 3
    assert ha["nic"] == {"wanName": "bond0", "lanName": "bond1"}
    assert ha["imageId"] is None
    assert ha["instanceType"]["isHA"] is True


def test_instance_info_through_the_sdk(fleet: Fleet, version: str) -> None:
    [info] = describe(fleet.tenant, version, instanceIds=[fleet.ids["web-1"]]).dataSet
    assert info.instanceType.instanceTypeId == "M6C"
    assert info.instanceType.diskInfo.totalDiskSize == 1780
    assert info.bandwidthOutMbps == 100
    assert [(t.key, t.value) for t in info.tags.tags] == [("env", "prod"), ("team", "web")]
    if version == V2026:
        assert info.primaryPublicIPv6Address
        assert info.ipmiEnabled is True


# --- StartInstances / StopInstances ------------------------------------------------------------


def test_stop_then_start(tenant: Tenant, version: str) -> None:
    first, second = tenant.instance(), tenant.instance()
    call(tenant, version, "StopInstances", instanceIds=[first, second])
    wait_until(lambda: set(statuses(tenant, [first, second]).values()) == {"STOPPED"})
    call(tenant, version, "StartInstances", instanceIds=[first])
    wait_until(lambda: statuses(tenant, [first, second]) == {first: "RUNNING", second: "STOPPED"})


@pytest.mark.parametrize(
    ("action", "status", "code"),
    [
        ("StartInstances", "RUNNING", "OPERATION_DENIED_INSTANCE_NOT_STOPPED"),
        ("StopInstances", "STOPPED", "OPERATION_DENIED_INSTANCE_NOT_RUNNING"),
    ],
)
def test_power_in_the_wrong_state(
    tenant: Tenant, version: str, action: str, status: str, code: str
) -> None:
    wrong, right = tenant.instance(status=status), tenant.instance(status=_other(status))
    assert_error(tenant, version, action, {"instanceIds": [right, wrong]}, code, 403)
    # all-or-nothing: the instance that could have changed did not
    assert statuses(tenant, [wrong, right]) == {wrong: status, right: _other(status)}


@pytest.mark.parametrize(
    ("action", "status"), [("StartInstances", "STOPPED"), ("StopInstances", "RUNNING")]
)
def test_power_batch_with_unknown_id_changes_nothing(
    tenant: Tenant, version: str, action: str, status: str
) -> None:
    first, second = tenant.instance(status=status), tenant.instance(status=status)
    body = {"instanceIds": [first, "100000000000000000", second]}
    assert_error(tenant, version, action, body, "INVALID_INSTANCE_NOT_FOUND", 404)
    assert statuses(tenant, [first, second]) == {first: status, second: status}


def test_power_requires_instance_ids(tenant: Tenant, version: str) -> None:
    assert_error(tenant, version, "StopInstances", {}, "MISSING_PARAMETER", 400)


def _other(status: str) -> str:
    return "STOPPED" if status == "RUNNING" else "RUNNING"


# --- ModifyInstancesAttribute ------------------------------------------------------------------


def test_rename_instances(tenant: Tenant, version: str) -> None:
    first, second, untouched = tenant.instance(), tenant.instance(), tenant.instance(name="keep")
    call(
        tenant,
        version,
        "ModifyInstancesAttribute",
        instanceIds=[first, second],
        instanceName="db.v2",
    )
    answer = describe(tenant, version)
    assert {i.instanceId: i.instanceName for i in answer.dataSet} == {
        first: "db.v2",
        second: "db.v2",
        untouched: "keep",
    }


@pytest.mark.parametrize("name", ["x" * 65, "has space", "bad/name", "ünïcode"])
def test_rename_with_a_bad_name(tenant: Tenant, version: str, name: str) -> None:
    instance_id = tenant.instance(name="before")
    body = {"instanceIds": [instance_id], "instanceName": name}
    assert_error(
        tenant,
        version,
        "ModifyInstancesAttribute",
        body,
        "INVALID_PARAMETER_INSTANCE_NAME_EXCEED",
        400,
    )
    assert names(tenant, version) == {"before"}


def test_rename_with_the_longest_name(tenant: Tenant, version: str) -> None:
    instance_id = tenant.instance(name="before")
    call(
        tenant,
        version,
        "ModifyInstancesAttribute",
        instanceIds=[instance_id],
        instanceName="a" * 64,
    )
    assert names(tenant, version) == {"a" * 64}


def test_rename_with_an_unknown_id_renames_nothing(tenant: Tenant, version: str) -> None:
    known = tenant.instance(name="before")
    body = {"instanceIds": [known, "100000000000000000"], "instanceName": "after"}
    assert_error(
        tenant, version, "ModifyInstancesAttribute", body, "INVALID_INSTANCE_NOT_FOUND", 404
    )
    assert names(tenant, version) == {"before"}


def test_rename_requires_a_name(tenant: Tenant) -> None:
    known = tenant.instance(name="before")
    assert_error(
        tenant,
        V2022,
        "ModifyInstancesAttribute",
        {"instanceIds": [known]},
        "MISSING_PARAMETER",
        400,
    )
    assert names(tenant) == {"before"}
