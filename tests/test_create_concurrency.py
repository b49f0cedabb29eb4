"""32 concurrent CreateInstances against a balance that covers exactly 5 and, separately, a stock
of exactly 5: exactly 5 are created, each charged once, and neither the balance nor the stock
ever goes below zero; on SQLite and PostgreSQL, in one server process and across two."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import StackFactory
from tests.harness import V2022, V2026, Stack, Tenant, wait_until
from tests.test_create import SMALL, qty, sdk, small_stack
from zbmc.db.tables import addresses, instances, ledger, orders, tenants

THREADS = 32
INSUFFICIENT = "OPERATION_DENIED_BALANCE_INSUFFICIENT"
SOLD_OUT = "RESOURCES_SOLDOUT_INSTANCE_TYPE"
PRICE = Decimal("100.00")  # T1 at 10 Mbps (all free) for one month


def race(tenant: Tenant) -> list[tuple[str | None, list[str]]]:
    """THREADS clients, released together, each creating one instance: (error code, ids)."""
    from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
        ZenlayerCloudSdkException,
    )

    barrier = threading.Barrier(THREADS)
    outcomes: list[tuple[str | None, list[str]] | None] = [None] * THREADS
    failures: list[BaseException] = []

    def run(index: int) -> None:
        version = V2022 if index % 4 == 0 else V2026
        try:
            client = tenant.client(version)
            # A name of its own: identical signed writes within one second are one request to
            # the replay guard (docs/security.md), and these are 32 different purchases.
            request = sdk(version, "CreateInstancesRequest", **SMALL, instanceName=f"race-{index}")
            barrier.wait(timeout=60)
            try:
                outcomes[index] = (None, list(client.CreateInstances(request).instanceIdSet))
            except ZenlayerCloudSdkException as exc:
                outcomes[index] = (str(exc.code), [])
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not failures, failures
    return [o for o in outcomes if o is not None]


def check_books(stack: Stack, tenant: Tenant, created: list[str], start: Decimal) -> None:
    """Each created instance charged once, in one CREATE order each; the balance is the ledger's
    sum and never negative; no address held twice; nothing else was created."""
    engine = stack.engine()
    try:
        with engine.begin() as conn:
            balance = conn.execute(
                select(tenants.c.balance).where(tenants.c.tenant_id == tenant.tenant_id)
            ).scalar_one()
            entries = list(
                conn.execute(select(ledger).where(ledger.c.tenant_id == tenant.tenant_id))
            )
            made = list(
                conn.execute(select(instances).where(instances.c.tenant_id == tenant.tenant_id))
            )
            creates = list(
                conn.execute(
                    select(orders).where(
                        orders.c.tenant_id == tenant.tenant_id, orders.c.kind == "CREATE"
                    )
                )
            )
            held = conn.execute(
                select(addresses.c.instance_id, func.count())
                .where(addresses.c.instance_id.in_(created))
                .group_by(addresses.c.instance_id)
            ).all()
    finally:
        engine.dispose()
    assert balance == sum(e.amount for e in entries) >= 0
    charges = [e for e in entries if e.kind == "CHARGE"]
    assert sorted(e.instance_id for e in charges) == sorted(created)
    assert all(-e.amount == int(PRICE * 100) for e in charges)
    assert Decimal(balance) / 100 == start - len(created) * PRICE
    assert sorted(r.instance_id for r in made) == sorted(created)
    assert len(creates) == len(created)  # amount 1 each: one order per accepted request
    assert {e.order_number for e in charges} == {o.order_number for o in creates}
    assert dict(held) == dict.fromkeys(created, 3)  # public, private, IPv6 each
    assert stack.log_path is not None
    log = stack.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-5000:]


def concurrent_balance(stack: Stack) -> None:
    tenant = stack.tenant(balance="500.00")  # exactly 5 instances
    outcomes = race(tenant)
    created = [i for code, ids in outcomes if code is None for i in ids]
    assert len(created) == 5, outcomes
    assert sorted(code for code, _ in outcomes if code is not None) == [INSUFFICIENT] * 27
    check_books(stack, tenant, created, Decimal("500.00"))
    assert qty(tenant, "TST-A", "T1") == 95


def concurrent_stock(stack: Stack) -> None:
    tenant = stack.tenant(balance="100000.00")
    outcomes = race(tenant)
    created = [i for code, ids in outcomes if code is None for i in ids]
    assert len(created) == 5, outcomes
    assert sorted(code for code, _ in outcomes if code is not None) == [SOLD_OUT] * 27
    check_books(stack, tenant, created, Decimal("100000.00"))
    assert qty(tenant, "TST-A", "T1") == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_balance_for_five(make_stack: StackFactory, workers: int) -> None:
    stack = small_stack(make_stack, qty=100, public_cidr="192.0.2.0/24", workers=workers)
    if workers == 2:
        wait_for_processes(stack, 2)
    concurrent_balance(stack)


@pytest.mark.parametrize("workers", [1, 2])
def test_stock_for_five(make_stack: StackFactory, workers: int) -> None:
    stack = small_stack(make_stack, qty=5, public_cidr="192.0.2.0/24", workers=workers)
    if workers == 2:
        wait_for_processes(stack, 2)
    concurrent_stock(stack)


def wait_for_processes(stack: Stack, count: int) -> None:
    """The harness waits for one process to answer; the other may still be importing."""
    assert stack.log_path is not None
    path = stack.log_path

    def started() -> Any:
        return path.read_text().count("Application startup complete.") >= count

    wait_until(started, timeout=120)
