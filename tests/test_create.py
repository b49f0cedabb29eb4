"""DescribeImages, InquiryPriceCreateInstance and CreateInstances through the official SDK in both
API versions: the quote a creation charges, every validation code of spec §0, refusals that
change nothing, addresses from the pools, and what DescribeInstances shows of a new instance."""

from __future__ import annotations

import importlib
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import ZenlayerCloudSdkException

from tests.conftest import StackFactory
from tests.harness import V2022, V2026, Stack, Tenant

NEW_STATUSES = {"CREATING", "RUNNING"}  # the worker brings new instances up


def models(version: str) -> Any:
    module = "v20260201" if version == V2026 else "v20221120"
    return importlib.import_module(f"zenlayercloud.bmc.{module}.models")


def sdk(version: str, name: str, **fields: Any) -> Any:
    """An SDK model with ``fields`` set; dict and list-of-dict values become nested models."""
    nested = {
        "instanceChargePrepaid": "ChargePrepaid",
        "raidConfig": "RaidConfig",
        "customRaids": "CustomRaid",
        "partitions": "Partition",
        "nic": "Nic",
        "tags": "TagAssociation" if name == "CreateInstancesRequest" else "Tag",
        "marketingOptions": "MarketingInfo",
    }
    model = getattr(models(version), name)()
    for key, given in fields.items():
        value = given
        if isinstance(given, dict):
            value = sdk(version, nested[key], **given)
        elif isinstance(given, list) and given and isinstance(given[0], dict):
            value = [sdk(version, nested[key], **item) for item in given]
        setattr(model, key, value)
    return model


def call(tenant: Tenant, version: str, action: str, **fields: Any) -> Any:
    return getattr(tenant.client(version), action)(sdk(version, f"{action}Request", **fields))


def error(tenant: Tenant, version: str, action: str, **fields: Any) -> tuple[str, int]:
    """The SDK's error code, and the HTTP status of the same request sent raw."""
    with pytest.raises(ZenlayerCloudSdkException) as caught:
        call(tenant, version, action, **fields)
    body = sdk(version, f"{action}Request", **fields).serialize()
    response = tenant.stack.raw(
        body, action=action, version=version, key=(tenant.access_key_id, tenant.access_key_password)
    )
    assert response.json()["code"] == caught.value.code
    return str(caught.value.code), response.status_code


BASE: dict[str, Any] = {
    "zoneId": "SEL-A",
    "instanceTypeId": "M6C",
    "instanceChargeType": "PREPAID",
    "instanceChargePrepaid": {"period": 1},
    "internetChargeType": "ByBandwidth",
    "internetMaxBandwidthOut": 50,
}


def create(tenant: Tenant, version: str = V2026, **fields: Any) -> Any:
    return call(tenant, version, "CreateInstances", **{**BASE, **fields})


def describe(tenant: Tenant, ids: list[str], version: str = V2026) -> list[Any]:
    answer = call(tenant, version, "DescribeInstances", instanceIds=ids, pageSize=100)
    by_id = {i.instanceId: i for i in answer.dataSet}
    return [by_id[i] for i in ids]


def qty(tenant: Tenant, zone: str, type_id: str, charge: str = "PREPAID") -> int:
    answer = call(
        tenant,
        V2026,
        "DescribeAvailableResources",
        instanceChargeType=charge,
        zoneId=zone,
        instanceTypeId=type_id,
    )
    return int(answer.availableResources[0].qty)


# --- DescribeImages -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"catalog": "CentOS"}, {"img-centos-79", "img-centos-stream-9"}),
        ({"catalog": "esxi"}, {"img-esxi-70", "img-esxi-80"}),
        ({"osType": "Windows"}, {"img-windows-2019", "img-windows-2022"}),
        ({"imageIds": ["img-debian-11", "img-nope"]}, {"img-debian-11"}),
        ({"imageName": "Debian 12 x86_64"}, {"img-debian-12"}),
        ({"imageName": "Debian"}, set()),
        ({"imageType": "CUSTOM_IMAGE"}, set()),
        ({"instanceTypeId": "M6S"}, {"img-ubuntu-2404", "img-debian-12"}),
        (
            {"instanceTypeId": "L6G", "catalog": "ubuntu"},
            {"img-ubuntu-2204", "img-ubuntu-2404"},
        ),
    ],
)
def test_describe_images_filters(
    tenant: Tenant, version: str, filters: dict[str, Any], expected: set[str]
) -> None:
    images = call(tenant, version, "DescribeImages", **filters).images
    assert {i.imageId for i in images} == expected


def test_describe_images_catalogue(tenant: Tenant, version: str) -> None:
    images = call(tenant, version, "DescribeImages").images
    assert {i.catalog for i in images} == {"centos", "ubuntu", "debian", "windows", "esxi"}
    assert all(i.imageType == "PUBLIC_IMAGE" for i in images)
    assert {i.osType for i in images if i.catalog == "windows"} == {"windows"}
    raw = tenant.stack.raw(
        {},
        action="DescribeImages",
        version=version,
        key=(tenant.access_key_id, tenant.access_key_password),
    ).json()["response"]["images"]
    assert set(raw[0]) == {"imageId", "imageName", "catalog", "imageType", "osType"}
    # every model's imageIds are images DescribeImages knows
    known = {i.imageId for i in images}
    for model in call(tenant, version, "DescribeInstanceTypes").instanceTypes:
        assert model.imageIds
        assert set(model.imageIds) <= known


def test_describe_images_unknown_model(tenant: Tenant, version: str) -> None:
    assert error(tenant, version, "DescribeImages", instanceTypeId="NOPE") == (
        "INVALID_INSTANCE_TYPE_NOT_FOUND",
        404,
    )


# --- InquiryPriceCreateInstance -------------------------------------------------------------------


def inquiry(tenant: Tenant, version: str, **fields: Any) -> Any:
    body = {k: v for k, v in {**BASE, **fields}.items() if v is not None}
    return call(tenant, version, "InquiryPriceCreateInstance", **body)


def test_inquiry_prepaid_by_bandwidth(tenant: Tenant, version: str) -> None:
    # SEL-A M6C: 300.00 a month, 2.00 per Mbps-month above 10 free Mbps
    price = inquiry(
        tenant, version, instanceChargePrepaid={"period": 3}, internetMaxBandwidthOut=110
    )
    assert (price.instancePrice.originalPrice, price.instancePrice.discountPrice) == (900.0, 900.0)
    assert price.instancePrice.unitPrice is None
    [bandwidth] = price.bandwidthPrice
    assert (bandwidth.originalPrice, bandwidth.discountPrice) == (600.0, 600.0)  # 100 x 2 x 3
    assert price.primaryIpPrice.discountPrice == 0.0


def test_inquiry_discount_and_free_bandwidth(tenant: Tenant, version: str) -> None:
    # FRA-A M6C: 280.00 a month, 95 % charged, 20 Mbps free
    price = inquiry(tenant, version, zoneId="FRA-A", internetMaxBandwidthOut=20)
    assert price.instancePrice.discount == 95.0
    assert (price.instancePrice.originalPrice, price.instancePrice.discountPrice) == (280.0, 266.0)
    assert price.bandwidthPrice[0].discountPrice == 0.0


def test_inquiry_traffic_package(tenant: Tenant, version: str) -> None:
    price = inquiry(tenant, version, internetChargeType="ByTrafficPackage", trafficPackageSize=2.5)
    package, overage = price.bandwidthPrice
    assert package.discountPrice == 20.0  # (2.5 - 0.5 free) TB x 10.00
    assert overage.stepPrices[0].unitPrice == 0.01
    default = inquiry(tenant, version, internetChargeType="ByTrafficPackage")
    assert default.bandwidthPrice[0].discountPrice == 0.0


def test_inquiry_postpaid_is_hourly(tenant: Tenant, version: str) -> None:
    price = inquiry(
        tenant,
        version,
        zoneId="HKG-A",
        instanceChargeType="POSTPAID",
        instanceChargePrepaid=None,
        internetMaxBandwidthOut=100,
    )
    assert (price.instancePrice.unitPrice, price.instancePrice.chargeUnit) == (0.5, "HOUR")
    assert price.instancePrice.originalPrice is None
    assert price.bandwidthPrice[0].unitPrice == 0.36  # 90 x 0.004


@pytest.mark.parametrize(
    ("fields", "code", "status"),
    [
        ({"zoneId": "NOPE-1"}, "INVALID_ZONE_NOT_FOUND", 404),
        ({"instanceTypeId": "NOPE"}, "INVALID_INSTANCE_TYPE_NOT_FOUND", 404),
        ({"zoneId": "FRA-A", "instanceTypeId": "L6G"}, "INVALID_INSTANCE_TYPE_ZONE_NO_SELL", 400),
        (
            {"zoneId": "FRA-A", "instanceChargeType": "POSTPAID"},
            "INVALID_CHARGE_TYPE_NOT_SUPPORT",
            403,
        ),
        (
            {"zoneId": "FRA-A", "internetChargeType": "ByTrafficPackage"},
            "INVALID_INSTANCE_BANDWIDTH_ZONE_NO_SELL",
            400,
        ),
        ({"instanceChargePrepaid": None}, "MISSING_PARAMETER", 400),
        ({"internetMaxBandwidthOut": 20000}, "INVALID_BANDWIDTH_VALUE_EXCEED_MAXIMUM", 400),
        (
            {"internetChargeType": "ByTrafficPackage", "trafficPackageSize": 0.07},
            "INVALID_PARAMETER_TRAFFIC_PACKAGE_ERROR",
            400,
        ),
        (
            {"internetChargeType": "ByTrafficPackage", "trafficPackageSize": 0.25},
            "INVALID_PARAMETER_TRAFFIC_PACKAGE_LESS",
            400,
        ),
        (
            {"internetChargeType": "ByTrafficPackage", "trafficPackageSize": 100.05},
            "INVALID_PARAMETER_TRAFFIC_PACKAGE_EXCEED",
            400,
        ),
    ],
)
def test_inquiry_errors(
    tenant: Tenant, version: str, fields: dict[str, Any], code: str, status: int
) -> None:
    body = {k: v for k, v in {**BASE, **fields}.items() if v is not None}
    assert error(tenant, version, "InquiryPriceCreateInstance", **body) == (code, status)


# --- CreateInstances: money, stock, order ---------------------------------------------------------


def test_prepaid_create_charges_what_the_inquiry_quoted(
    make_stack: StackFactory, version: str
) -> None:
    stack = make_stack()
    tenant = stack.tenant(balance="5000.00")
    fields = {
        "zoneId": "FRA-A",  # 95 % discount: the rounding of each item counts
        "instanceTypeId": "M6S",
        "instanceChargePrepaid": {"period": 2},
        "internetMaxBandwidthOut": 33,
    }
    price = inquiry(tenant, version, **fields)
    quoted = Decimal(str(price.instancePrice.discountPrice)) + sum(
        Decimal(str(item.discountPrice)) for item in price.bandwidthPrice
    )
    before = qty(tenant, "FRA-A", "M6S")
    created = create(tenant, version, amount=3, **fields)
    assert len(created.instanceIdSet) == 3
    assert tenant.balance() == Decimal("5000.00") - 3 * quoted
    assert qty(tenant, "FRA-A", "M6S") == before - 3
    [order] = tenant.orders()
    assert order["kind"] == "CREATE"
    assert Decimal(str(order["amount"])) == 3 * quoted
    if version == V2026:
        assert created.orderNumber == order["orderNumber"]
    charges = [e for e in tenant.ledger() if e["kind"] == "CHARGE"]
    assert sorted(e["instanceId"] for e in charges) == sorted(created.instanceIdSet)
    assert {Decimal(str(e["amount"])) for e in charges} == {-quoted}
    assert {e["orderNumber"] for e in charges} == {order["orderNumber"]}
    for info in describe(tenant, created.instanceIdSet):
        assert info.instanceStatus in NEW_STATUSES
        assert (info.instanceChargeType, info.period, info.autoRenew) == ("PREPAID", 2, True)
        assert info.bandwidthOutMbps == 33
        assert info.expiredTime > info.createTime


def test_postpaid_create_charges_nothing_now(rich: Tenant, version: str) -> None:
    tenant = rich
    before = tenant.balance()
    created = create(
        tenant,
        version,
        zoneId="HKG-A",
        instanceTypeId="M6S",
        instanceChargeType="POSTPAID",
        internetChargeType="ByTrafficPackage",
    )
    [info] = describe(tenant, created.instanceIdSet)
    assert (info.instanceChargeType, info.period, info.expiredTime) == ("POSTPAID", None, None)
    assert info.autoRenew is False
    assert info.trafficPackageSize == 0.0  # a postpaid instance buys no package, never null
    assert tenant.balance() == before
    [order] = tenant.orders()
    assert order["kind"] == "CREATE"
    assert Decimal(str(order["amount"])) == 0


def test_insufficient_balance_changes_nothing(make_stack: StackFactory, version: str) -> None:
    stack = make_stack()
    tenant = stack.tenant(balance="700.00")  # one SEL-A M6C at 50 Mbps is 380.00
    before = snapshot(stack, tenant)
    assert error(tenant, version, "CreateInstances", **BASE, amount=2) == (
        "OPERATION_DENIED_BALANCE_INSUFFICIENT",
        403,
    )
    assert snapshot(stack, tenant) == before
    create(tenant, version)  # one is affordable
    assert tenant.balance() == Decimal("320.00")


def test_sold_out_changes_nothing(make_stack: StackFactory, version: str) -> None:
    stack = make_stack()
    tenant = stack.tenant(balance="100000.00")
    before = snapshot(stack, tenant)
    assert error(tenant, version, "CreateInstances", **{**BASE, "zoneId": "LAX-A"}) == (
        "RESOURCES_SOLDOUT_INSTANCE_TYPE",
        400,
    )
    gpu = {**BASE, "instanceTypeId": "L6G", "amount": 5}  # 4 in stock
    assert error(tenant, version, "CreateInstances", **gpu)[0] == "RESOURCES_SOLDOUT_INSTANCE_TYPE"
    assert snapshot(stack, tenant) == before
    create(tenant, version, instanceTypeId="L6G", amount=4)
    assert qty(tenant, "SEL-A", "L6G") == 0


def snapshot(stack: Stack, tenant: Tenant) -> tuple[Any, ...]:
    count = call(tenant, V2026, "DescribeInstances").totalCount
    stock = tuple(
        (r.zoneId, r.instanceTypeId, r.qty)
        for r in call(
            tenant, V2026, "DescribeAvailableResources", instanceChargeType="PREPAID"
        ).availableResources
    )
    pools = tuple((p["poolId"], p["held"]) for p in stack.admin.json("pool", "list"))
    return tenant.balance(), len(tenant.orders()), len(tenant.ledger()), count, stock, pools


def test_pool_exhausted_changes_nothing(make_stack: StackFactory, version: str) -> None:
    stack = small_stack(make_stack, qty=10, public_cidr="192.0.2.0/30")  # two addresses
    tenant = stack.tenant(balance="100000.00")
    before = snapshot(stack, tenant)
    assert error(tenant, version, "CreateInstances", **SMALL, amount=3) == (
        "RESOURCE_INSUFFICIENT_PRODUCT_SOLD_OUT",
        400,
    )
    assert snapshot(stack, tenant) == before
    created = create(tenant, version, **SMALL, amount=2)
    infos = describe(tenant, created.instanceIdSet)
    assert sorted(i.primaryPublicIpAddress for i in infos) == ["192.0.2.1", "192.0.2.2"]
    assert error(tenant, version, "CreateInstances", **SMALL)[0] == (
        "RESOURCE_INSUFFICIENT_PRODUCT_SOLD_OUT"
    )
    [pool] = [p for p in stack.admin.json("pool", "list") if p["poolId"] == "tst-public"]
    assert (pool["size"], pool["held"], pool["available"]) == (2, 2, 0)


SMALL: dict[str, Any] = {
    **BASE,
    "zoneId": "TST-A",
    "instanceTypeId": "T1",
    "internetMaxBandwidthOut": 10,
}


def small_stack(
    make_stack: StackFactory, *, qty: int, public_cidr: str, workers: int = 1, **env: str
) -> Stack:
    """A fresh stack with one more zone TST-A selling model T1 (100.00 a month, 0.10 an hour)
    with ``qty`` in stock and a public pool ``public_cidr`` of its own, served by ``workers``
    API processes."""
    stack = make_stack(start=False)
    catalogue = f"""
[[zones]]
id = "TST-A"
name = "Test A"
city = "Test"
area = "Test"

[[instance_types]]
id = "T1"
description = "test model"
cpu_core_count = 1
cpu_detail = "test"
cpu_cores = 4
cpu_threads = 8
base_frequency = "2 GHz"
memory_size = 8
maximum_bandwidth = 1000
support_raids = [0, 1]
total_disk_size = 900
disk_description = "480 GB SSD x 2"
disks = [{{ size = 480, count = 2 }}]
images = ["img-ubuntu-2404"]

[[offerings]]
zones = ["TST-A"]
instance_types = ["T1"]
internet_charge_types = ["ByBandwidth"]
default_bandwidth_out = 10
qty = {qty}
[offerings.prices]
instance_month = "100.00"
instance_hour = "0.10"
bandwidth_month = "1.00"
bandwidth_hour = "0.01"
traffic_tb_month = "1.00"
traffic_tb_hour = "0.01"
overage_gb = "0.01"

[[address_pools]]
id = "tst-public"
kind = "PUBLIC_IPV4"
cidr = "{public_cidr}"
zone = "TST-A"
"""
    directory = Path(tempfile.mkdtemp(prefix="zbmc-small-"))  # kept: the server log is there
    path = directory / "small.toml"
    path.write_text(catalogue)
    stack.admin.run("catalogue", "load", str(path))
    stack.workers = workers
    stack.start(directory / "server.log", **env)
    return stack


def test_addresses_are_unique_and_ipv6_optional(rich: Tenant, version: str) -> None:
    tenant = rich
    created = create(tenant, version, zoneId="HKG-A", amount=3)
    nov6 = create(tenant, version, zoneId="HKG-A", enablePrimaryIPv6=False)
    infos = describe(tenant, created.instanceIdSet + nov6.instanceIdSet)
    public = [i.primaryPublicIpAddress for i in infos]
    private = [i.privateIpAddresses[0] for i in infos]
    assert len(set(public)) == len(set(private)) == 4
    assert all(p.startswith("198.18.") for p in public)  # the HKG-A demo pool
    assert infos[-1].ipv6Addresses is None
    assert all(i.ipv6Addresses and len(i.ipv6Addresses) == 1 for i in infos[:3])
    if version == V2026:
        assert infos[-1].primaryPublicIPv6Address is None


# --- CreateInstances: what is stored and shown ---------------------------------------------------


def test_created_instance_settings_are_shown(rich: Tenant, version: str) -> None:
    tenant = rich
    group = tenant.stack.admin.json("resource-group", "add", tenant.tenant_id, "web tier")
    created = create(
        tenant,
        version,
        zoneId="HKG-A",
        instanceTypeId="M6S",
        imageId="img-debian-12",
        instanceName="web-[7,2]",
        hostname="node[1,3].example",
        amount=2,
        keyId="key-YWD2QFOl",
        raidConfig={
            "customRaids": [
                {"raidType": 1, "diskSequence": [1, 2]},
                {"raidType": 0, "diskSequence": [3, 4]},
            ]
        },
        partitions=[
            {"fsPath": "/", "fsType": "ext4", "size": 100},
            {"fsPath": "/data", "fsType": "ext4", "size": 200},
        ],
        nic={"wanName": "ext0", "lanName": "int0"},
        tags={"tags": [{"key": "env", "value": "prod"}]},
        enableGatewayMode=True,
        resourceGroupId=group["resourceGroupId"],
    )
    body = {"instanceIds": created.instanceIdSet}
    raw = tenant.stack.raw(
        body,
        action="DescribeInstances",
        version=version,
        key=(tenant.access_key_id, tenant.access_key_password),
    ).json()["response"]["dataSet"]
    raw.sort(key=lambda item: item["instanceName"])
    assert [i["instanceName"] for i in raw] == ["web-07", "web-08"]
    assert [i["hostname"] for i in raw] == ["node001.example", "node002.example"]
    first = raw[0]
    assert first["keyId"] == "key-YWD2QFOl"
    assert first["enableGatewayMode"] is True
    assert first["raidConfig"] == {
        "raidType": None,
        "customRaids": [
            {"raidType": 1, "diskSequence": [1, 2]},
            {"raidType": 0, "diskSequence": [3, 4]},
        ],
    }
    assert first["partitions"] == [
        {"fsPath": "/", "fsType": "ext4", "size": 100},
        {"fsPath": "/data", "fsType": "ext4", "size": 200},
    ]
    assert first["nic"] == {"wanName": "ext0", "lanName": "int0"}
    assert first["tags"] == {"tags": [{"key": "env", "value": "prod"}]}
    assert (first["resourceGroupId"], first["resourceGroupName"]) == (
        group["resourceGroupId"],
        "web tier",
    )
    assert first["imageName"] == "Debian 12 x86_64"
    assert first["ipxeUrl"] is None
    filtered = call(tenant, version, "DescribeInstances", resourceGroupId=group["resourceGroupId"])
    assert {i.instanceId for i in filtered.dataSet} == set(created.instanceIdSet)


def test_defaults_and_ipxe(rich: Tenant, version: str) -> None:
    tenant = rich
    created = create(tenant, version, zoneId="HKG-A", instanceTypeId="M6C-HA", ipxeUrl="netboot")
    [info] = describe(tenant, created.instanceIdSet, version)
    assert (info.instanceName, info.hostname) == ("instance", "hostname")
    assert (info.nic.wanName, info.nic.lanName) == ("bond0", "bond1")
    assert info.ipxeUrl == "netboot"
    assert info.imageId is None
    assert (info.resourceGroupId, info.resourceGroupName) == ("default", "Default Resource Group")


# --- CreateInstances: validation codes -----------------------------------------------------------

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host"

CASES: list[tuple[dict[str, Any], str | None, int]] = [
    ({"zoneId": "NOPE-1"}, "INVALID_ZONE_NOT_FOUND", 404),
    ({"instanceTypeId": "NOPE"}, "INVALID_INSTANCE_TYPE_NOT_FOUND", 404),
    ({"imageId": "img-nope"}, "INVALID_IMAGE_NOT_FOUND", 404),
    ({"imageId": "img-windows-2022", "instanceTypeId": "M6S"}, "INVALID_IMAGE_NOT_FOUND", 404),
    ({"subnetId": "subnet-1"}, "INVALID_SUBNET_NOT_FOUND", 404),
    ({"resourceGroupId": "rg-nope"}, "OPERATION_FAILED_RESOURCE_GROUP_NOT_FOUND", 404),
    # not-found wins over every later check (spec Q14)
    ({"zoneId": "NOPE-1", "password": "weak"}, "INVALID_ZONE_NOT_FOUND", 404),
    ({"zoneId": "FRA-A", "instanceTypeId": "L6G"}, "INVALID_INSTANCE_TYPE_ZONE_NO_SELL", 400),
    ({"zoneId": "FRA-A", "instanceChargeType": "POSTPAID"}, "INVALID_CHARGE_TYPE_NOT_SUPPORT", 403),
    (
        {"internetChargeType": "ByInstanceBandwidth95"},
        "INVALID_INSTANCE_BANDWIDTH_ZONE_NO_SELL",
        400,
    ),
    ({"internetChargeType": "ByBandwidthCluster"}, "MISSING_PARAMETER", 400),
    (
        {"internetChargeType": "ByBandwidthCluster", "clusterId": "c-1"},
        "OPERATION_FAILED_RESOURCE_NOT_FOUND",
        404,
    ),
    ({"internetChargeType": "Free"}, "INVALID_PARAMETER", 400),
    ({"instanceChargePrepaid": {"period": 0}}, "INVALID_PARAMETER", 400),
    ({"zoneId": None}, "MISSING_PARAMETER", 400),
    ({"instanceChargePrepaid": None}, "MISSING_PARAMETER", 400),
    ({"amount": 0}, "INVALID_PARAMETER", 400),
    ({"amount": 101}, "INVALID_PARAMETER", 400),
    ({"instanceName": "x" * 65}, "INVALID_PARAMETER_INSTANCE_NAME_EXCEED", 400),
    ({"instanceName": "a b"}, "INVALID_PARAMETER_INSTANCE_NAME_EXCEED", 400),
    ({"instanceName": "x" * 60 + "[1,6]"}, "INVALID_PARAMETER_INSTANCE_NAME_EXCEED", 400),
    ({"instanceName": "n[1,7]"}, "INVALID_PARAMETER_INSTANCE_NAME_EXCEED", 400),
    ({"hostname": "h" * 65}, "INVALID_PARAMETER_HOSTNAME_EXCEED", 400),
    ({"hostname": "h" * 60 + "[0,5]"}, "INVALID_PARAMETER_HOSTNAME_EXCEED", 400),
    ({"hostname": "web_1"}, "INVALID_PARAMETER_HOSTNAME_MALFORMED", 400),
    ({"hostname": "-web"}, "INVALID_PARAMETER_HOSTNAME_MALFORMED", 400),
    ({"hostname": "web[100000,2]"}, "INVALID_PARAMETER_HOSTNAME_MALFORMED", 400),
    ({"password": "Short1!"}, "INVALID_PARAMETER_VALUE_PASSWORD_MALFORMED", 400),
    ({"password": "NoSpecial123"}, "INVALID_PARAMETER_VALUE_PASSWORD_MALFORMED", 400),
    ({"password": "nouppercase1!"}, "INVALID_PARAMETER_VALUE_PASSWORD_MALFORMED", 400),
    ({"password": "Bad#Special1"}, "INVALID_PARAMETER_VALUE_PASSWORD_MALFORMED", 400),
    ({"password": "Waytoolong12345!!"}, "INVALID_PARAMETER_VALUE_PASSWORD_MALFORMED", 400),
    ({"password": "Good1234!", "keyId": "key-1"}, "INVALID_PARAMETER_INSTANCE_LOGIN_CONFLICT", 400),
    ({"internetMaxBandwidthOut": 10001}, "INVALID_BANDWIDTH_VALUE_EXCEED_MAXIMUM", 400),
    ({"internetMaxBandwidthOut": 0}, "INVALID_BANDWIDTH_VALUE_EXCEED_MAXIMUM", 400),
    (
        {"internetChargeType": "ByTrafficPackage", "trafficPackageSize": 0.33},
        "INVALID_PARAMETER_TRAFFIC_PACKAGE_ERROR",
        400,
    ),
    (
        {
            "zoneId": "HKG-A",
            "instanceChargeType": "POSTPAID",
            "internetChargeType": "ByTrafficPackage",
            "trafficPackageSize": 1,
        },
        "INVALID_PARAMETER_TRAFFIC_PACKAGE_ERROR",
        400,
    ),
    (
        {"internetChargeType": "ByTrafficPackage", "trafficPackageSize": 0.45},
        "INVALID_PARAMETER_TRAFFIC_PACKAGE_LESS",
        400,
    ),
    (
        {"internetChargeType": "ByTrafficPackage", "trafficPackageSize": 150},
        "INVALID_PARAMETER_TRAFFIC_PACKAGE_EXCEED",
        400,
    ),
    (
        {"raidConfig": {"raidType": 1, "customRaids": [{"raidType": 1, "diskSequence": [1, 2]}]}},
        "INVALID_RAID_CONFIG_FAST_CUSTOM_CONFLICT",
        400,
    ),
    ({"raidConfig": {"raidType": 5}}, "INVALID_INSTANCE_TYPE_RAID_NOT_SUPPORT", 400),
    ({"instanceTypeId": "M6S", "raidConfig": {"raidType": 10, "customRaids": None}}, None, 0),
    (
        {
            "instanceTypeId": "M6S",
            "raidConfig": {"customRaids": [{"raidType": 1, "diskSequence": [1, 2, 3]}]},
        },
        "INVALID_PARAMETER_VALUE_RAID_DISK_MISMATCH",
        400,
    ),
    (
        {"raidConfig": {"customRaids": [{"raidType": 1, "diskSequence": [2, 1]}]}},
        "INVALID_PARAMETER_VALUE_RAID_DISK_DISORDER",
        400,
    ),
    (
        {
            "instanceTypeId": "M6S",
            "raidConfig": {"customRaids": [{"raidType": 0, "diskSequence": [1, 3]}]},
        },
        "INVALID_PARAMETER_VALUE_RAID_DISK_DISORDER",
        400,
    ),
    (
        {
            "raidConfig": {
                "customRaids": [
                    {"raidType": 0, "diskSequence": [1]},
                    {"raidType": 0, "diskSequence": [1]},
                ]
            }
        },
        "INVALID_PARAMETER_VALUE_RAID_DISK_SEQUENCE_DUPLICATE",
        400,
    ),
    (
        {"raidConfig": {"customRaids": [{"raidType": 1, "diskSequence": [2, 3]}]}},
        "INVALID_PARAMETER_VALUE_RAID_DISK_SEQUENCE_RANGE",
        400,
    ),
    ({"raidConfig": {"raidType": 0}}, None, 0),
    (
        {"partitions": [{"fsPath": "/", "fsType": "ext4", "size": 50}]},
        "INVALID_PARTITION_IMAGE_NOT_SET",
        400,
    ),
    (
        {
            "imageId": "img-ubuntu-2404",
            "partitions": [{"fsPath": "/", "fsType": "ext4", "size": 961}],
        },
        "INVALID_PARTITION_SIZE_NOT_FULL",
        400,
    ),
    (
        {
            "imageId": "img-ubuntu-2404",
            "raidConfig": {"raidType": 0},
            "partitions": [{"fsPath": "/", "fsType": "ext4", "size": 1900}],
        },
        None,
        0,
    ),
    (
        {
            "imageId": "img-ubuntu-2404",
            "partitions": [
                {"fsPath": "/", "fsType": "ext4", "size": 5},
                {"fsPath": "/", "fsType": "ext4", "size": 5},
            ],
        },
        "INVALID_PARTITION_DUPLICATE_FILE_PATH",
        400,
    ),
    (
        {
            "imageId": "img-ubuntu-2404",
            "partitions": [{"fsPath": "/data", "fsType": "ext4", "size": 5}],
        },
        "INVALID_PARTITION_MISSING_REQUIRED_FILE_PATH",
        400,
    ),
    (
        {
            "imageId": "img-ubuntu-2404",
            "partitions": [
                {"fsPath": "/data", "fsType": "ext4", "size": 5},
                {"fsPath": "/", "fsType": "ext4", "size": 5},
            ],
        },
        "INVALID_PARTITION_INVALID_ORDER",
        400,
    ),
    (
        {
            "imageId": "img-ubuntu-2404",
            "partitions": [{"fsPath": "data", "fsType": "ext4", "size": 5}],
        },
        "INVALID_PARTITION_MALFORMED",
        400,
    ),
    (
        {
            "imageId": "img-ubuntu-2404",
            "partitions": [{"fsPath": "/", "fsType": "NTFS", "size": 5}],
        },
        "INVALID_PARTITION_NO_TYPE",
        400,
    ),
    (
        {
            "imageId": "img-windows-2022",
            "partitions": [
                {"fsPath": "C", "fsType": "NTFS", "size": 100},
                {"fsPath": "E", "fsType": "NTFS", "size": 5},
                {"fsPath": "D", "fsType": "NTFS", "size": 5},
            ],
        },
        "INVALID_PARTITION_INVALID_ORDER",
        400,
    ),
    (
        {
            "imageId": "img-windows-2022",
            "partitions": [
                {"fsPath": "C", "fsType": "NTFS", "size": 100},
                {"fsPath": "D", "fsType": "NTFS", "size": 50},
            ],
        },
        None,
        0,
    ),
    (
        {"imageId": "img-esxi-80", "partitions": [{"fsPath": "/", "fsType": "ext4", "size": 5}]},
        "INVALID_PARTITION_MALFORMED",
        400,
    ),
    ({"imageId": "img-windows-2022", "keyId": "key-1"}, "INVALID_PARAMETER", 400),
    ({"nic": {"wanName": "lan0", "lanName": "lan1"}}, "INVALID_PARAMETER_NIC_NAME_MALFORMED", 400),
    ({"nic": {"wanName": "0wan"}}, "INVALID_PARAMETER_NIC_NAME_MALFORMED", 400),
    ({"nic": {"wanName": "abc"}}, "INVALID_PARAMETER_NIC_NAME_MALFORMED", 400),
    ({"nic": {"wanName": "eth0", "lanName": "eth0"}}, "INVALID_PARAMETER_NIC_NAME_CONFLICT", 400),
    ({"imageId": "img-ubuntu-2404", "ipxeUrl": "netboot"}, "INVALID_PARAMETER", 400),
    ({"ipxeUrl": "ftp://x"}, "INVALID_PARAMETER", 400),
    (
        {"tags": {"tags": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]}},
        "INVALID_PARAMETER",
        400,
    ),
    ({"userData": "x" * (32 * 1024 + 1)}, "INVALID_PARAMETER", 400),
    ({"marketingOptions": {"usePocVoucher": True}}, "INVALID_PARAMETER", 400),
    ({"marketingOptions": {"discountCode": "UNKNOWN"}}, None, 0),
]


@pytest.mark.parametrize(("fields", "code", "status"), CASES)
def test_create_validation(
    make_validation_tenant: Tenant,
    version: str,
    fields: dict[str, Any],
    code: str | None,
    status: int,
) -> None:
    tenant = make_validation_tenant
    body = {k: v for k, v in {**BASE, **fields}.items() if v is not None}
    if code is None:
        assert create_body(tenant, version, body).instanceIdSet
        return
    before = tenant.balance()
    assert error(tenant, version, "CreateInstances", **body) == (code, status)
    assert tenant.balance() == before


def create_body(tenant: Tenant, version: str, body: dict[str, Any]) -> Any:
    return call(tenant, version, "CreateInstances", **body)


@pytest.fixture
def make_validation_tenant(stack: Stack) -> Tenant:
    return stack.tenant(balance="5000.00")


@pytest.fixture
def rich(stack: Stack) -> Tenant:
    return stack.tenant(balance="100000.00")


def test_ssh_keys_v2022(rich: Tenant) -> None:
    tenant = rich
    ok = create(tenant, V2022, zoneId="HKG-A", imageId="img-ubuntu-2404", sshKeys=[KEY])
    assert ok.instanceIdSet
    cases = [
        ([KEY, KEY], "INVALID_PARAMETER_SSH_KEY_DUPLICATE"),
        (["ssh-rsa notbase64!"], "INVALID_PARAMETER_SSH_KEY_MALFORMED"),
        (["ssh-rsa " + KEY.split()[1]], "INVALID_PARAMETER_SSH_KEY_MALFORMED"),  # wrong type
        ([KEY] * 6, "INVALID_PARAMETER_SSH_KEY_MALFORMED"),
    ]
    for keys, code in cases:
        assert error(tenant, V2022, "CreateInstances", **BASE, sshKeys=keys) == (code, 400)
    both = {**BASE, "sshKeys": [KEY], "password": "Good1234!"}
    assert (
        error(tenant, V2022, "CreateInstances", **both)[0]
        == "INVALID_PARAMETER_INSTANCE_LOGIN_CONFLICT"
    )


def test_amount_100_expands_names(make_stack: StackFactory) -> None:
    stack = small_stack(make_stack, qty=100, public_cidr="192.0.2.0/24")
    tenant = stack.tenant(balance="1000000.00")
    created = create(tenant, V2026, **SMALL, amount=100, instanceName="node-[0,3]")
    assert len(set(created.instanceIdSet)) == 100
    names = sorted(i.instanceName for i in describe(tenant, created.instanceIdSet))
    assert names == [f"node-{n:03d}" for n in range(100)]
    assert qty(tenant, "TST-A", "T1") == 0
    assert tenant.balance() == Decimal("1000000.00") - 100 * Decimal("100.00")


def test_modify_instances_resource_group(rich: Tenant, version: str) -> None:
    tenant = rich
    admin = tenant.stack.admin
    group = admin.json("resource-group", "add", tenant.tenant_id, "databases")["resourceGroupId"]
    groups = admin.json("resource-group", "list", tenant.tenant_id)
    assert [g["resourceGroupId"] for g in groups] == ["default", group]
    ids = create(tenant, version, zoneId="HKG-A", amount=2).instanceIdSet
    call(tenant, version, "ModifyInstancesResourceGroup", instanceIds=ids, resourceGroupId=group)
    assert {i.resourceGroupName for i in describe(tenant, ids)} == {"databases"}
    moved = call(tenant, version, "DescribeInstances", resourceGroupId=group).dataSet
    assert {i.instanceId for i in moved} == set(ids)
    bad = {"instanceIds": [ids[0], "404404"], "resourceGroupId": "default"}
    assert error(tenant, version, "ModifyInstancesResourceGroup", **bad) == (
        "INVALID_INSTANCE_NOT_FOUND",
        404,
    )
    assert {i.resourceGroupId for i in describe(tenant, ids)} == {group}  # nothing moved
    other = tenant.stack.tenant()
    foreign = admin.json("resource-group", "add", other.tenant_id, "theirs")["resourceGroupId"]
    for group_id in (foreign, "rg-nope"):
        body = {"instanceIds": ids, "resourceGroupId": group_id}
        assert error(tenant, version, "ModifyInstancesResourceGroup", **body) == (
            "OPERATION_FAILED_RESOURCE_GROUP_NOT_FOUND",
            404,
        )
    call(
        tenant, version, "ModifyInstancesResourceGroup", instanceIds=ids, resourceGroupId="default"
    )
    assert {i.resourceGroupId for i in describe(tenant, ids)} == {"default"}
