"""The network driver interface, driven by a real program through the `command` driver."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy import select
from zenlayercloud.bmc.v20260201 import models

from tests.conftest import StackFactory
from tests.harness import Tenant, wait_until
from zbmc.db.tables import orders

# Fails twice, then succeeds; logs every call so the test sees what the worker asked for.
PROGRAM = """#!/bin/sh
echo "$@" >> "{log}"
count=$(cat "{counter}" 2>/dev/null || echo 0)
echo $((count + 1)) > "{counter}"
if [ "$count" -lt 2 ]; then echo "switch unreachable" >&2; exit 3; fi
"""


def status(tenant: Tenant, instance_id: str) -> tuple[str, int]:
    request = models.DescribeInstanceInternetStatusRequest()
    request.instanceId = instance_id
    answer = tenant.client().DescribeInstanceInternetStatus(request)
    return answer.modifiedBandwidthStatus, answer.internetMaxBandwidthOut


def test_driver_failures_keep_the_change_processing_until_it_succeeds(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    program = tmp_path / "driver.sh"
    log = tmp_path / "calls.log"
    program.write_text(PROGRAM.format(log=log, counter=tmp_path / "count"))
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    stack = make_stack(ZBMC_DRIVER="command", ZBMC_DRIVER_COMMAND=str(program))
    tenant = stack.tenant()
    instance_id = tenant.instance(zone="HKG-A", instance_charge_type="POSTPAID", bandwidth=100)
    request = models.ModifyInstanceBandwidthRequest()
    request.instanceId, request.bandwidthOutMbps = instance_id, 250
    order_number = tenant.client().ModifyInstanceBandwidth(request).orderNumber

    wait_until(lambda: log.exists() and len(log.read_text().splitlines()) >= 2, timeout=20)
    assert status(tenant, instance_id) == ("Processing", 100)  # failed twice: not in force
    engine = stack.engine()
    with engine.connect() as conn:
        order = conn.execute(select(orders).where(orders.c.order_number == order_number)).one()
    assert order.state == "PROCESSING"
    assert order.attempts >= 2
    assert "switch unreachable" in (order.last_error or "")

    wait_until(lambda: status(tenant, instance_id) == ("Enable", 250), timeout=30)
    with engine.connect() as conn:
        order = conn.execute(select(orders).where(orders.c.order_number == order_number)).one()
    engine.dispose()
    assert order.state == "ENABLED"
    assert log.read_text().splitlines() == [f"bandwidth {instance_id} 250"] * 3
