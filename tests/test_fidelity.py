"""Fidelity with the vendor's clients (issue 14): the places where the Terraform provider and the
CLI, run against zbmc, found a mismatch. Each test drives the official SDK against a live server;
the choices are recorded in docs/behaviour.md."""

from __future__ import annotations

from typing import Any

from tests.harness import Stack, Tenant, wait_until
from tests.test_bandwidth import assert_error, call, internet
from zbmc.errors import ApiError, all_error_classes

# --- OPERATION_DENIED_DOWNGRADE_NOT_EXIST: one code, one status ------------------------------


def test_every_wire_code_has_one_status() -> None:
    statuses: dict[str, set[int]] = {}
    classes: list[type[ApiError]] = [ApiError, *all_error_classes()]
    for cls in classes:
        statuses.setdefault(cls.code, set()).add(cls.status)
    assert {code: s for code, s in statuses.items() if len(s) > 1} == {}


def test_both_cancel_actions_answer_downgrade_not_exist_alike(tenant: Tenant, version: str) -> None:
    by_bandwidth = tenant.instance()
    by_package = tenant.instance(internet_charge_type="ByTrafficPackage")
    for action, iid in (
        ("CancelInstanceBandwidthDowngrade", by_bandwidth),
        ("CancelInstanceTrafficPackageDowngrade", by_package),
    ):
        assert_error(
            tenant, version, action, "OPERATION_DENIED_DOWNGRADE_NOT_EXIST", 404, instanceId=iid
        )
    assert tenant.orders() == []


# --- the seed's spelling of "no traffic package" -------------------------------------------------


def test_no_traffic_package_uses_the_seed_spelling(tenant: Tenant, version: str) -> None:
    """OPERATION_FAILED_..., as the seed page spells it (the Go SDK's constant is FILED)."""
    iid = tenant.instance(internet_charge_type="ByTrafficPackage", traffic_package="none")
    code = "OPERATION_FAILED_INSTANCE_NOT_EXIST_TRAFFIC_PACKAGE"
    fields = {"instanceId": iid, "trafficPackageSize": 2}
    assert_error(tenant, version, "ModifyInstanceTrafficPackage", code, 403, **fields)
    assert tenant.orders() == []


# --- DescribeInstances: unknown catalogue values in filters -------------------------------------


def describe(tenant: Tenant, version: str, **filters: Any) -> Any:
    return call(tenant, version, "DescribeInstances", **filters)


def test_unknown_catalogue_filters_are_404_known_ones_without_matches_are_empty(
    tenant: Tenant, version: str
) -> None:
    """docs/behaviour.md: an unknown zoneId / instanceTypeId / imageId is an error, as the Go
    SDK's error list for DescribeInstances names; a known one without matches, and unknown
    instance ids, give an empty page (what a Terraform list data source sees for "none")."""
    iid = tenant.instance(zone="SEL-A", type="M6C")
    for filters, code in (
        ({"zoneId": "SEL--A"}, "INVALID_ZONE_NOT_FOUND"),
        ({"instanceTypeId": "M6C-X"}, "INVALID_INSTANCE_TYPE_NOT_FOUND"),
        ({"imageId": "img-missing"}, "INVALID_IMAGE_NOT_FOUND"),
    ):
        assert_error(tenant, version, "DescribeInstances", code, 404, **filters)
    empty: list[dict[str, Any]] = [
        {"zoneId": "HKG-A"},
        {"instanceTypeId": "L6G"},
        {"instanceIds": ["999999999999999999"]},
        {"zoneId": "HKG-A", "instanceIds": [iid]},
    ]
    for filters in empty:
        answer = describe(tenant, version, **filters)
        assert (answer.totalCount, answer.dataSet) == (0, []), filters
    assert [i.instanceId for i in describe(tenant, version, zoneId="SEL-A").dataSet] == [iid]


# --- orders: a cancelled downgrade was never applied ---------------------------------------------


def test_cancelled_downgrade_order_has_a_cancelled_time_and_no_applied_time(
    stack: Stack, tenant: Tenant, version: str
) -> None:
    iid = tenant.instance(bandwidth=200)
    number = call(
        tenant, version, "ModifyInstanceBandwidth", instanceId=iid, bandwidthOutMbps=100
    ).orderNumber
    assert internet(tenant, version, iid).modifiedBandwidthStatus == "WaitToEnable"
    call(tenant, version, "CancelInstanceBandwidthDowngrade", instanceId=iid)
    order = stack.admin.json("order", number)
    assert order["state"] == "CANCELLED"
    assert order["appliedAt"] is None
    assert order["cancelledAt"] is not None
    assert order["createdAt"] <= order["cancelledAt"]
    text = stack.admin.run("order", number)
    assert "cancelledAt" in text
    [listed] = [o for o in tenant.orders() if o["orderNumber"] == number]
    assert (listed["appliedAt"], listed["cancelledAt"]) == (None, order["cancelledAt"])


def test_cancelled_package_downgrade_order_likewise(
    stack: Stack, tenant: Tenant, version: str
) -> None:
    iid = tenant.instance(internet_charge_type="ByTrafficPackage", traffic_package=2)
    number = call(
        tenant, version, "ModifyInstanceTrafficPackage", instanceId=iid, trafficPackageSize=1
    ).orderNumber
    call(tenant, version, "CancelInstanceTrafficPackageDowngrade", instanceId=iid)
    order = stack.admin.json("order", number)
    assert (order["state"], order["appliedAt"]) == ("CANCELLED", None)
    assert order["cancelledAt"] is not None


# --- access log: every request, refused ones included ---------------------------------------------


def test_every_request_is_in_the_access_log_with_its_request_id(
    stack: Stack, tenant: Tenant
) -> None:
    key = (tenant.access_key_id, tenant.access_key_password)
    limit_plus_one = b"{" + b" " * (1024 * 1024) + b"}"  # the default limit is 1 MiB
    answers = [
        stack.raw({}, key=key, path="/api/v2/nosuch", action="ModifyResourceTags"),
        stack.raw({}, key=key, path="/api/v2/bmc/A/B"),
        stack.raw({}, key=key, path="/nowhere"),
        stack.raw({}, key=key, method="GET"),
        stack.raw(limit_plus_one, key=key),
        stack.raw({}, key=key, path="/api/v2/bmc/DescribeZones", action="DescribeImages"),
        stack.raw({}, key=None),
        stack.raw({}, key=key, action="NoSuchAction"),
        stack.raw({}, key=key),
    ]
    statuses = [a.status_code for a in answers]
    assert statuses == [404, 404, 404, 405, 413, 400, 401, 400, 200]
    ids = [a.json()["requestId"] for a in answers]
    assert [a.headers["x-zc-request-id"] for a in answers] == ids
    assert stack.log_path is not None
    log_path = stack.log_path

    def logged() -> list[str]:
        lines = log_path.read_text().splitlines()
        return [next((line for line in lines if i in line), "") for i in ids]

    lines = wait_until(lambda: all(logged()) and logged())
    for line, answer in zip(lines, answers, strict=True):
        assert "zbmc.access" in line
        assert f" {answer.status_code} " in line
        code = answer.json().get("code", "OK")
        assert code in line, line
    assert "/api/v2/nosuch ModifyResourceTags 404 INVALID_PATH" in lines[0]
    assert "GET /api/v2/bmc" in lines[3]
    assert "/nowhere" in lines[2]
