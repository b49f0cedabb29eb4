"""DescribeInstancesMonitorHealth (both versions) and, for 2026-02-01 only,
DescribeInstanceIpmiUrl and ResetInstanceIpmiPassword, through the SDK."""

from __future__ import annotations

import pytest
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import ZenlayerCloudSdkException

from tests.harness import V2022, V2026, Tenant, wait_until
from tests.test_lifecycle import call, status_of


def failed_creation(tenant: Tenant) -> str:
    tenant.stack.admin.run("fault", "add", "--tenant", tenant.tenant_id, "--operation", "CREATE")
    instance_id = tenant.instance(status="CREATING")
    wait_until(lambda: status_of(tenant, instance_id) == "CREATE_FAILED")
    return instance_id


def refused(tenant: Tenant, version: str, action: str, code: str, **fields: object) -> str:
    with pytest.raises(ZenlayerCloudSdkException) as caught:
        call(tenant, version, action, **fields)
    assert caught.value.code == code, caught.value.message
    return str(caught.value.message)


def test_monitor_health_follows_the_status(tenant: Tenant, version: str) -> None:
    running = tenant.instance()
    stopped = tenant.instance(status="STOPPED")
    failed = failed_creation(tenant)
    ids = [running, stopped, failed]
    health = call(tenant, version, "DescribeInstancesMonitorHealth", instanceIds=ids)
    by_id = {h.instanceId: h for h in health.monitorHealthList}
    assert list(by_id) == ids
    up = by_id[running]
    assert {up.cpuStatus, up.diskStatus, up.memoryStatus, up.psuStatus, up.fanStatus} == {"NORMAL"}
    assert (up.ipmiPing, up.ipmiStatus, up.wanPortStatus) == ("NORMAL", "NORMAL", "NORMAL")
    assert (up.serverModel, up.cpuTemp, up.tempUnit) == ("M6C", None, None)
    off = by_id[stopped]
    assert (off.ipmiStatus, off.wanPortStatus) == ("NORMAL", "UNKNOWN")
    assert by_id[failed].cpuStatus == "UNKNOWN"
    message = refused(
        tenant,
        version,
        "DescribeInstancesMonitorHealth",
        "INVALID_INSTANCE_NOT_FOUND",
        instanceIds=[running, "100000000000000000"],
    )
    assert "100000000000000000" in message


def test_ipmi_url_and_password_exist_in_2026_only(tenant: Tenant) -> None:
    instance_id = tenant.instance()
    url = call(tenant, V2026, "DescribeInstanceIpmiUrl", instanceId=instance_id).url
    assert url == f"https://ipmi.SEL-A.zbmc.invalid/console/{instance_id}"
    call(tenant, V2026, "ResetInstanceIpmiPassword", instanceId=instance_id, password="Ipmi-Pass1")
    key = (tenant.access_key_id, tenant.access_key_password)
    for action, body in (
        ("DescribeInstanceIpmiUrl", {"instanceId": instance_id}),
        ("ResetInstanceIpmiPassword", {"instanceId": instance_id, "password": "Ipmi-Pass1"}),
    ):
        old = tenant.stack.raw(body, action=action, version=V2022, key=key)
        assert (old.status_code, old.json()["code"]) == (400, "INVALID_ACTION")
        default = tenant.stack.raw(body, action=action, version=None, key=key)  # = 2022-11-20
        assert default.json()["code"] == "INVALID_ACTION"


def test_ipmi_password_rules_and_statuses(tenant: Tenant) -> None:
    instance_id = tenant.instance(instance_charge_type="POSTPAID")
    refused(
        tenant,
        V2026,
        "ResetInstanceIpmiPassword",
        "INVALID_PARAMETER_VALUE_PASSWORD_MALFORMED",
        instanceId=instance_id,
        password="weak",
    )
    refused(tenant, V2026, "ResetInstanceIpmiPassword", "MISSING_PARAMETER", instanceId=instance_id)
    refused(
        tenant,
        V2026,
        "DescribeInstanceIpmiUrl",
        "OPERATION_DENIED_INSTANCE_STATUS",
        instanceId=failed_creation(tenant),
    )
    call(tenant, V2026, "TerminateInstance", instanceId=instance_id)
    refused(
        tenant,
        V2026,
        "DescribeInstanceIpmiUrl",
        "OPERATION_DENIED_INSTANCE_RECYCLED",
        instanceId=instance_id,
    )
    refused(
        tenant,
        V2026,
        "ResetInstanceIpmiPassword",
        "OPERATION_DENIED_INSTANCE_RECYCLED",
        instanceId=instance_id,
        password="Ipmi-Pass1",
    )
