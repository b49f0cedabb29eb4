"""DescribeZones, DescribeInstanceTypes and DescribeAvailableResources through the official SDK,
in both API versions, against the demo catalogue (src/zbmc/data/demo-catalogue.toml).

Filters are checked on the demo rows (the shared stack could in principle carry more), and
every returned row is checked against the filter itself.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import ZenlayerCloudSdkException

from tests.harness import V2022, V2026, Tenant

DEMO_ZONES = {"SEL-A", "HKG-A", "FRA-A", "LAX-A"}
DEMO_TYPES = {"M6C", "M6S", "L6G", "M6C-HA"}


def models(version: str) -> Any:
    module = "v20260201" if version == V2026 else "v20221120"
    return importlib.import_module(f"zenlayercloud.bmc.{module}.models")


def raw(tenant: Tenant, action: str, body: dict[str, Any], version: str) -> Any:
    """The signed request as the SDK would send it; returns (status, JSON body)."""
    response = tenant.stack.raw(
        body, action=action, version=version, key=(tenant.access_key_id, tenant.access_key_password)
    )
    return response.status_code, response.json()


def assert_error(
    tenant: Tenant, version: str, action: str, body: dict[str, Any], code: str, status: int
) -> None:
    """The SDK raises ``code``; the same request sent raw answers HTTP ``status`` and ``code``."""
    request = getattr(models(version), f"{action}Request")()
    for key, value in body.items():
        setattr(request, key, value)
    with pytest.raises(ZenlayerCloudSdkException) as caught:
        getattr(tenant.client(version), action)(request)
    assert caught.value.code == code, caught.value.message
    got_status, payload = raw(tenant, action, body, version)
    assert (got_status, payload["code"]) == (status, code)
    assert "response" not in payload


# --- DescribeZones -----------------------------------------------------------------------------


def describe_zones(tenant: Tenant, version: str, **filters: Any) -> dict[str, Any]:
    request = models(version).DescribeZonesRequest()
    for key, value in filters.items():
        setattr(request, key, value)
    return {z.zoneId: z for z in tenant.client(version).DescribeZones(request).zoneSet}


def test_describe_zones_lists_the_catalogue(tenant: Tenant, version: str) -> None:
    zones = describe_zones(tenant, version, acceptLanguage="en-US")
    assert set(zones) >= DEMO_ZONES
    seoul = zones["SEL-A"]
    assert (seoul.zoneName, seoul.cityName, seoul.areaName) == ("Seoul A", "Seoul", "Asia Pacific")
    assert seoul.isCloudRouterAvailable is True
    assert zones["FRA-A"].isCloudRouterAvailable is False


def test_describe_zones_byoip_only_in_v2026(tenant: Tenant) -> None:
    zones = describe_zones(tenant, V2026)
    assert zones["HKG-A"].isByoipEnabled is True
    assert zones["SEL-A"].isByoipEnabled is False

    status, body = raw(tenant, "DescribeZones", {}, V2026)
    assert status == 200
    for zone in body["response"]["zoneSet"]:
        assert set(zone) == {
            "zoneId",
            "zoneName",
            "cityName",
            "areaName",
            "isCloudRouterAvailable",
            "isByoipEnabled",
        }
    status, body = raw(tenant, "DescribeZones", {}, V2022)
    assert status == 200
    assert body["response"]["zoneSet"]
    for zone in body["response"]["zoneSet"]:
        assert set(zone) == {"zoneId", "zoneName", "cityName", "areaName", "isCloudRouterAvailable"}


@pytest.mark.parametrize(
    ("available", "expected"), [(True, {"SEL-A", "HKG-A", "LAX-A"}), (False, {"FRA-A"})]
)
def test_describe_zones_cloud_router_filter(
    tenant: Tenant, version: str, available: bool, expected: set[str]
) -> None:
    zones = describe_zones(tenant, version, isCloudRouterAvailable=available)
    assert set(zones) & DEMO_ZONES == expected
    assert all(z.isCloudRouterAvailable is available for z in zones.values())


# --- DescribeInstanceTypes ---------------------------------------------------------------------


def describe_types(tenant: Tenant, version: str, **filters: Any) -> dict[str, Any]:
    request = models(version).DescribeInstanceTypesRequest()
    for key, value in filters.items():
        setattr(request, key, value)
    answer = tenant.client(version).DescribeInstanceTypes(request)
    return {t.instanceTypeId: t for t in answer.instanceTypes}


def test_describe_instance_types_specifications(tenant: Tenant, version: str) -> None:
    types = describe_types(tenant, version)
    assert set(types) >= DEMO_TYPES
    storage = types["M6S"]
    assert (storage.cpuCoreCount, storage.cpuCores, storage.cpuThreads) == (2, 32, 64)
    assert (storage.memorySize, storage.maximumBandwidth) == (128, 5000)
    assert storage.supportRaids == [0, 1, 5, 10]
    assert storage.supportSubnet is True
    assert storage.isHA is False
    assert storage.diskInfo.totalDiskSize == 7600
    assert [(d.diskSize, d.diskCount) for d in storage.diskInfo.disks] == [(880, 2), (3840, 2)]
    assert sorted(storage.imageIds) == ["img-debian-12", "img-ubuntu-2404"]
    assert types["M6C-HA"].isHA is True


@pytest.mark.parametrize(
    ("filters", "expected", "holds"),
    [
        ({"instanceTypeIds": ["M6C", "L6G"]}, {"M6C", "L6G"}, None),
        ({"minimumCpuCoreCount": 2}, {"M6S", "L6G"}, lambda t: t.cpuCoreCount >= 2),
        ({"maximumCpuCoreCount": 1}, {"M6C", "M6C-HA"}, lambda t: t.cpuCoreCount <= 1),
        ({"minimumMemorySize": 128}, {"M6S", "L6G"}, lambda t: t.memorySize >= 128),
        ({"maximumMemorySize": 64}, {"M6C", "M6C-HA"}, lambda t: t.memorySize <= 64),
        (
            {"minimumMemorySize": 100, "maximumMemorySize": 200},
            {"M6S"},
            lambda t: 100 <= t.memorySize <= 200,
        ),
        ({"minimumBandwidth": 10000}, {"M6C", "M6C-HA", "L6G"}, None),
        ({"minimumBandwidth": 10001}, {"L6G"}, lambda t: t.maximumBandwidth >= 10001),
        ({"minimumDiskSize": 3000}, {"M6S", "L6G"}, lambda t: t.diskInfo.totalDiskSize >= 3000),
        ({"maximumDiskSize": 2000}, {"M6C", "M6C-HA"}, lambda t: t.diskInfo.totalDiskSize <= 2000),
        ({"supportRaids": [5]}, {"M6S"}, lambda t: 5 in t.supportRaids),
        ({"supportRaids": [0, 1]}, {"M6C", "M6S", "L6G"}, None),
        ({"supportRaids": [1]}, DEMO_TYPES, None),
        ({"supportSubnet": True}, DEMO_TYPES, lambda t: t.supportSubnet is True),
        ({"supportSubnet": False}, set(), lambda t: t.supportSubnet is False),
        ({"isHA": True}, {"M6C-HA"}, lambda t: t.isHA is True),
        ({"isHA": False}, {"M6C", "M6S", "L6G"}, lambda t: t.isHA is False),
        ({"imageId": "img-windows-2022"}, {"M6C"}, lambda t: "img-windows-2022" in t.imageIds),
        ({"imageId": "img-debian-12"}, {"M6C", "M6S", "M6C-HA"}, None),
        (
            {"imageId": "img-ubuntu-2404", "isHA": False, "minimumCpuCoreCount": 2},
            {"M6S", "L6G"},
            None,
        ),
    ],
)
def test_describe_instance_types_filters(
    tenant: Tenant, version: str, filters: dict[str, Any], expected: set[str], holds: Any
) -> None:
    types = describe_types(tenant, version, **filters)
    assert set(types) & DEMO_TYPES == expected
    if holds is not None:
        assert all(holds(t) for t in types.values())


def test_describe_instance_types_vpu_keys_only_in_v2026(tenant: Tenant) -> None:
    gpu = describe_types(tenant, V2026, instanceTypeIds=["L6G"])["L6G"]
    assert (gpu.vpuVendor, gpu.vpuCard, gpu.vpuCount) == ("NVIDIA", "L40S", 2)

    status, body = raw(tenant, "DescribeInstanceTypes", {"instanceTypeIds": ["L6G", "M6C"]}, V2026)
    assert status == 200
    by_id = {t["instanceTypeId"]: t for t in body["response"]["instanceTypes"]}
    assert by_id["L6G"]["vpuCount"] == 2
    assert by_id["M6C"]["vpuVendor"] is None
    assert "imageIds" in by_id["M6C"]

    status, body = raw(tenant, "DescribeInstanceTypes", {"instanceTypeIds": ["L6G", "M6C"]}, V2022)
    assert status == 200
    for item in body["response"]["instanceTypes"]:
        assert not {"vpuVendor", "vpuCard", "vpuCount"} & set(item)
        assert item["imageIds"]


@pytest.mark.parametrize(
    "field",
    [
        "minimumCpuCoreCount",
        "maximumCpuCoreCount",
        "minimumMemorySize",
        "maximumMemorySize",
        "minimumBandwidth",
        "minimumDiskSize",
        "maximumDiskSize",
    ],
)
@pytest.mark.parametrize("bound", [0, -1])
def test_describe_instance_types_rejects_non_positive_bounds(
    tenant: Tenant, version: str, field: str, bound: int
) -> None:
    assert_error(tenant, version, "DescribeInstanceTypes", {field: bound}, "INVALID_PARAMETER", 400)


def test_describe_instance_types_unknown_image(tenant: Tenant, version: str) -> None:
    assert_error(
        tenant,
        version,
        "DescribeInstanceTypes",
        {"imageId": "img-nope"},
        "INVALID_IMAGE_NOT_FOUND",
        404,
    )


# --- DescribeAvailableResources ----------------------------------------------------------------


def describe_resources(tenant: Tenant, version: str, **filters: Any) -> dict[tuple[str, str], Any]:
    request = models(version).DescribeAvailableResourcesRequest()
    for key, value in filters.items():
        setattr(request, key, value)
    answer = tenant.client(version).DescribeAvailableResources(request)
    return {(r.zoneId, r.instanceTypeId): r for r in answer.availableResources}


def demo_pairs(resources: dict[tuple[str, str], Any]) -> set[tuple[str, str]]:
    return {pair for pair in resources if pair[0] in DEMO_ZONES and pair[1] in DEMO_TYPES}


ASIA = {(z, t) for z in ("SEL-A", "HKG-A") for t in ("M6C", "M6S", "M6C-HA")} | {("SEL-A", "L6G")}
FRANKFURT = {("FRA-A", "M6C"), ("FRA-A", "M6S")}
LOS_ANGELES = {("LAX-A", "M6C"), ("LAX-A", "M6C-HA")}


def test_describe_available_resources_requires_charge_type(tenant: Tenant, version: str) -> None:
    assert_error(tenant, version, "DescribeAvailableResources", {}, "MISSING_PARAMETER", 400)
    assert_error(
        tenant,
        version,
        "DescribeAvailableResources",
        {"instanceChargeType": "MONTHLY"},
        "INVALID_PARAMETER",
        400,
    )


def test_describe_available_resources_by_charge_type(tenant: Tenant, version: str) -> None:
    prepaid = describe_resources(tenant, version, instanceChargeType="PREPAID")
    assert demo_pairs(prepaid) == ASIA | FRANKFURT | LOS_ANGELES
    postpaid = describe_resources(tenant, version, instanceChargeType="POSTPAID")
    assert demo_pairs(postpaid) == ASIA | LOS_ANGELES
    assert not any(zone == "FRA-A" for zone, _ in postpaid)


def test_describe_available_resources_catalogue_values(tenant: Tenant, version: str) -> None:
    resources = describe_resources(tenant, version, instanceChargeType="PREPAID")
    seoul = resources[("SEL-A", "M6C")]
    assert seoul.sellStatus == "SELL"
    assert seoul.qty == 40
    assert sorted(seoul.internetChargeTypes) == ["ByBandwidth", "ByTrafficPackage"]
    assert seoul.maximumBandwidthOut == 10000
    assert seoul.defaultBandwidthOut == 10
    assert seoul.defaultTrafficPackageSize == 0.5
    assert resources[("SEL-A", "M6S")].maximumBandwidthOut == 5000

    frankfurt = resources[("FRA-A", "M6S")]
    assert frankfurt.internetChargeTypes == ["ByBandwidth"]
    assert frankfurt.defaultBandwidthOut == 20
    assert (frankfurt.qty, frankfurt.sellStatus) == (12, "SELL")

    los_angeles = resources[("LAX-A", "M6C")]
    assert (los_angeles.qty, los_angeles.sellStatus) == (0, "SOLD_OUT")
    assert los_angeles.defaultBandwidthOut == 5
    assert los_angeles.defaultTrafficPackageSize == 1.0

    gpu = resources[("SEL-A", "L6G")]
    assert (gpu.qty, gpu.sellStatus) == (4, "SELL_SHORTAGE")
    assert gpu.maximumBandwidthOut == 20000


def test_describe_available_resources_raw_keys(tenant: Tenant, version: str) -> None:
    body = {"instanceChargeType": "PREPAID", "zoneId": "SEL-A", "instanceTypeId": "M6C"}
    status, payload = raw(tenant, "DescribeAvailableResources", body, version)
    assert status == 200
    [item] = payload["response"]["availableResources"]
    assert item == {
        "zoneId": "SEL-A",
        "sellStatus": "SELL",
        "internetChargeTypes": ["ByBandwidth", "ByTrafficPackage"],
        "instanceTypeId": "M6C",
        "maximumBandwidthOut": 10000,
        "defaultBandwidthOut": 10,
        "defaultTrafficPackageSize": 0.5,
        "qty": 40,
    }


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"zoneId": "SEL-A"}, {("SEL-A", t) for t in ("M6C", "M6S", "M6C-HA", "L6G")}),
        ({"zoneId": "FRA-A"}, FRANKFURT),
        ({"instanceTypeId": "L6G"}, {("SEL-A", "L6G")}),
        ({"instanceTypeId": "M6C-HA", "zoneId": "LAX-A"}, {("LAX-A", "M6C-HA")}),
        ({"sellStatus": "SOLD_OUT"}, LOS_ANGELES),
        ({"sellStatus": "SELL_SHORTAGE"}, {("SEL-A", "L6G")}),
        ({"sellStatus": "SELL"}, (ASIA - {("SEL-A", "L6G")}) | FRANKFURT),
        ({"sellStatus": "SOLD_OUT", "zoneId": "SEL-A"}, set()),
    ],
)
def test_describe_available_resources_filters(
    tenant: Tenant, version: str, filters: dict[str, Any], expected: set[tuple[str, str]]
) -> None:
    resources = describe_resources(tenant, version, instanceChargeType="PREPAID", **filters)
    assert demo_pairs(resources) == expected
    for (zone, type_id), item in resources.items():
        assert zone == filters.get("zoneId", zone)
        assert type_id == filters.get("instanceTypeId", type_id)
        assert item.sellStatus == filters.get("sellStatus", item.sellStatus)


@pytest.mark.parametrize(
    ("qty_pair", "status"),
    [
        (("SEL-A", "M6C"), "SELL"),
        (("SEL-A", "L6G"), "SELL_SHORTAGE"),
        (("LAX-A", "M6C"), "SOLD_OUT"),
    ],
)
def test_sell_status_follows_stock(tenant: Tenant, qty_pair: tuple[str, str], status: str) -> None:
    item = describe_resources(tenant, V2026, instanceChargeType="PREPAID")[qty_pair]
    derived = "SELL" if item.qty > 10 else "SELL_SHORTAGE" if item.qty > 0 else "SOLD_OUT"
    assert item.sellStatus == derived == status


def test_describe_available_resources_unknown_zone_and_type(tenant: Tenant, version: str) -> None:
    assert_error(
        tenant,
        version,
        "DescribeAvailableResources",
        {"instanceChargeType": "PREPAID", "zoneId": "SEL--A"},
        "INVALID_ZONE_NOT_FOUND",
        404,
    )
    assert_error(
        tenant,
        version,
        "DescribeAvailableResources",
        {"instanceChargeType": "PREPAID", "instanceTypeId": "X9"},
        "INVALID_INSTANCE_TYPE_NOT_FOUND",
        404,
    )
