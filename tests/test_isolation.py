"""Tenant isolation: another tenant's instance does not exist for you.

Every registered action whose request names an instance (``instanceId`` or ``instanceIds``) is
called by a stranger with the owner's instance id: it must answer 404 INVALID_INSTANCE_NOT_FOUND
and change nothing (the instance as its owner sees it, both tenants' balances, orders and ledgers).
The same request by the owner must get past the lookup, which shows the id itself is valid.
"""

from __future__ import annotations

import importlib
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import ZenlayerCloudSdkException

from tests.harness import V2026, Stack, Tenant
from zbmc.registry import load_actions


def _instance_actions() -> list[str]:
    found = []
    for (service, name), spec in load_actions().items():
        fields = spec.request.model_fields
        # DescribeInstances' instanceIds is a filter, covered by the listing test below
        if name == "DescribeInstances":
            continue
        if service == "bmc" and ("instance_id" in fields or "instance_ids" in fields):
            found.append(name)
    return sorted(found)


INSTANCE_ACTIONS = _instance_actions()


def _wire_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def extras(action: str) -> dict[str, Any]:
    """Besides the id, what a well-formed request of ``action`` carries."""
    now = time.time()
    table: dict[str, dict[str, Any]] = {
        "ModifyInstanceBandwidth": {"bandwidthOutMbps": 200},
        "InquiryPriceInstanceBandwidth": {"bandwidthOutMbps": 200},
        "ModifyInstanceTrafficPackage": {"trafficPackageSize": 2},
        "InquiryPriceInstanceTrafficPackage": {"trafficPackageSize": 2},
        "ModifyInstancesAttribute": {"instanceName": "stolen"},
        "ModifyInstancesResourceGroup": {"resourceGroupId": "default"},
        "ResetInstanceIpmiPassword": {"password": "Ipmi-Pass1"},
        "DescribeInstanceTraffic": {
            "startTime": _wire_time(now - 3600),
            "endTime": _wire_time(now),
        },
    }
    return table.get(action, {})


def body_for(action: str, instance_id: str) -> dict[str, Any]:
    fields = load_actions()[("bmc", action)].request.model_fields
    ids: dict[str, Any] = (
        {"instanceIds": [instance_id]} if "instance_ids" in fields else {"instanceId": instance_id}
    )
    return {**ids, **extras(action)}


def models(version: str) -> Any:
    module = "v20260201" if version == V2026 else "v20221120"
    return importlib.import_module(f"zenlayercloud.bmc.{module}.models")


def sdk_call(tenant: Tenant, version: str, action: str, body: dict[str, Any]) -> Any:
    request = getattr(models(version), f"{action}Request")()
    for key, value in body.items():
        setattr(request, key, value)
    return getattr(tenant.client(version), action)(request)


def raw(tenant: Tenant, version: str, action: str, body: dict[str, Any]) -> tuple[int, Any]:
    response = tenant.stack.raw(
        body, action=action, version=version, key=(tenant.access_key_id, tenant.access_key_password)
    )
    return response.status_code, response.json()


def snapshot(tenant: Tenant) -> dict[str, Any]:
    status, payload = raw(tenant, V2026, "DescribeInstances", {})
    assert status == 200
    return {
        "instances": payload["response"]["dataSet"],
        "balance": tenant.balance(),
        "orders": tenant.orders(),
        "ledger": tenant.ledger(),
    }


def test_the_instance_actions_are_known() -> None:
    # Guards against a refactor that renames the id fields and so silently empties the table.
    assert {
        "ModifyInstanceBandwidth",
        "ModifyInstanceTrafficPackage",
        "DescribeInstanceInternetStatus",
        "StartInstances",
        "StopInstances",
        "ModifyInstancesAttribute",
    } <= set(INSTANCE_ACTIONS)


@pytest.mark.parametrize("action", INSTANCE_ACTIONS)
def test_another_tenants_instance_is_not_found(stack: Stack, version: str, action: str) -> None:
    if version not in load_actions()[("bmc", action)].versions:
        pytest.skip(f"{action} does not exist in {version} (tests/test_hardware.py checks that)")
    owner, stranger = stack.tenant(), stack.tenant()
    # a charged prepaid ByTrafficPackage instance, so there is money and state to protect
    victim = stack.admin.json(
        "instance",
        "create",
        *("--tenant", owner.tenant_id, "--zone", "SEL-A", "--type", "M6C"),
        *("--instance-charge-type", "PREPAID", "--internet-charge-type", "ByTrafficPackage"),
        *("--bandwidth", "100", "--traffic-package", "1", "--charge"),
    )["instanceId"]
    stranger.instance()  # the stranger has instances of its own
    before = snapshot(owner), snapshot(stranger)
    body = body_for(action, victim)

    with pytest.raises(ZenlayerCloudSdkException) as caught:
        sdk_call(stranger, version, action, body)
    assert caught.value.code == "INVALID_INSTANCE_NOT_FOUND", caught.value.message
    assert victim in caught.value.message
    status, payload = raw(stranger, version, action, body)
    assert (status, payload["code"]) == (404, "INVALID_INSTANCE_NOT_FOUND")

    assert (snapshot(owner), snapshot(stranger)) == before

    status, payload = raw(owner, version, action, body)
    assert payload.get("code") != "INVALID_INSTANCE_NOT_FOUND", payload


def test_describe_instances_lists_only_your_own(stack: Stack, version: str) -> None:
    owner, stranger = stack.tenant(), stack.tenant()
    theirs = owner.instance(name="shared-name")
    mine = stranger.instance(name="shared-name")
    [their_info] = sdk_call(owner, version, "DescribeInstances", {}).dataSet
    public_ip = their_info.primaryPublicIpAddress

    everything = sdk_call(stranger, version, "DescribeInstances", {"pageSize": 1000})
    assert (everything.totalCount, [i.instanceId for i in everything.dataSet]) == (1, [mine])
    for filters in (
        {"instanceIds": [theirs]},
        {"instanceIds": [theirs, mine]},
        {"instanceName": "shared-name"},
        {"instanceName": "shared*"},
        {"publicIpAddresses": [public_ip]},
        {"privateIpAddresses": their_info.privateIpAddresses},
        {"zoneId": "SEL-A"},
    ):
        answer = sdk_call(stranger, version, "DescribeInstances", filters)
        assert theirs not in {i.instanceId for i in answer.dataSet}, filters
        assert answer.totalCount == len(answer.dataSet) <= 1, filters

    assert [i.instanceId for i in sdk_call(owner, version, "DescribeInstances", {}).dataSet] == [
        theirs
    ]
