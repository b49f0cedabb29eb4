"""Concurrent requests: paid upgrades racing for one balance, and changes racing at one instance.

Every thread has its own SDK client and all of them start on one barrier, so the server sees the
requests at (nearly) the same moment. Whatever the interleaving, the balance never goes below
zero, every accepted request is charged exactly once, nothing is lost and no request gets a 500.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from tests import invariants
from tests.conftest import StackFactory
from tests.harness import V2022, V2026, Stack, Tenant, wait_until

THREADS = 32
INSUFFICIENT = "OPERATION_DENIED_BALANCE_INSUFFICIENT"
BANDWIDTH_PROCESSING = "OPERATION_FAILED_INSTANCE_BANDWIDTH_PROCESSING"
PACKAGE_PROCESSING = "OPERATION_DENIED_INSTANCE_TRAFFIC_PACKAGE_PROCESSING"
PLAN_EXISTS = "OPERATION_FAILED_INSTANCE_EXIST_PLAN_TRAFFIC_PACKAGE"


@dataclass(frozen=True)
class Outcome:
    code: str | None  # None: accepted
    order_number: str | None = None


def race(tenant: Tenant, calls: list[Callable[[Any], Any]]) -> list[Outcome]:
    """Run each call in its own thread with its own client, all released at once."""
    from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
        ZenlayerCloudSdkException,
    )

    barrier = threading.Barrier(len(calls))
    outcomes: list[Outcome | None] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            client = tenant.client(V2022 if index % 4 == 0 else V2026)
            barrier.wait(timeout=60)
            try:
                response = calls[index](client)
            except ZenlayerCloudSdkException as exc:
                outcomes[index] = Outcome(exc.code)
                return
            outcomes[index] = Outcome(None, response.orderNumber)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert all(o is not None for o in outcomes), outcomes
    return [o for o in outcomes if o is not None]


def modify_bandwidth(instance_id: str, mbps: int) -> Callable[[Any], Any]:
    from zenlayercloud.bmc.v20260201 import models

    def call(client: Any) -> Any:
        request = models.ModifyInstanceBandwidthRequest()
        request.instanceId, request.bandwidthOutMbps = instance_id, mbps
        return client.ModifyInstanceBandwidth(request)

    return call


def modify_package(instance_id: str, size: Decimal) -> Callable[[Any], Any]:
    from zenlayercloud.bmc.v20260201 import models

    def call(client: Any) -> Any:
        request = models.ModifyInstanceTrafficPackageRequest()
        request.instanceId, request.trafficPackageSize = instance_id, float(size)
        return client.ModifyInstanceTrafficPackage(request)

    return call


def upgrade_price(tenant: Tenant, instance_id: str, mbps: int) -> Decimal:
    from zenlayercloud.bmc.v20260201 import models

    request = models.InquiryPriceInstanceBandwidthRequest()
    request.instanceId, request.bandwidthOutMbps = instance_id, mbps
    items = tenant.client().InquiryPriceInstanceBandwidth(request).bandwidthPrice
    return Decimal(str(items[0].discountPrice))


def raw_code(stack: Stack, tenant: Tenant, action: str, body: dict[str, Any]) -> tuple[int, str]:
    """The same request once more, raw, to see the HTTP status as well."""
    key = (tenant.access_key_id, tenant.access_key_password)
    response = stack.raw(body, action=action, key=key)
    return response.status_code, str(response.json().get("code"))


def assert_no_internal_errors(stack: Stack) -> None:
    assert stack.log_path is not None
    log = stack.log_path.read_text(errors="replace")
    assert "internal error" not in log, log[-5000:]
    assert "Traceback" not in log, log[-5000:]


def check_orders_and_statuses(tenant: Tenant, returned: dict[str, str | None]) -> None:
    invariants.check_snapshot(invariants.snapshot_of(tenant))
    entries = tenant.ledger()
    invariants.check_admin_money(tenant, entries)
    listed = invariants.check_admin_orders(tenant, returned, entries)
    client = tenant.client()
    for instance_id in {o["instanceId"] for o in listed.values()}:
        invariants.check_internet_status(client, instance_id, listed.values())


def test_paid_upgrades_racing_for_one_balance_never_overdraw(stack: Stack) -> None:
    tenant = stack.tenant(balance="0")
    ids = [tenant.instance(bandwidth=100) for _ in range(THREADS)]
    prices = {upgrade_price(tenant, instance_id, 200) for instance_id in ids}
    assert len(prices) == 1, f"instances created moments apart should cost the same: {prices}"
    price = prices.pop()
    assert price > 0
    initial = (price * Decimal("10.5")).quantize(Decimal("0.01"), ROUND_DOWN)
    stack.admin.run("tenant", "topup", tenant.tenant_id, str(initial))
    affordable = int(initial // price)

    outcomes = race(tenant, [modify_bandwidth(i, 200) for i in ids])

    accepted = [o for o in outcomes if o.code is None]
    assert Counter(o.code for o in outcomes if o.code is not None) == {
        INSUFFICIENT: THREADS - affordable
    }
    assert len(accepted) == affordable
    numbers = [str(o.order_number) for o in accepted if o.order_number]
    assert len(numbers) == affordable, accepted
    assert len(set(numbers)) == affordable
    balance = tenant.balance()
    assert balance == initial - affordable * price
    assert balance >= 0
    charges = [e for e in tenant.ledger() if e["kind"] == invariants.CHARGE]
    assert sorted(e["orderNumber"] for e in charges) == sorted(numbers)
    assert all(-Decimal(str(e["amount"])) == price for e in charges), charges

    # accepted upgrades finish (Processing -> Enable); refused instances keep their bandwidth
    client = tenant.client()
    upgraded = {o["instanceId"] for o in tenant.orders() if o["orderNumber"] in set(numbers)}
    assert len(upgraded) == affordable
    for instance_id in ids:
        target = 200 if instance_id in upgraded else 100

        def settled(instance_id: str = instance_id, target: int = target) -> bool:
            status = invariants.describe_internet_status(client, instance_id)
            return bool(
                status.modifiedBandwidthStatus == "Enable"
                and status.internetMaxBandwidthOut == target
            )

        wait_until(settled)
    check_orders_and_statuses(tenant, {str(n): "ENABLED" for n in numbers})
    status, code = raw_code(
        stack,
        tenant,
        "ModifyInstanceBandwidth",
        {"instanceId": next(i for i in ids if i not in upgraded), "bandwidthOutMbps": 200},
    )
    assert (status, code) == (403, INSUFFICIENT)


def _one_winner(outcomes: list[Outcome]) -> Outcome:
    accepted = [o for o in outcomes if o.code is None]
    assert len(accepted) == 1, outcomes
    assert accepted[0].order_number, accepted
    return accepted[0]


def test_bandwidth_changes_racing_at_one_instance_accept_exactly_one(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(ZBMC_DRIVER_DELAY_SECONDS="3600")  # the winner stays Processing
    tenant = stack.tenant(balance="100000")
    instance_id = tenant.instance(bandwidth=100)
    # half upgrades (charged now, Processing), half downgrades (WaitToEnable)
    targets = [300 + i if i % 2 else 90 - i for i in range(THREADS)]

    outcomes = race(tenant, [modify_bandwidth(instance_id, t) for t in targets])

    winner = _one_winner(outcomes)
    target = targets[outcomes.index(winner)]
    assert {o.code for o in outcomes if o is not winner} == {BANDWIDTH_PROCESSING}
    orders = tenant.orders()
    assert [(o["orderNumber"], o["toValue"]) for o in orders] == [(winner.order_number, target)]
    upgrade = target > 100
    expected_state = invariants.PROCESSING if upgrade else invariants.WAIT_TO_ENABLE
    assert orders[0]["state"] == expected_state
    status = invariants.describe_internet_status(tenant.client(), instance_id)
    assert status.modifiedInternetMaxBandwidthOut == target
    assert status.internetMaxBandwidthOut == 100
    charges = [e for e in tenant.ledger() if e["kind"] == invariants.CHARGE]
    assert len(charges) == (1 if upgrade else 0)
    assert tenant.balance() == Decimal("100000") - Decimal(str(orders[0]["amount"]))
    check_orders_and_statuses(tenant, {str(winner.order_number): expected_state})
    assert raw_code(
        stack,
        tenant,
        "ModifyInstanceBandwidth",
        {"instanceId": instance_id, "bandwidthOutMbps": 5000},
    ) == (403, BANDWIDTH_PROCESSING)
    assert_no_internal_errors(stack)


def test_package_changes_racing_at_one_instance_accept_exactly_one(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(ZBMC_DRIVER_DELAY_SECONDS="3600")
    tenant = stack.tenant(balance="100000")
    instance_id = tenant.instance(internet_charge_type="ByTrafficPackage", traffic_package="2")
    sizes = [
        Decimal("2.5") + Decimal("0.05") * i
        if i % 2
        else Decimal("1.95") - Decimal("0.05") * (i // 2)
        for i in range(THREADS)
    ]

    outcomes = race(tenant, [modify_package(instance_id, s) for s in sizes])

    winner = _one_winner(outcomes)
    size = sizes[outcomes.index(winner)]
    upgrade = size > 2
    loser_code = PACKAGE_PROCESSING if upgrade else PLAN_EXISTS
    assert {o.code for o in outcomes if o is not winner} == {loser_code}
    orders = tenant.orders()
    assert [(o["orderNumber"], o["toValue"]) for o in orders] == [
        (winner.order_number, int(size * 1000))
    ]
    expected_state = invariants.PROCESSING if upgrade else invariants.WAIT_TO_ENABLE
    assert orders[0]["state"] == expected_state
    status = invariants.describe_internet_status(tenant.client(), instance_id)
    assert Decimal(str(status.modifiedTrafficPackageSize)) == size
    assert Decimal(str(status.trafficPackageSize)) == 2
    assert tenant.balance() == Decimal("100000") - Decimal(str(orders[0]["amount"]))
    check_orders_and_statuses(tenant, {str(winner.order_number): expected_state})
    assert raw_code(
        stack,
        tenant,
        "ModifyInstanceTrafficPackage",
        {"instanceId": instance_id, "trafficPackageSize": 3},
    ) == (403, loser_code)
    assert_no_internal_errors(stack)


def test_bandwidth_and_package_changes_at_one_instance_lose_neither(
    make_stack: StackFactory,
) -> None:
    """Both kinds of change race at one instance: one of each wins, neither overwrites the other."""
    stack = make_stack(ZBMC_DRIVER_DELAY_SECONDS="3600")
    tenant = stack.tenant(balance="100000")
    instance_id = tenant.instance(internet_charge_type="ByTrafficPackage", traffic_package="1")
    half = THREADS // 2
    calls = [modify_bandwidth(instance_id, 200 + i) for i in range(half)]
    calls += [
        modify_package(instance_id, Decimal("1.5") + Decimal("0.05") * i) for i in range(half)
    ]

    outcomes = race(tenant, calls)

    bandwidth_winner = _one_winner(outcomes[:half])
    package_winner = _one_winner(outcomes[half:])
    assert {o.code for o in outcomes[:half] if o is not bandwidth_winner} == {BANDWIDTH_PROCESSING}
    assert {o.code for o in outcomes[half:] if o is not package_winner} == {PACKAGE_PROCESSING}
    mbps = 200 + outcomes[:half].index(bandwidth_winner)
    size = Decimal("1.5") + Decimal("0.05") * outcomes[half:].index(package_winner)
    status = invariants.describe_internet_status(tenant.client(), instance_id)
    assert status.modifiedBandwidthStatus == "Processing"
    assert status.modifiedInternetMaxBandwidthOut == mbps
    assert status.modifiedTrafficPackageStatus == "Processing"
    assert Decimal(str(status.modifiedTrafficPackageSize)) == size
    check_orders_and_statuses(
        tenant,
        {
            str(bandwidth_winner.order_number): invariants.PROCESSING,
            str(package_winner.order_number): invariants.PROCESSING,
        },
    )
    assert_no_internal_errors(stack)
