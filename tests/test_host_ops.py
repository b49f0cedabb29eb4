"""Host operations carried out by the worker (zbmc.hosts) and the end of instances: statuses move
by themselves through the host driver, faults make creations and reinstalls fail, terminate and
release settle the money, the stock and the addresses. Driven through the official SDK."""

from __future__ import annotations

import os
import stat
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import ZenlayerCloudSdkException

from tests.conftest import StackFactory
from tests.harness import V2022, V2026, Stack, Tenant, next_second, wait_until
from tests.test_lifecycle import call, describe, status_of
from zbmc.clock import parse_iso
from zbmc.db.tables import instances, offerings

HOUR = 3600
TOKEN = "fault-admin-token"


def simulated(make_stack: StackFactory, tmp: Path, **env: str) -> Stack:
    stack = make_stack(start=False)
    stack.admin.run("clock", "simulate")
    stack.start(tmp / f"server-{stack.port}.log", **env)
    return stack


def advance(stack: Stack, duration: str) -> None:
    stack.admin.run("clock", "advance", duration)


def row(stack: Stack, instance_id: str) -> Any:
    engine = stack.engine()
    try:
        with engine.connect() as conn:
            return conn.execute(
                select(instances).where(instances.c.instance_id == instance_id)
            ).first()
    finally:
        engine.dispose()


def stock(stack: Stack, zone: str = "SEL-A", type_id: str = "M6C") -> int:
    engine = stack.engine()
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(offerings.c.qty).where(
                        offerings.c.zone_id == zone, offerings.c.instance_type_id == type_id
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def denied(tenant: Tenant, version: str, action: str, code: str, **fields: Any) -> None:
    with pytest.raises(ZenlayerCloudSdkException) as caught:
        call(tenant, version, action, **fields)
    assert caught.value.code == code, caught.value.message


def test_power_goes_through_booting_and_stopping(
    make_stack: StackFactory, version: str, tmp_path: Path
) -> None:
    stack = simulated(make_stack, tmp_path, ZBMC_HOST_DELAY_SECONDS="600")
    tenant = stack.tenant()
    running = tenant.instance(internet_charge_type="ByBandwidth")
    package = tenant.instance(internet_charge_type="ByTrafficPackage", status="STOPPED")
    call(tenant, version, "StopInstances", instanceIds=[running])
    call(tenant, version, "StartInstances", instanceIds=[package])
    assert (status_of(tenant, running), status_of(tenant, package)) == ("STOPPING", "BOOTING")
    # the seed rules for a transitional status
    denied(
        tenant,
        version,
        "ModifyInstanceBandwidth",
        "OPERATION_DENIED_INSTANCE_NOT_RUNNING",
        instanceId=running,
        bandwidthOutMbps=200,
    )
    denied(
        tenant,
        version,
        "ModifyInstanceTrafficPackage",
        "OPERATION_DENIED_INSTANCE_STATUS_NOT_SUPPORT",
        instanceId=package,
        trafficPackageSize=2,
    )
    advance(stack, "10m")
    wait_until(lambda: status_of(tenant, running) == "STOPPED")
    wait_until(lambda: status_of(tenant, package) == "RUNNING")
    call(tenant, version, "RebootInstances", instanceIds=[running, package])
    assert {status_of(tenant, running), status_of(tenant, package)} == {"BOOTING"}
    advance(stack, "10m")
    wait_until(lambda: {status_of(tenant, running), status_of(tenant, package)} == {"RUNNING"})


def test_creation_completes_and_postpaid_metering_starts_at_running(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = simulated(make_stack, tmp_path, ZBMC_HOST_DELAY_SECONDS="1800")
    tenant = stack.tenant()
    instance_id = tenant.instance(instance_charge_type="POSTPAID", status="CREATING")
    assert status_of(tenant, instance_id) == "CREATING"
    assert row(stack, instance_id).metered_until is None
    advance(stack, "30m")
    wait_until(lambda: status_of(tenant, instance_id) == "RUNNING")
    created = row(stack, instance_id)
    assert created.metered_until is not None
    assert created.metered_until >= created.create_time + 1800
    assert created.host_op is None


def test_faults_fail_creation_and_reinstall_once(make_stack: StackFactory, tmp_path: Path) -> None:
    stack = simulated(make_stack, tmp_path)
    tenant = stack.tenant(balance="5000.00")
    stack.admin.run("fault", "add", "--tenant", tenant.tenant_id, "--operation", "CREATE")
    assert [f["operation"] for f in stack.admin.json("fault", "list")] == ["CREATE"]
    failed = tenant.instance(status="CREATING", charge=True)
    wait_until(lambda: status_of(tenant, failed) == "CREATE_FAILED")
    assert stack.admin.json("fault", "list") == []  # consumed
    fine = tenant.instance(status="CREATING")
    wait_until(lambda: status_of(tenant, fine) == "RUNNING")

    stack.admin.run("fault", "add", "--instance", fine, "--operation", "INSTALL")
    call(tenant, V2026, "ReinstallInstance", instanceId=fine)
    wait_until(lambda: status_of(tenant, fine) == "INSTALL_FAILED")
    next_second()  # the same signed request again would be a replay (docs/security.md)
    call(tenant, V2026, "ReinstallInstance", instanceId=fine)  # allowed again (spec §14)
    wait_until(lambda: status_of(tenant, fine) == "RUNNING")

    # a failed prepaid creation is refunded in full and deleted at once
    before, stock_before = tenant.balance(), stock(stack)
    paid = -sum(Decimal(str(e["amount"])) for e in tenant.ledger() if e["instanceId"] == failed)
    assert paid > 0
    call(tenant, V2022, "TerminateInstance", instanceId=failed)
    assert describe(tenant, failed) is None
    assert tenant.balance() == before + paid
    refund = [e for e in tenant.ledger() if e["kind"] == "REFUND"]
    assert [Decimal(str(e["amount"])) for e in refund] == [paid]
    assert stock(stack) == stock_before + 1


def test_fault_commands_refuse_bad_input(stack: Stack) -> None:
    assert "exactly one" in stack.admin.fails("fault", "add", "--operation", "CREATE")
    assert "does not exist" in stack.admin.fails(
        "fault", "add", "--tenant", "nobody", "--operation", "CREATE"
    )
    tenant = stack.tenant()
    added = stack.admin.json("fault", "add", "--tenant", tenant.tenant_id, "--operation", "INSTALL")
    assert stack.admin.json("fault", "clear", "--id", str(added["faultId"])) == {"cleared": 1}


def test_faults_over_the_admin_http_endpoint(make_stack: StackFactory) -> None:
    stack = make_stack(ZBMC_ADMIN_TOKEN=TOKEN)
    tenant = stack.tenant()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    base = f"http://{stack.host}/admin/v1/faults"
    added = requests.post(
        base,
        json={"tenantId": tenant.tenant_id, "operation": "CREATE"},
        headers=headers,
        timeout=30,
    )
    assert added.status_code == 200, added.text
    listed = requests.post(f"{base}/list", json={}, headers=headers, timeout=30).json()
    assert [f["faultId"] for f in listed["faults"]] == [added.json()["faultId"]]
    bad = requests.post(base, json={"operation": "EXPLODE"}, headers=headers, timeout=30)
    assert (bad.status_code, bad.json()["code"]) == (400, "INVALID_PARAMETER")
    failed = tenant.instance(status="CREATING")
    wait_until(lambda: status_of(tenant, failed) == "CREATE_FAILED")
    cleared = requests.post(f"{base}/clear", json={}, headers=headers, timeout=30).json()
    assert cleared == {"cleared": 0}
    no_token = requests.post(f"{base}/list", json={}, timeout=30)
    assert no_token.status_code == 401


def test_postpaid_terminate_bills_the_started_hour_then_release_gives_back(
    make_stack: StackFactory, version: str, tmp_path: Path
) -> None:
    stack = simulated(make_stack, tmp_path)
    tenant = stack.tenant()
    instance_id = tenant.instance(instance_charge_type="POSTPAID", bandwidth=100)
    other = tenant.instance(instance_charge_type="POSTPAID")
    advance(stack, "150m")
    wait_until(lambda: len([e for e in tenant.ledger() if e["instanceId"] == instance_id]) == 2)
    stock_before = stock(stack)
    call(tenant, version, "TerminateInstance", instanceId=instance_id)
    charges = [e for e in tenant.ledger() if e["instanceId"] == instance_id]
    # 2 whole hours, and the third, started, hour in full
    assert len(charges) == 3
    assert charges[2]["amount"] == charges[1]["amount"]
    info = describe(tenant, instance_id)
    assert info.instanceStatus == "RECYCLE"
    denied(
        tenant, version, "TerminateInstance", "OPERATION_DENIED_INSTANCE_RECYCLED",
        instanceId=instance_id,
    )  # fmt: skip
    advance(stack, "5h")  # metering stopped: nothing more for this instance
    wait_until(lambda: len([e for e in tenant.ledger() if e["instanceId"] == other]) >= 7)
    assert len([e for e in tenant.ledger() if e["instanceId"] == instance_id]) == 3
    orders_before = tenant.orders()

    denied(
        tenant, version, "ReleaseInstances", "OPERATION_DENIED_INSTANCE_NOT_RECYCLED",
        instanceIds=[instance_id, other],
    )  # fmt: skip
    assert describe(tenant, instance_id) is not None  # all or nothing
    call(tenant, version, "ReleaseInstances", instanceIds=[instance_id])
    assert call(tenant, version, "DescribeInstances", instanceIds=[instance_id]).totalCount == 0
    assert call(tenant, version, "DescribeInstances").totalCount == 1
    assert stock(stack) == stock_before + 1
    assert tenant.orders() == orders_before  # the books stay
    assert len([e for e in tenant.ledger() if e["instanceId"] == instance_id]) == 3
    for action, fields in (
        ("TerminateInstance", {"instanceId": instance_id}),
        ("ReleaseInstances", {"instanceIds": [instance_id]}),
        ("StartInstances", {"instanceIds": [instance_id]}),
        ("DescribeInstanceInternetStatus", {"instanceId": instance_id}),
        ("ModifyInstanceBandwidth", {"instanceId": instance_id, "bandwidthOutMbps": 5}),
    ):
        denied(tenant, version, action, "INVALID_INSTANCE_NOT_FOUND", **fields)


def test_recycled_instances_are_released_after_a_day(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = simulated(make_stack, tmp_path)
    tenant = stack.tenant(balance="5000.00")
    postpaid = tenant.instance(instance_charge_type="POSTPAID")
    prepaid = tenant.instance(instance_charge_type="PREPAID", charge=True)
    call(tenant, V2026, "TerminateInstance", instanceId=postpaid)
    call(tenant, V2026, "TerminateInstance", instanceId=prepaid)
    info = describe(tenant, prepaid)
    assert (info.instanceStatus, info.autoRenew) == ("RUNNING", False)  # spec Q8
    advance(stack, "23h")
    wait_until(lambda: status_of(tenant, postpaid) == "RECYCLE")
    advance(stack, "2h")
    wait_until(lambda: describe(tenant, postpaid) is None)
    assert status_of(tenant, prepaid) == "RUNNING"
    renewals = len(tenant.orders())
    # to an hour after the period's end: not renewed, recycled at its end
    expires = parse_iso(describe(tenant, prepaid).expiredTime)
    now = parse_iso(stack.admin.json("clock", "show")["now"])
    advance(stack, f"{expires - now + HOUR}s")
    wait_until(lambda: status_of(tenant, prepaid) == "RECYCLE")
    assert len(tenant.orders()) == renewals
    advance(stack, "1d")
    wait_until(lambda: describe(tenant, prepaid) is None)


def test_the_command_host_driver_retries_with_backoff(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    calls = tmp_path / "calls.txt"
    marker = tmp_path / "failed-once"
    program = tmp_path / "host-tool"
    program.write_text(
        "#!/bin/sh\n"
        f'echo "$* $ZBMC_ZONE_ID" >> {calls}\n'
        f'if [ ! -e {marker} ]; then touch {marker}; echo "ipmi timeout" >&2; exit 3; fi\n'
    )
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    stack = simulated(
        make_stack, tmp_path, ZBMC_HOST_DRIVER="command", ZBMC_HOST_DRIVER_COMMAND=str(program)
    )
    tenant = stack.tenant()
    instance_id = tenant.instance(status="CREATING", image="img-centos", hostname="web-1")
    wait_until(lambda: row(stack, instance_id).host_op_error is not None)
    failed = row(stack, instance_id)
    assert "ipmi timeout" in failed.host_op_error
    assert (failed.status, failed.host_op_attempts) == ("CREATING", 1)
    advance(stack, "3s")  # the first retry is due 2 s later
    wait_until(lambda: status_of(tenant, instance_id) == "RUNNING")
    lines = calls.read_text().splitlines()
    assert lines == [f"create {instance_id} img-centos web-1 SEL-A"] * 2
    call(tenant, V2026, "StopInstances", instanceIds=[instance_id])
    wait_until(lambda: status_of(tenant, instance_id) == "STOPPED")
    assert calls.read_text().splitlines()[-1] == f"stop {instance_id} SEL-A"
    assert os.path.exists(marker)


def test_a_released_instance_is_not_found_by_any_action(stack: Stack, version: str) -> None:
    from tests.test_isolation import INSTANCE_ACTIONS, body_for, sdk_call
    from zbmc.registry import load_actions

    tenant = stack.tenant()
    instance_id = tenant.instance(instance_charge_type="POSTPAID")
    call(tenant, version, "TerminateInstance", instanceId=instance_id)
    call(tenant, version, "ReleaseInstances", instanceIds=[instance_id])
    assert call(tenant, version, "DescribeInstances", instanceIds=[instance_id]).totalCount == 0
    checked = []
    for action in INSTANCE_ACTIONS:
        if version not in load_actions()[("bmc", action)].versions:
            continue
        with pytest.raises(ZenlayerCloudSdkException) as caught:
            sdk_call(tenant, version, action, body_for(action, instance_id))
        assert caught.value.code == "INVALID_INSTANCE_NOT_FOUND", (action, caught.value.message)
        checked.append(action)
    assert {"TerminateInstance", "ReleaseInstances", "ReinstallInstance"} <= set(checked)


def test_a_period_ending_unpaid_recycles_an_instance_mid_operation(
    make_stack: StackFactory, version: str, tmp_path: Path
) -> None:
    """A stop still in progress when an unpaid period ends: the instance is recycled and the
    stop abandoned, as a terminated one's is. (tests/test_properties.py found the worker's tick
    recycling the instance and then finishing the stop over RECYCLE: a STOPPED instance whose
    period had ended, neither renewed nor recycled.)"""
    stack = simulated(make_stack, tmp_path, ZBMC_HOST_DELAY_SECONDS="600")
    tenant = stack.tenant(balance="10.00")  # less than a month of the instance
    instance_id = tenant.instance(bandwidth=100)
    assert describe(tenant, instance_id).instanceChargeType == "PREPAID"
    call(tenant, version, "StopInstances", instanceIds=[instance_id])
    assert status_of(tenant, instance_id) == "STOPPING"
    advance(stack, "31d")  # the period's end and the stop, due in the same tick
    wait_until(lambda: row(stack, instance_id).recycled_at is not None)
    found = row(stack, instance_id)
    assert (found.status, found.host_op, found.host_op_due) == ("RECYCLE", None, None)
    assert status_of(tenant, instance_id) == "RECYCLE"
