"""Issue 3 scenarios: time passes (simulated clock), the worker renews, recycles, meters.

Each test gets its own stack (database + server) because it moves that stack's clock. Amounts
come from the ledger and are checked to the cent against the demo catalogue's prices.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from zenlayercloud.bmc.v20260201 import models
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
    ZenlayerCloudSdkException,
)

from tests.conftest import StackFactory
from tests.harness import Stack, Tenant, wait_until
from zbmc.billing import orders as order_states
from zbmc.cli.main import main as cli_main
from zbmc.db.tables import instances, orders


def simulated(make_stack: StackFactory, **env: str) -> Stack:
    stack = make_stack(**env)
    stack.admin.run("clock", "simulate")
    return stack


def advance(stack: Stack, duration: str) -> None:
    stack.admin.run("clock", "advance", duration)
    now = run_worker(stack)["now"]
    # The server's own worker runs too: an order its tick had claimed (FOR UPDATE SKIP LOCKED on
    # PostgreSQL) when the run above came by is that tick's to apply; wait for its commit, as a
    # client polls for a change to show.
    wait_until(lambda: not due_orders(stack, now))


def due_orders(stack: Stack, now: int) -> list[str]:
    """The orders due by ``now`` that no worker has applied yet."""
    due = select(orders.c.order_number).where(
        orders.c.state.in_((order_states.PROCESSING, order_states.WAIT_TO_ENABLE)),
        orders.c.effective_at <= now,
    )
    engine = stack.engine()
    try:
        with engine.connect() as conn:
            return list(conn.execute(due).scalars())
    finally:
        engine.dispose()


def run_worker(stack: Stack) -> dict[str, Any]:
    """`zbmc worker --once`, as an operator would run it (the server's own worker also runs)."""
    result = CliRunner().invoke(
        cli_main,
        ["worker", "--once", "--json"],
        env={"ZBMC_DATABASE_URL": stack.database_url, **stack.env},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def status(tenant: Tenant, instance_id: str) -> Any:
    request = models.DescribeInstanceInternetStatusRequest()
    request.instanceId = instance_id
    return tenant.client().DescribeInstanceInternetStatus(request)


def describe(tenant: Tenant, instance_id: str) -> Any:
    request = models.DescribeInstancesRequest()
    request.instanceIds = [instance_id]
    return tenant.client().DescribeInstances(request).dataSet[0]


def modify_bandwidth(tenant: Tenant, instance_id: str, mbps: int) -> str:
    request = models.ModifyInstanceBandwidthRequest()
    request.instanceId, request.bandwidthOutMbps = instance_id, mbps
    return str(tenant.client().ModifyInstanceBandwidth(request).orderNumber)


def charges(tenant: Tenant, word: str) -> list[Decimal]:
    """Ledger charges (positive amounts) whose description contains ``word``."""
    return [
        -Decimal(str(entry["amount"]))
        for entry in tenant.ledger()
        if entry["kind"] == "CHARGE" and word in entry["description"]
    ]


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_prepaid_downgrade_takes_effect_at_renewal(make_stack: StackFactory) -> None:
    stack = simulated(make_stack)
    tenant = stack.tenant(balance="1000.00")
    instance_id = tenant.instance(bandwidth=100)  # SEL-A M6C, PREPAID ByBandwidth, 1 month
    expiry_before = describe(tenant, instance_id).expiredTime
    modify_bandwidth(tenant, instance_id, 50)
    current = status(tenant, instance_id)
    assert (current.modifiedBandwidthStatus, current.modifiedInternetMaxBandwidthOut) == (
        "WaitToEnable",
        50,
    )
    assert current.internetMaxBandwidthOut == 100

    advance(stack, "31d")

    after = status(tenant, instance_id)
    assert (after.modifiedBandwidthStatus, after.internetMaxBandwidthOut) == ("Enable", 50)
    assert after.modifiedInternetMaxBandwidthOut is None
    # instance 300.00 + (50 - 10 free) Mbps x 2.00, one month
    assert charges(tenant, "auto-renewal") == [Decimal("380.00")]
    assert tenant.balance() == Decimal("620.00")
    info = describe(tenant, instance_id)
    assert info.instanceStatus == "RUNNING"
    assert info.expiredTime > expiry_before


def test_cancelled_downgrade_changes_nothing_at_the_boundary(make_stack: StackFactory) -> None:
    stack = simulated(make_stack)
    tenant = stack.tenant(balance="1000.00")
    instance_id = tenant.instance(bandwidth=100)
    modify_bandwidth(tenant, instance_id, 50)
    cancel = models.CancelInstanceBandwidthDowngradeRequest()
    cancel.instanceId = instance_id
    tenant.client().CancelInstanceBandwidthDowngrade(cancel)

    advance(stack, "31d")

    after = status(tenant, instance_id)
    assert (after.modifiedBandwidthStatus, after.internetMaxBandwidthOut) == ("Enable", 100)
    assert charges(tenant, "auto-renewal") == [Decimal("480.00")]  # 300 + 90 x 2.00


def test_prepaid_upgrade_mid_period_then_full_price_at_renewal(make_stack: StackFactory) -> None:
    stack = simulated(make_stack)
    tenant = stack.tenant(balance="2000.00")
    instance_id = tenant.instance(bandwidth=100)
    advance(stack, "10d")
    order_number = modify_bandwidth(tenant, instance_id, 200)
    engine = stack.engine()
    with engine.connect() as conn:
        row = conn.execute(select(instances).where(instances.c.instance_id == instance_id)).one()
        order = conn.execute(select(orders).where(orders.c.order_number == order_number)).one()
    engine.dispose()
    remaining = Decimal(row.expired_time - order.created_at) / Decimal(
        row.expired_time - row.period_start
    )
    expected = cents(Decimal(100) * Decimal("2.00") * remaining)  # 100 extra Mbps, prorated
    assert charges(tenant, "upgrade") == [expected]
    assert Decimal("120") < expected < Decimal("150")  # about 20 of 30 days left
    wait_until(lambda: status(tenant, instance_id).modifiedBandwidthStatus == "Enable")

    advance(stack, "25d")

    assert charges(tenant, "auto-renewal") == [Decimal("680.00")]  # 300 + 190 x 2.00
    assert tenant.balance() == Decimal("2000.00") - expected - Decimal("680.00")


def test_unpaid_period_recycles_and_renew_brings_it_back(make_stack: StackFactory) -> None:
    stack = simulated(make_stack)
    tenant = stack.tenant(balance="10.00")
    instance_id = tenant.instance(bandwidth=100)

    advance(stack, "31d")
    assert describe(tenant, instance_id).instanceStatus == "RECYCLE"
    assert charges(tenant, "renewal") == []
    renew = models.RenewInstanceRequest()
    renew.instanceId = instance_id
    with pytest.raises(ZenlayerCloudSdkException) as denied:
        tenant.client().RenewInstance(renew)
    assert denied.value.code == "OPERATION_DENIED_BALANCE_INSUFFICIENT"
    assert describe(tenant, instance_id).instanceStatus == "RECYCLE"

    stack.admin.run("tenant", "topup", tenant.tenant_id, "1000")
    tenant.client().RenewInstance(renew)
    run_worker(stack)
    run_worker(stack)

    info = describe(tenant, instance_id)
    assert info.instanceStatus == "RUNNING"
    assert info.autoRenew is True
    assert charges(tenant, "renewal") == [Decimal("480.00")]
    assert tenant.balance() == Decimal("1010.00") - Decimal("480.00")
    modify_bandwidth(tenant, instance_id, 120)  # usable again


def test_renew_instance_errors_and_postpaid_noop(stack: Stack) -> None:
    tenant = stack.tenant(balance="100.00")
    postpaid = tenant.instance(zone="HKG-A", instance_charge_type="POSTPAID")
    renew = models.RenewInstanceRequest()
    renew.instanceId = postpaid
    tenant.client().RenewInstance(renew)
    assert charges(tenant, "renewal") == []
    renew.instanceId = "does-not-exist"
    with pytest.raises(ZenlayerCloudSdkException) as missing:
        tenant.client().RenewInstance(renew)
    assert missing.value.code == "INVALID_INSTANCE_NOT_FOUND"
    assert (
        stack.raw(
            {"instanceId": "does-not-exist"},
            action="RenewInstance",
            key=(tenant.access_key_id, tenant.access_key_password),
        ).status_code
        == 404
    )


def test_postpaid_usage_is_metered_per_hour(make_stack: StackFactory) -> None:
    stack = simulated(make_stack)
    tenant = stack.tenant(balance="100.00")
    instance_id = tenant.instance(zone="HKG-A", instance_charge_type="POSTPAID", bandwidth=100)
    advance(stack, "3h")
    modify_bandwidth(tenant, instance_id, 200)
    wait_until(lambda: status(tenant, instance_id).internetMaxBandwidthOut == 200)
    advance(stack, "2h")
    run_worker(stack)

    hourly = charges(tenant, "postpaid hour")
    # 0.50/h instance + (100 - 10 free) x 0.004, then + (200 - 10) x 0.004
    assert hourly == [Decimal("0.86")] * 3 + [Decimal("1.26")] * 2
    assert tenant.balance() == Decimal("100.00") - Decimal("5.10")
    periods = [(e["periodStart"], e["periodEnd"]) for e in tenant.ledger() if e["kind"] == "CHARGE"]
    assert len(set(periods)) == 5  # five distinct hours, each charged once


def test_polling_sees_processing_then_enable(make_stack: StackFactory) -> None:
    stack = make_stack(ZBMC_DRIVER_DELAY_SECONDS="2")
    tenant = stack.tenant()
    instance_id = tenant.instance(zone="HKG-A", instance_charge_type="POSTPAID", bandwidth=100)
    modify_bandwidth(tenant, instance_id, 300)
    seen: list[tuple[str, int, int | None]] = []

    def done() -> bool:
        s = status(tenant, instance_id)
        seen.append(
            (
                s.modifiedBandwidthStatus,
                s.internetMaxBandwidthOut,
                s.modifiedInternetMaxBandwidthOut,
            )
        )
        return bool(s.modifiedBandwidthStatus == "Enable")

    wait_until(done, timeout=15, interval=0.2)
    assert seen[0] == ("Processing", 100, 300)
    assert seen[-1] == ("Enable", 300, None)
    assert ("Enable", 100, None) not in seen


def test_recycled_instances_refuse_changes_with_the_seed_codes(make_stack: StackFactory) -> None:
    stack = simulated(make_stack)
    tenant = stack.tenant(balance="1.00")
    bandwidth_id = tenant.instance(bandwidth=100)
    package_id = tenant.instance(internet_charge_type="ByTrafficPackage", traffic_package="1")
    advance(stack, "31d")
    assert describe(tenant, package_id).instanceStatus == "RECYCLE"
    credentials = (tenant.access_key_id, tenant.access_key_password)

    package = models.ModifyInstanceTrafficPackageRequest()
    package.instanceId, package.trafficPackageSize = package_id, 2
    with pytest.raises(ZenlayerCloudSdkException) as refused:
        tenant.client().ModifyInstanceTrafficPackage(package)
    assert refused.value.code == "OPERATION_DENIED_INSTANCE_STATUS_NOT_SUPPORT"
    raw = stack.raw(
        {"instanceId": package_id, "trafficPackageSize": 2},
        action="ModifyInstanceTrafficPackage",
        key=credentials,
    )
    assert (raw.status_code, raw.json()["code"]) == (
        403,
        "OPERATION_DENIED_INSTANCE_STATUS_NOT_SUPPORT",
    )

    with pytest.raises(ZenlayerCloudSdkException) as not_running:
        modify_bandwidth(tenant, bandwidth_id, 200)
    assert not_running.value.code == "OPERATION_DENIED_INSTANCE_NOT_RUNNING"
    start = models.StartInstancesRequest()
    start.instanceIds = [bandwidth_id]
    with pytest.raises(ZenlayerCloudSdkException) as recycled:
        tenant.client().StartInstances(start)
    assert recycled.value.code == "OPERATION_DENIED_INSTANCE_RECYCLED"
    assert tenant.balance() == Decimal("1.00")
