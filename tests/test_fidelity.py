"""Fidelity with the vendor's clients (issue 14): the places where the Terraform provider and the
CLI, run against zbmc, found a mismatch. Each test drives the official SDK against a live server;
the choices are recorded in docs/behaviour.md."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.conftest import StackFactory
from tests.harness import V2022, V2026, Stack, Tenant, wait_until
from tests.test_bandwidth import assert_error, call, internet
from tests.test_billing_cycles import run_worker, simulated
from tests.test_worker import ingest
from zbmc.clock import parse_iso
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


# --- POSTPAID ByTrafficPackage: no package bought, traffic above the free allowance -------------


def test_postpaid_traffic_instance_reports_0_and_pays_hours_and_traffic_above_the_free_tb(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    """docs/billing.md: a postpaid ByTrafficPackage instance buys no package; trafficPackageSize
    reads 0 (never null: Terraform dereferences it, and 0 is what its schema's unset
    traffic_package_size compares equal to, so an imported instance plans clean). It pays the
    instance by the hour and every started GB above the offering's free 0.5 TB per cycle."""
    stack = simulated(make_stack, ZBMC_RUN_WORKER="0")
    tenant = stack.tenant(balance="100.00")
    iid = tenant.instance(
        zone="HKG-A", instance_charge_type="POSTPAID", internet_charge_type="ByTrafficPackage"
    )
    no_package = tenant.instance(internet_charge_type="ByTrafficPackage", traffic_package="none")
    for version in (V2022, V2026):
        for instance_id in (iid, no_package):
            key = (tenant.access_key_id, tenant.access_key_password)
            body = {"instanceIds": [instance_id]}
            listed = stack.raw(body, action="DescribeInstances", version=version, key=key)
            (item,) = listed.json()["response"]["dataSet"]
            assert item["trafficPackageSize"] == 0.0
            status = internet(tenant, version, instance_id)
            assert (status.trafficPackageSize, status.modifiedTrafficPackageStatus) == (
                0.0,
                "Enable",
            )
    created = parse_iso(describe(tenant, V2026, instanceIds=[iid]).dataSet[0].createTime)
    # 0.7 TB outbound within the first hour: 0.5 TB free, 200 GB at 0.01 per GB
    samples = [
        {
            "sampleId": f"{iid}-{k}",
            "instanceId": iid,
            "time": created + 300 * k,
            "inBytes": 10**9,
            "outBytes": 7 * 10**10,
        }
        for k in range(1, 11)
    ]
    ingest(stack, samples, str(tmp_path))
    stack.admin.run("clock", "advance", "2h")
    run_worker(stack)
    mine = [e for e in tenant.ledger() if e["instanceId"] == iid and e["kind"] == "CHARGE"]
    hours = [Decimal(str(e["amount"])) for e in mine if "postpaid hour" in e["description"]]
    overage = [e for e in mine if "traffic overage" in e["description"]]
    assert hours == [Decimal("-0.50")] * 2  # the instance only: no package is bought
    assert [Decimal(str(e["amount"])) for e in overage] == [Decimal("-2.00")]
    assert "above the 0.5 TB free allowance" in overage[0]["description"]
    # A package bought later is reported, and its part above the free 0.5 TB billed by the hour.
    call(tenant, V2026, "ModifyInstanceTrafficPackage", instanceId=iid, trafficPackageSize=1.5)
    run_worker(stack)
    assert describe(tenant, V2026, instanceIds=[iid]).dataSet[0].trafficPackageSize == 1.5
    stack.admin.run("clock", "advance", "1h")
    run_worker(stack)
    last = [e for e in tenant.ledger() if e["instanceId"] == iid][-1]
    assert "1.5 TB package" in last["description"]
    assert Decimal(str(last["amount"])) == Decimal("-0.52")  # 0.50 + 1 TB x 0.02
