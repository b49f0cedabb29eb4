"""The worker as operators run it: traffic overage charged once, however many workers run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

from sqlalchemy import func, select
from zenlayercloud.bmc.v20260201 import models

from tests.conftest import StackFactory
from tests.harness import Stack
from tests.test_billing_cycles import charges, modify_bandwidth, run_worker, simulated
from zbmc.clock import parse_iso
from zbmc.db.tables import ledger, orders


def ingest(stack: Stack, samples: list[dict[str, object]], tmp: str) -> None:
    path = os.path.join(tmp, "samples.jsonl")
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(sample) + "\n" for sample in samples)
    stack.admin.run("traffic", "ingest", path)


def workers_at_once(stack: Stack, count: int) -> list[dict[str, int]]:
    """``count`` separate `zbmc worker --once` processes started together."""
    env = {**os.environ, "ZBMC_DATABASE_URL": stack.database_url}
    command = [sys.executable, "-m", "zbmc", "worker", "--once", "--json"]
    procs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(count)
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        reports.append(json.loads(out))
    return reports


def test_traffic_overage_is_charged_once(make_stack: StackFactory, tmp_path: object) -> None:
    stack = simulated(make_stack, ZBMC_RUN_WORKER="0")
    tenant = stack.tenant(balance="100.00")
    instance_id = tenant.instance(internet_charge_type="ByTrafficPackage", traffic_package="1")
    request = models.DescribeInstancesRequest()
    request.instanceIds = [instance_id]
    created = parse_iso(tenant.client().DescribeInstances(request).dataSet[0].createTime)
    # 1.2 TB outbound within the first hour of the package cycle, in twelve 5-minute samples
    samples: list[dict[str, object]] = [
        {
            "sampleId": f"{instance_id}-{k}",
            "instanceId": instance_id,
            "time": created + 300 * k,
            "inBytes": 10**9,
            "outBytes": 10**11,
        }
        for k in range(1, 13)
    ]
    ingest(stack, samples, str(tmp_path))
    ingest(stack, samples[:3], str(tmp_path))  # an agent resending: ignored
    stack.admin.run("clock", "advance", "2h")

    reports = workers_at_once(stack, 3)
    run_worker(stack)

    # 1.2 TB - 1 TB package = 200 GB at 0.01 per GB
    assert charges(tenant, "traffic overage") == [Decimal("2.00")]
    assert sum(r["charges"] for r in reports) == 1
    assert tenant.balance() == Decimal("98.00")


def test_two_workers_never_apply_an_event_twice(make_stack: StackFactory) -> None:
    stack = simulated(make_stack, ZBMC_RUN_WORKER="0")
    tenant = stack.tenant(balance="100000.00")
    prepaid = [tenant.instance(bandwidth=100) for _ in range(12)]
    postpaid = [
        tenant.instance(zone="HKG-A", instance_charge_type="POSTPAID", bandwidth=100)
        for _ in range(6)
    ]
    for instance_id in prepaid:
        modify_bandwidth(tenant, instance_id, 50)  # waits for the renewal
    for instance_id in postpaid:
        modify_bandwidth(tenant, instance_id, 200)  # Processing until a worker applies it
    stack.admin.run("clock", "advance", "31d")

    reports = workers_at_once(stack, 2)
    again = run_worker(stack)

    assert sum(r["applied"] for r in reports) == len(prepaid) + len(postpaid)
    assert sum(r["renewed"] for r in reports) == len(prepaid)
    assert again["applied"] == again["renewed"] == again["charges"] == 0
    assert charges(tenant, "auto-renewal") == [Decimal("380.00")] * len(prepaid)
    hours = charges(tenant, "postpaid hour")
    assert len(hours) == len(postpaid) * 31 * 24
    engine = stack.engine()
    with engine.connect() as conn:
        per_hour = conn.execute(
            select(ledger.c.instance_id, ledger.c.period_start, func.count())
            .where(ledger.c.tenant_id == tenant.tenant_id, ledger.c.kind == "CHARGE")
            .group_by(ledger.c.instance_id, ledger.c.period_start)
            .having(func.count() > 1)
        ).all()
        pending = conn.execute(
            select(func.count()).where(
                orders.c.tenant_id == tenant.tenant_id,
                orders.c.state.in_(["PROCESSING", "WAIT_TO_ENABLE"]),
            )
        ).scalar_one()
    engine.dispose()
    assert per_hour == []
    assert pending == 0


def test_advancing_the_system_clock_is_refused(stack: Stack) -> None:
    output = stack.admin.fails("clock", "advance", "1d")
    assert "system clock" in output
