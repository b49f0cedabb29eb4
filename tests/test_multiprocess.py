"""`zbmc serve --workers 2`: two API processes on one database serve the SDK, share metrics,
and never overdraw a balance under concurrent paid upgrades."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import StackFactory
from tests.harness import Stack, Tenant, wait_until

UPGRADES = 40
ENV = {"ZBMC_LOG_FORMAT": "json"}


@pytest.fixture
def two_processes(make_stack: StackFactory, tmp_path: Path) -> Stack:
    stack = make_stack(start=False)
    stack.workers = 2
    stack.start(tmp_path / "server.log", **ENV)
    # The harness waits for one process; the second may still be importing.
    wait_until(lambda: len(started_pids(stack)) == 2, timeout=120)
    return stack


def log_entries(stack: Stack) -> list[dict[str, Any]]:
    assert stack.log_path is not None
    return [json.loads(line) for line in stack.log_path.read_text().splitlines() if line.strip()]


def started_pids(stack: Stack) -> set[int]:
    return {
        e["pid"]
        for e in log_entries(stack)
        if e["message"] == "Application startup complete." and e["logger"] == "uvicorn.error"
    }


def serving_pids(stack: Stack) -> set[int]:
    return {e["pid"] for e in log_entries(stack) if e["logger"] == "zbmc.access"}


def modify_bandwidth(tenant: Tenant, instance_id: str, mbps: int) -> Any:
    from zenlayercloud.bmc.v20260201 import models

    request = models.ModifyInstanceBandwidthRequest()
    request.instanceId = instance_id
    request.bandwidthOutMbps = mbps
    return tenant.client().ModifyInstanceBandwidth(request)


def test_two_processes_serve_the_sdk_and_share_metrics(two_processes: Stack) -> None:
    from zenlayercloud.bmc.v20260201 import models

    stack = two_processes
    tenant = stack.tenant()
    client = tenant.client()
    calls = 0
    # Each SDK call opens a new connection; the kernel hands connections to either process.
    while len(serving_pids(stack)) < 2 and calls < 300:
        assert {z.zoneId for z in client.DescribeZones(models.DescribeZonesRequest()).zoneSet}
        calls += 1
    assert serving_pids(stack) == started_pids(stack)
    # Any process answers a scrape with the sum over both.
    text = requests.get(f"http://{stack.host}/metrics", timeout=30).text
    line = next(
        x
        for x in text.splitlines()
        if x.startswith('zbmc_requests_total{action="DescribeZones",code="OK"}')
    )
    assert float(line.split()[-1]) == calls


def test_concurrent_paid_upgrades_never_overdraw(two_processes: Stack) -> None:
    stack = two_processes
    tenant = stack.tenant(balance="1000.00")
    instances = [tenant.instance(bandwidth=100) for _ in range(UPGRADES)]
    start = threading.Barrier(UPGRADES)
    results: dict[str, str] = {}  # instance id -> order number or error code

    def upgrade(instance_id: str) -> None:
        from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
            ZenlayerCloudSdkException,
        )

        start.wait()
        try:
            results[instance_id] = str(modify_bandwidth(tenant, instance_id, 200).orderNumber)
        except ZenlayerCloudSdkException as exc:
            results[instance_id] = str(exc.code)

    threads = [threading.Thread(target=upgrade, args=(i,)) for i in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == UPGRADES

    refused = {i for i, r in results.items() if r == "OPERATION_DENIED_BALANCE_INSUFFICIENT"}
    accepted = {i: r for i, r in results.items() if i not in refused}
    # Every call either got an order number or was refused for the balance: no other error.
    assert all(r.isdigit() for r in accepted.values()), accepted
    # The balance covers some upgrades (about 200.00 each) but far from all.
    assert 1 <= len(accepted) < UPGRADES

    balance = tenant.balance()
    assert balance >= 0
    charges = [e for e in tenant.ledger() if e["kind"] == "CHARGE"]
    # Exactly the accepted upgrades were charged, each once; the refused ones left no trace.
    assert sorted(e["orderNumber"] for e in charges) == sorted(accepted.values())
    assert {e["instanceId"] for e in charges} == set(accepted)
    spent = -sum(Decimal(str(e["amount"])) for e in charges)
    assert Decimal("1000.00") - spent == balance
    ordered = {o["instanceId"] for o in tenant.orders()}
    assert ordered == set(accepted)
