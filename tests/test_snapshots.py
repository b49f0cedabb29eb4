"""Snapshots, restore and reset (zbmc.snapshots) through ``zbmc admin`` and /admin/v1, against a
live server on both backends: state and clock come back whole, a damaged snapshot or a worker
mid-tick changes nothing, and the SDK sees the restored state."""

from __future__ import annotations

import stat
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
    ZenlayerCloudSdkException,
)

from tests.conftest import StackFactory
from tests.harness import V2026, Stack, Tenant, wait_until
from tests.test_bandwidth import call
from zbmc.clock import parse_iso

TOKEN = "snapshot-admin-token"


def admin(stack: Stack, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(
        method,
        f"{stack.scheme}://{stack.host}/admin/v1/{path}",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
        verify=stack.verify,
    )


def bandwidth(tenant: Tenant, instance_id: str) -> int:
    status = call(tenant, V2026, "DescribeInstanceInternetStatus", instanceId=instance_id)
    return int(status.internetMaxBandwidthOut)


def billing_now(stack: Stack) -> int:
    return parse_iso(stack.admin.json("clock", "show")["now"])


def test_restore_brings_back_data_and_clock(make_stack: StackFactory) -> None:
    stack = make_stack()
    stack.admin.run("clock", "simulate")
    tenant = stack.tenant(balance="2000.00")
    instance_id = tenant.instance(charge=True)
    before = (tenant.balance(), tenant.ledger(), tenant.orders())
    saved = stack.admin.json("snapshot", "save", "base")
    assert saved["name"] == "base"
    saved_time = parse_iso(saved["billingTime"])

    call(tenant, V2026, "ModifyInstanceBandwidth", instanceId=instance_id, bandwidthOutMbps=150)
    wait_until(lambda: bandwidth(tenant, instance_id) == 150)
    stack.admin.run("tenant", "topup", tenant.tenant_id, "25")
    stack.admin.run("clock", "advance", "40d")
    other = stack.tenant(name="later")
    assert tenant.balance() != before[0]

    restored = stack.admin.json("snapshot", "restore", "base")
    assert restored == saved
    assert (tenant.balance(), tenant.ledger(), tenant.orders()) == before
    assert bandwidth(tenant, instance_id) == 100  # the server answers from the restored rows
    # the billing clock is back where it was (plus the seconds this test took)
    assert 0 <= billing_now(stack) - saved_time < 60
    with pytest.raises(ZenlayerCloudSdkException) as caught:
        call(other, V2026, "DescribeZones")  # that tenant's key came after the snapshot
    assert caught.value.code.startswith("AUTHFAILURE")
    # ledger ids continue after the restored ones: a new entry sorts last
    stack.admin.run("tenant", "topup", tenant.tenant_id, "1")
    assert tenant.ledger()[-1]["amount"] == Decimal("1")
    assert [s["name"] for s in stack.admin.json("snapshot", "list")] == ["base"]
    stack.admin.run("snapshot", "delete", "base")
    assert stack.admin.json("snapshot", "list") == []


def test_admin_http_snapshots_and_reset(make_stack: StackFactory) -> None:
    stack = make_stack(ZBMC_ADMIN_TOKEN=TOKEN)
    reset = admin(stack, "POST", "reset", {"demo": True})
    assert reset.status_code == 200, reset.text
    key = reset.json()["demo"]
    demo = Tenant(key["tenantId"], key["accessKeyId"], key["accessKeyPassword"], stack)
    instances = call(demo, V2026, "DescribeInstances").dataSet
    assert len(instances) == 6
    web = next(i for i in instances if i.instanceName == "web-prepaid-bw")

    saved = admin(stack, "POST", "snapshots", {"name": "demo-start"})
    assert saved.status_code == 200, saved.text
    listed = admin(stack, "GET", "snapshots").json()["snapshots"]
    assert [s["name"] for s in listed] == ["demo-start"]
    assert listed[0]["clockMode"] == "simulated"

    for _round in range(3):  # what a test suite does between tests
        call(
            demo, V2026, "ModifyInstanceBandwidth", instanceId=web.instanceId, bandwidthOutMbps=300
        )
        wait_until(lambda: bandwidth(demo, web.instanceId) == 300)
        assert demo.balance() < Decimal("10000")
        restored = admin(stack, "POST", "snapshots/demo-start/restore")
        assert restored.status_code == 200, restored.text
        assert bandwidth(demo, web.instanceId) == 100
        assert demo.balance() == Decimal("10000.00")
        assert demo.orders() == []

    empty = admin(stack, "POST", "reset", {})
    assert empty.json() == {"demo": None}
    assert stack.admin.json("tenant", "list") == []
    with pytest.raises(ZenlayerCloudSdkException):
        call(demo, V2026, "DescribeZones")
    assert stack.admin.json("clock", "show")["mode"] == "system"

    missing = admin(stack, "POST", "snapshots/nope/restore")
    assert missing.status_code == 404
    assert missing.json()["code"] == "OPERATION_FAILED_RESOURCE_NOT_FOUND"
    bad = admin(stack, "POST", "snapshots", {"name": "../etc"})
    assert bad.status_code == 400
    assert bad.json()["code"] == "INVALID_PARAMETER"
    assert admin(stack, "DELETE", "snapshots/demo-start").json() == {"deleted": "demo-start"}
    assert admin(stack, "GET", "snapshots").json() == {"snapshots": []}
    unauthorised = requests.get(f"http://{stack.host}/admin/v1/snapshots", timeout=10)
    assert unauthorised.status_code == 401


def _damage(stack: Stack, name: str) -> None:
    """Drop one table from the snapshot, so a restore fails half-way through its inserts."""
    if stack.backend == "sqlite":
        import sqlite3

        path = Path(stack.database_url.removeprefix("sqlite:///")).parent / "snapshots"
        with sqlite3.connect(path / f"{name}.sqlite3") as db:
            db.execute("DROP TABLE ledger")
        return
    engine = stack.engine()
    with engine.begin() as conn:
        conn.execute(text(f'DROP TABLE "zbmc_snapshot_{name}".ledger'))
    engine.dispose()


def test_failed_restore_changes_nothing(make_stack: StackFactory) -> None:
    stack = make_stack()
    tenant = stack.tenant()
    stack.admin.run("snapshot", "save", "broken")
    _damage(stack, "broken")
    later = stack.tenant(name="after")
    state = (stack.admin.json("tenant", "list"), tenant.ledger(), later.ledger())
    failure = stack.admin.fails("snapshot", "restore", "broken")
    assert "could not be restored, nothing changed" in failure
    assert (stack.admin.json("tenant", "list"), tenant.ledger(), later.ledger()) == state
    assert call(later, V2026, "DescribeZones").zoneSet


def tick_in_driver(
    make_stack: StackFactory, tmp_path: Path, then: str
) -> tuple[Stack, Tenant, str]:
    """A stack whose network driver (called inside the worker tick's transaction) touches
    ``started`` and then runs the shell line ``then``; a snapshot "before" is saved, and a
    bandwidth change has started that tick when this returns."""
    driver = tmp_path / "driver.sh"
    driver.write_text(f"#!/bin/sh\ntouch {tmp_path}/started\n{then}\n")
    driver.chmod(driver.stat().st_mode | stat.S_IXUSR)
    stack = make_stack(
        ZBMC_ADMIN_TOKEN=TOKEN, ZBMC_DRIVER="command", ZBMC_DRIVER_COMMAND=str(driver)
    )
    tenant = stack.tenant()
    instance_id = tenant.instance()
    assert admin(stack, "POST", "snapshots", {"name": "before"}).status_code == 200
    call(tenant, V2026, "ModifyInstanceBandwidth", instanceId=instance_id, bandwidthOutMbps=150)
    wait_until((tmp_path / "started").exists, interval=0.005)
    return stack, tenant, instance_id


def test_restore_is_refused_while_a_worker_tick_runs(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    """The driver holds the tick open until the test lets it go: a restore meanwhile is
    refused and changes nothing."""
    stack, tenant, instance_id = tick_in_driver(
        make_stack, tmp_path, f"while [ ! -f {tmp_path}/release ]; do sleep 0.02; done"
    )
    refused = admin(stack, "POST", "snapshots/before/restore")
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "OPERATION_DENIED_WORKER_TICK_IN_PROGRESS"
    cli = stack.admin.fails("snapshot", "restore", "before")
    assert "worker tick" in cli
    assert admin(stack, "POST", "reset", {}).status_code == 409

    (tmp_path / "release").touch()
    wait_until(lambda: bandwidth(tenant, instance_id) == 150)  # the tick finished its work
    assert [o["state"] for o in tenant.orders()] == ["ENABLED"]
    restored = wait_until(
        lambda: (r := admin(stack, "POST", "snapshots/before/restore")).status_code == 200 and r,
        timeout=20,
    )
    assert restored.json()["name"] == "before"
    assert bandwidth(tenant, instance_id) == 100
    assert tenant.orders() == []


def test_restore_waits_for_a_short_worker_tick(make_stack: StackFactory, tmp_path: Path) -> None:
    """A tick shorter than BUSY_WAIT (the driver takes 0.3 s inside it) makes a restore wait,
    not fail: on PostgreSQL it used to be refused at once, and a test suite restoring between
    tests failed by bad luck (CI, stop 18)."""
    stack, tenant, instance_id = tick_in_driver(make_stack, tmp_path, "sleep 0.3")
    restored = admin(stack, "POST", "snapshots/before/restore")
    assert restored.status_code == 200, restored.text
    assert bandwidth(tenant, instance_id) == 100
    assert tenant.orders() == []


def test_snapshot_names_and_schema_revision(make_stack: StackFactory) -> None:
    stack = make_stack(start=False)
    assert "use 1 to 40 letters" in stack.admin.fails("snapshot", "save", "a b")
    assert "does not exist" in stack.admin.fails("snapshot", "restore", "never")
    stack.admin.run("snapshot", "save", "old")
    engine = stack.engine()
    schema = "" if stack.backend == "sqlite" else '"zbmc_snapshot_old".'
    if stack.backend == "sqlite":
        import sqlite3

        path = Path(stack.database_url.removeprefix("sqlite:///")).parent / "snapshots"
        with sqlite3.connect(path / "old.sqlite3") as db:
            db.execute("UPDATE zbmc_snapshot_info SET revision = '0001'")
    else:
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE {schema}zbmc_snapshot_info SET revision = '0001'"))
    engine.dispose()
    assert "taken at schema revision 0001" in stack.admin.fails("snapshot", "restore", "old")


def test_reset_asks_before_deleting(make_stack: StackFactory) -> None:
    stack = make_stack(start=False)
    stack.tenant()
    from click.testing import CliRunner

    from zbmc.cli.main import main as cli_main

    declined = CliRunner().invoke(cli_main, ["admin", "reset"], input="n\n", env=stack.admin.env)
    assert declined.exit_code == 1
    assert len(stack.admin.json("tenant", "list")) == 1
    stack.admin.run("reset", "--yes")
    assert stack.admin.json("tenant", "list") == []
