"""What the Terraform provider (zenlayercloud_bmc_instance) does, as SDK calls with the
2022-11-20 client it uses (no test can run Terraform here): create, poll DescribeInstances
{instanceIds: [id]} until RUNNING (failing on CREATE_FAILED / INSTALL_FAILED), update the
bandwidth and poll DescribeInstanceInternetStatus until Enable, destroy with TerminateInstance
(tolerating OPERATION_DENIED_INSTANCE_RECYCLED), read RECYCLE, force_delete with
ReleaseInstances, and see the instance gone (totalCount 0). The list data source fetches pages
concurrently, so paging must never fail under concurrent requests."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from zenlayercloud.bmc.v20221120 import models
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import ZenlayerCloudSdkException

from tests.conftest import StackFactory
from tests.harness import V2022, Stack, Tenant, wait_until
from tests.test_host_ops import advance, simulated
from tests.test_lifecycle import call
from zbmc.clock import parse_iso
from zbmc.db.tables import addresses, offerings

POLL_SECONDS = 0.05  # Terraform waits 5-10 s between reads; the sequence is what matters
FAILED = ("CREATE_FAILED", "INSTALL_FAILED")


class CreationFailed(Exception):
    pass


def read(tenant: Tenant, instance_id: str) -> Any:
    """The provider's read: None when the instance is gone (totalCount 0)."""
    answer = call(tenant, V2022, "DescribeInstances", instanceIds=[instance_id])
    return answer.dataSet[0] if answer.totalCount else None


def wait_running(tenant: Tenant, instance_id: str, timeout: float = 30.0) -> Any:
    """The provider's create/update wait: RUNNING, or an error on a failed status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = read(tenant, instance_id)
        assert info is not None, "the instance disappeared while being created"
        if info.instanceStatus in FAILED:
            raise CreationFailed(f"instance {instance_id} is {info.instanceStatus}")
        if info.instanceStatus == "RUNNING":
            return info
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"instance {instance_id} not RUNNING within {timeout}s")


def destroy(tenant: Tenant, instance_id: str) -> None:
    """The provider's delete: TerminateInstance, an already recycled instance is fine."""
    try:
        call(tenant, V2022, "TerminateInstance", instanceId=instance_id)
    except ZenlayerCloudSdkException as exc:
        if exc.code != "OPERATION_DENIED_INSTANCE_RECYCLED":
            raise


def create(tenant: Tenant, **fields: Any) -> str:
    body: dict[str, Any] = {
        "zoneId": "SEL-A",
        "instanceTypeId": "M6C",
        "imageId": "img-ubuntu-2204",
        "instanceName": "tf-bmc",
        "hostname": "tf-bmc",
        "password": "Tf-Passw0rd",
        "internetChargeType": "ByBandwidth",
        "internetMaxBandwidthOut": 20,
        **fields,
    }
    created = call(tenant, V2022, "CreateInstances", **body)
    [instance_id] = created.instanceIdSet
    return str(instance_id)


def stock(stack: Stack) -> int:
    engine = stack.engine()
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(offerings.c.qty).where(
                        offerings.c.zone_id == "SEL-A", offerings.c.instance_type_id == "M6C"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def held_addresses(stack: Stack, instance_id: str) -> int:
    engine = stack.engine()
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(addresses)
                    .where(addresses.c.instance_id == instance_id)
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_postpaid_round_trip(stack: Stack) -> None:
    tenant = stack.tenant()
    stock_before = stock(stack)
    instance_id = create(tenant, instanceChargeType="POSTPAID")
    assert stock(stack) == stock_before - 1
    info = wait_running(tenant, instance_id)
    assert (info.instanceChargeType, info.bandwidthOutMbps) == ("POSTPAID", 20)
    assert held_addresses(stack, instance_id) >= 2

    call(tenant, V2022, "ModifyInstanceBandwidth", instanceId=instance_id, bandwidthOutMbps=200)

    def enabled() -> bool:
        status = call(tenant, V2022, "DescribeInstanceInternetStatus", instanceId=instance_id)
        return bool(
            status.modifiedBandwidthStatus == "Enable" and status.internetMaxBandwidthOut == 200
        )

    wait_until(enabled)
    destroy(tenant, instance_id)
    destroy(tenant, instance_id)  # a second destroy (refresh after a crash): tolerated
    assert read(tenant, instance_id).instanceStatus == "RECYCLE"
    call(tenant, V2022, "ReleaseInstances", instanceIds=[instance_id])  # force_delete
    assert read(tenant, instance_id) is None
    assert stock(stack) == stock_before
    assert held_addresses(stack, instance_id) == 0
    assert tenant.orders()  # the books stay


def test_prepaid_round_trip(make_stack: StackFactory, tmp_path: Path) -> None:
    stack = simulated(make_stack, tmp_path)
    tenant = stack.tenant(balance="2000.00")
    instance_id = create(
        tenant,
        instanceChargeType="PREPAID",
        instanceChargePrepaid={"period": 1},
        internetChargeType="ByTrafficPackage",
        trafficPackageSize=1,
    )
    info = wait_running(tenant, instance_id)
    assert info.trafficPackageSize is not None  # the provider cannot read a null size
    assert info.autoRenew is True
    paid = tenant.balance()
    destroy(tenant, instance_id)
    after = read(tenant, instance_id)
    assert (after.instanceStatus, after.autoRenew) == ("RUNNING", False)  # spec Q8
    destroy(tenant, instance_id)  # again: still fine
    # the period runs out: no renewal, RECYCLE, and a day later the worker releases it
    now = parse_iso(stack.admin.json("clock", "show")["now"])
    advance(stack, f"{parse_iso(after.expiredTime) - now + 60}s")
    wait_until(lambda: read(tenant, instance_id).instanceStatus == "RECYCLE")
    assert tenant.balance() == paid  # not renewed
    advance(stack, "25h")
    wait_until(lambda: read(tenant, instance_id) is None)


def test_a_failed_creation_fails_the_apply(stack: Stack) -> None:
    tenant = stack.tenant(balance="2000.00")
    stack.admin.run("fault", "add", "--tenant", tenant.tenant_id, "--operation", "CREATE")
    before = tenant.balance()
    instance_id = create(tenant, instanceChargeType="PREPAID", instanceChargePrepaid={"period": 1})
    assert tenant.balance() < before  # charged at creation
    with pytest.raises(CreationFailed, match="CREATE_FAILED"):
        wait_running(tenant, instance_id)
    destroy(tenant, instance_id)  # the tainted resource is destroyed: refunded, gone
    assert read(tenant, instance_id) is None
    assert tenant.balance() == before
    assert [Decimal(str(e["amount"])) > 0 for e in tenant.ledger() if e["kind"] == "REFUND"] == [
        True
    ]


def test_paging_never_fails_under_concurrent_requests(stack: Stack) -> None:
    tenant = stack.tenant(balance="100000.00")
    created = call(
        tenant,
        V2022,
        "CreateInstances",
        zoneId="SEL-A",
        instanceTypeId="M6C",
        instanceChargeType="POSTPAID",
        internetChargeType="ByBandwidth",
        instanceName="page-[1,3]",
        amount=24,
    )
    ids = sorted(created.instanceIdSet)
    wait_until(lambda: all(read(tenant, i).instanceStatus == "RUNNING" for i in ids[:3]))

    def page(number: int) -> tuple[int, list[str]]:
        client = tenant.client(V2022)  # one client per thread, as the provider's goroutines
        request = models.DescribeInstancesRequest()
        request.pageNum, request.pageSize = number, 5
        answer = client.DescribeInstances(request)
        return answer.totalCount, [i.instanceId for i in answer.dataSet]

    def churn(round_: int) -> str | None:  # other requests meanwhile: reboots of a few
        target = ids[round_ % len(ids)]
        try:
            call(tenant, V2022, "RebootInstances", instanceIds=[target])
        except ZenlayerCloudSdkException as exc:  # still BOOTING from the previous round
            return str(exc.code)
        return None

    with ThreadPoolExecutor(8) as pool:
        for round_ in range(4):
            noise = [pool.submit(churn, round_ * 3 + k) for k in range(3)]
            pages = list(pool.map(page, range(1, 6)))
            for future in noise:
                assert future.result() in (None, "OPERATION_DENIED_INSTANCE_STATUS")
            assert {total for total, _ in pages} == {24}
            seen = [instance_id for _, chunk in pages for instance_id in chunk]
            assert sorted(seen) == ids  # every instance once, in pages of 5 (the last has 4)
