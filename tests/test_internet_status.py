"""DescribeInstanceInternetStatus: every documented key, current vs pending values, and the
Processing -> Enable transition as clients observe it by polling."""

from __future__ import annotations

from typing import Any

from tests.harness import V2022, V2026, Stack, Tenant, wait_until
from tests.test_bandwidth import assert_error, call, internet, raw

DESCRIBE = "DescribeInstanceInternetStatus"
KEYS = {
    "requestId",
    "instanceId",
    "instanceName",
    "internetMaxBandwidthOut",
    "modifiedInternetMaxBandwidthOut",
    "modifiedBandwidthStatus",
    "trafficPackageSize",
    "modifiedTrafficPackageSize",
    "modifiedTrafficPackageStatus",
}


def described(tenant: Tenant, version: str, instance_id: str) -> dict[str, Any]:
    response = raw(tenant, version, DESCRIBE, instanceId=instance_id)
    assert response.status_code == 200
    body = response.json()
    assert body["response"]["requestId"] == body["requestId"]
    return dict(body["response"])


def test_every_documented_key_is_present(tenant: Tenant, version: str) -> None:
    cases = {
        tenant.instance(name="bw", bandwidth=100): (100, None, None),
        tenant.instance(
            name="tp", internet_charge_type="ByTrafficPackage", bandwidth=50, traffic_package="1.05"
        ): (50, 1.05, "Enable"),
        tenant.instance(
            name="none", internet_charge_type="ByTrafficPackage", traffic_package="none"
        ): (100, 0.0, "Enable"),  # never null for ByTrafficPackage
    }
    for iid, (mbps, package, package_status) in cases.items():
        body = described(tenant, version, iid)
        assert set(body) == KEYS
        assert body["instanceId"] == iid
        assert body["instanceName"] in ("bw", "tp", "none")
        assert type(body["internetMaxBandwidthOut"]) is int
        assert (
            body["internetMaxBandwidthOut"],
            body["modifiedInternetMaxBandwidthOut"],
            body["modifiedBandwidthStatus"],
        ) == (mbps, None, "Enable")
        assert (
            body["trafficPackageSize"],
            body["modifiedTrafficPackageSize"],
            body["modifiedTrafficPackageStatus"],
        ) == (package, None, package_status)
    sdk = internet(tenant, version, next(iter(cases)))
    assert (sdk.instanceName, sdk.internetMaxBandwidthOut, sdk.trafficPackageSize) == (
        "bw",
        100,
        None,
    )


def test_unknown_and_foreign_instances_are_not_found(
    stack: Stack, tenant: Tenant, version: str
) -> None:
    foreign = stack.tenant().instance()
    for iid in ("999999999999999999", foreign):
        assert_error(tenant, version, DESCRIBE, "INVALID_INSTANCE_NOT_FOUND", 404, instanceId=iid)


def observe(
    tenant: Tenant, version: str, instance_id: str, fields: tuple[str, str, str]
) -> list[tuple[Any, Any, Any]]:
    """Poll until the change is Enable; every observation on the way."""
    seen: list[tuple[Any, Any, Any]] = []

    def enabled() -> bool:
        body = described(tenant, version, instance_id)
        seen.append((body[fields[0]], body[fields[1]], body[fields[2]]))
        return bool(body[fields[2]] == "Enable")

    wait_until(enabled, interval=0.005)
    return seen


def test_processing_becomes_enable_only_with_the_new_value(tenant: Tenant, version: str) -> None:
    iid = tenant.instance(
        instance_charge_type="POSTPAID", internet_charge_type="ByTrafficPackage", bandwidth=100
    )
    call(tenant, version, "ModifyInstanceBandwidth", instanceId=iid, bandwidthOutMbps=300)
    seen = observe(
        tenant,
        version,
        iid,
        ("internetMaxBandwidthOut", "modifiedInternetMaxBandwidthOut", "modifiedBandwidthStatus"),
    )
    assert set(seen) <= {(100, 300, "Processing"), (300, None, "Enable")}
    assert seen[-1] == (300, None, "Enable")
    call(tenant, version, "ModifyInstanceTrafficPackage", instanceId=iid, trafficPackageSize=4.2)
    seen = observe(
        tenant,
        version,
        iid,
        ("trafficPackageSize", "modifiedTrafficPackageSize", "modifiedTrafficPackageStatus"),
    )
    assert set(seen) <= {(0.0, 4.2, "Processing"), (4.2, None, "Enable")}
    assert seen[-1] == (4.2, None, "Enable")


def test_bandwidth_and_package_changes_are_independent(make_stack: Any) -> None:
    slow = make_stack(ZBMC_DRIVER_DELAY_SECONDS="3600")
    tenant = slow.tenant()
    for version in (V2022, V2026):
        iid = tenant.instance(
            instance_charge_type="POSTPAID", internet_charge_type="ByTrafficPackage"
        )
        call(tenant, version, "ModifyInstanceBandwidth", instanceId=iid, bandwidthOutMbps=300)
        call(tenant, version, "ModifyInstanceTrafficPackage", instanceId=iid, trafficPackageSize=3)
        body = described(tenant, version, iid)
        assert body == {
            "requestId": body["requestId"],
            "instanceId": iid,
            "instanceName": "instance",
            "internetMaxBandwidthOut": 100,
            "modifiedInternetMaxBandwidthOut": 300,
            "modifiedBandwidthStatus": "Processing",
            "trafficPackageSize": 0.0,
            "modifiedTrafficPackageSize": 3.0,
            "modifiedTrafficPackageStatus": "Processing",
        }
        (info,) = call(tenant, version, "DescribeInstances", instanceIds=[iid]).dataSet
        assert (info.bandwidthOutMbps, info.trafficPackageSize) == (100, 0.0)


def test_waiting_downgrade_shows_current_and_pending(tenant: Tenant, version: str) -> None:
    iid = tenant.instance(internet_charge_type="ByTrafficPackage", traffic_package="3")
    call(tenant, version, "ModifyInstanceTrafficPackage", instanceId=iid, trafficPackageSize=1)
    body = described(tenant, version, iid)
    assert (
        body["trafficPackageSize"],
        body["modifiedTrafficPackageSize"],
        body["modifiedTrafficPackageStatus"],
    ) == (3.0, 1.0, "WaitToEnable")
    # A waiting package downgrade does not hold up a bandwidth change (not ByBandwidth: immediate).
    call(tenant, version, "ModifyInstanceBandwidth", instanceId=iid, bandwidthOutMbps=40)
    body = wait_until(
        lambda: (
            b
            if (b := described(tenant, version, iid))["modifiedBandwidthStatus"] == "Enable"
            else None
        )
    )
    assert (body["internetMaxBandwidthOut"], body["modifiedTrafficPackageStatus"]) == (
        40,
        "WaitToEnable",
    )
