"""The resource manager's tag actions (``POST /api/v2/zrm``, 2025-10-14) through the official
SDK's zrm client, and what DescribeInstances makes of them, in both bmc API versions."""

from __future__ import annotations

import re
from typing import Any

import pytest
from zenlayercloud.common.config import Config
from zenlayercloud.common.credential import Credential
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
    ZenlayerCloudSdkException,
)
from zenlayercloud.zrm.v20251014 import models, zrm_client

from tests.harness import V2022, V2026, Stack, Tenant, next_second
from tests.test_bandwidth import call

CREATED = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def zrm(tenant: Tenant) -> Any:
    config = Config(scheme="http", domain=tenant.stack.host, rate_limit_max_retries=0)
    credential = Credential(tenant.access_key_id, tenant.access_key_password)
    return zrm_client.ZrmClient(credential, config)


def request(action: str, **fields: Any) -> Any:
    made = getattr(models, f"{action}Request")()
    for name, value in fields.items():
        setattr(made, name, value)
    return made


def tag(key: str, value: str | None = None) -> Any:
    made = models.Tag()
    made.key, made.value = key, value
    return made


def do(tenant: Tenant, action: str, **fields: Any) -> Any:
    return getattr(zrm(tenant), action)(request(action, **fields))


def fails(tenant: Tenant, action: str, code: str, status: int, **fields: Any) -> None:
    """The SDK raises ``code``; the same body sent by hand answers HTTP ``status``."""
    with pytest.raises(ZenlayerCloudSdkException) as caught:
        do(tenant, action, **fields)
    assert caught.value.code == code, caught.value.message
    body = request(action, **fields).serialize()
    key = (tenant.access_key_id, tenant.access_key_password)
    answer = tenant.stack.raw(
        body, action=action, version="2025-10-14", key=key, path="/api/v2/zrm"
    )
    assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert set(answer.json()) == {"requestId", "code", "message"}


def carried(tenant: Tenant, version: str, instance_id: str) -> dict[str, str]:
    (info,) = call(tenant, version, "DescribeInstances", instanceIds=[instance_id]).dataSet
    return {t.key: t.value for t in info.tags.tags}


def listed(tenant: Tenant, version: str, **filters: Any) -> set[str]:
    return {i.instanceId for i in call(tenant, version, "DescribeInstances", **filters).dataSet}


def test_terraform_tag_changes_reach_describe_instances(tenant: Tenant, version: str) -> None:
    """ModifyResourceTags as the Terraform provider sends it: every tag of the configuration in
    replaceTags, the keys it dropped in deleteTagKeys."""
    iid = tenant.instance(tag="env=dev")
    other = tenant.instance()
    answer = do(
        tenant,
        "ModifyResourceTags",
        resourceUuid=iid,
        replaceTags=[tag("env", "prod"), tag("team", "web")],
    )
    assert answer.requestId
    assert carried(tenant, version, iid) == {"env": "prod", "team": "web"}
    do(
        tenant,
        "ModifyResourceTags",
        resourceUuid=iid,
        replaceTags=[tag("env", "prod")],
        deleteTagKeys=["team", "never-there"],
    )
    assert carried(tenant, version, iid) == {"env": "prod"}
    assert carried(tenant, version, other) == {}
    assert listed(tenant, version, tagKeys=["env"]) == {iid}
    prod = call(tenant, version, "DescribeInstances", tags=[{"key": "env", "value": "prod"}])
    assert {i.instanceId for i in prod.dataSet} == {iid}
    assert listed(tenant, version, tags=[{"key": "env", "value": "dev"}]) == set()
    # Removing every tag: Terraform sends no replaceTags, only the keys.
    do(tenant, "ModifyResourceTags", resourceUuid=iid, deleteTagKeys=["env"])
    assert carried(tenant, version, iid) == {}
    assert listed(tenant, version, tagKeys=["env"]) == set()


def test_modify_resource_tags_refusals_change_nothing(stack: Stack, tenant: Tenant) -> None:
    iid = tenant.instance(tag="env=dev")
    foreign = stack.tenant().instance()
    for resource in ("999999999999999999", foreign):
        fails(
            tenant,
            "ModifyResourceTags",
            "INVALID_RESOURCE_NOT_FOUND",
            404,
            resourceUuid=resource,
            replaceTags=[tag("a", "b")],
        )
    for fields in (
        {"replaceTags": [tag("a", "1"), tag("a", "2")]},
        {"replaceTags": [tag("a", "1")], "deleteTagKeys": ["a"]},
        {"replaceTags": [tag("", "x")]},
        {"replaceTags": [tag("k" * 65, "x")]},
        {"replaceTags": [tag("k", "v" * 65)]},
        {"replaceTags": [tag(f"k{n}", "v") for n in range(51)]},
    ):
        fails(tenant, "ModifyResourceTags", "INVALID_PARAMETER", 400, resourceUuid=iid, **fields)
    fails(tenant, "ModifyResourceTags", "MISSING_PARAMETER", 400, replaceTags=[tag("a", "b")])
    assert carried(tenant, V2026, iid) == {"env": "dev"}
    assert do(tenant, "DescribeTags").totalCount == 1  # env=dev, from the instance


def test_tag_list_bind_unbind_and_counts(tenant: Tenant) -> None:
    first, second = tenant.instance(), tenant.instance()
    do(tenant, "CreateTags", tags=[tag("env", "prod"), tag("owner")])
    fails(
        tenant,
        "TagBindResources",
        "INVALID_TAG_NOT_FOUND",
        404,
        tag=tag("env", "qa"),
        resourceUuids=[first],
    )
    fails(
        tenant,
        "TagBindResources",
        "INVALID_RESOURCE_NOT_FOUND",
        404,
        tag=tag("env", "prod"),
        resourceUuids=[first, "999999999999999999"],
    )
    assert carried(tenant, V2026, first) == {}  # all or nothing
    do(tenant, "TagBindResources", tag=tag("env", "prod"), resourceUuids=[first, second])
    next_second()  # the same signed request in the same second would be a replay
    do(tenant, "TagBindResources", tag=tag("env", "prod"), resourceUuids=[first])  # again: no-op
    do(tenant, "ModifyResourceTags", resourceUuid=second, replaceTags=[tag("env", "qa")])
    fails(
        tenant,
        "TagBindResources",
        "INVALID_RESOURCE_CAN_NOT_BOUND",
        404,
        tag=tag("env", "prod"),
        resourceUuids=[second],
    )
    tags = {(t.key, t.value): t for t in do(tenant, "DescribeTags").dataSet}
    assert set(tags) == {("env", "prod"), ("env", "qa"), ("owner", "")}
    assert {pair: t.bindResourceCount for pair, t in tags.items()} == {
        ("env", "prod"): 1,
        ("env", "qa"): 1,
        ("owner", ""): 0,
    }
    assert all(CREATED.match(t.createdDate) for t in tags.values())
    by_tags = do(tenant, "DescribeResourceByTags", tags=[tag("env", "prod")])
    assert by_tags.totalCount == 1
    assert [(r.resourceType, r.resourceUuid) for r in by_tags.dataSet] == [("BMC_INSTANCE", first)]
    both = do(tenant, "DescribeResourceByTags", tagKeys=["env"])
    assert {r.resourceUuid for r in both.dataSet} == {first, second}
    on_first = do(tenant, "DescribeResourceTags", resourceUuid=first)
    assert [(t.key, t.value) for t in on_first.dataSet] == [("env", "prod")]
    assert CREATED.match(on_first.dataSet[0].createdDate)
    assert do(tenant, "DescribeResourceTags", resourceUuid="999999999999999999").totalCount == 0
    do(tenant, "TagUnbindResources", tag=tag("env", "prod"), resourceUuids=[first, second])
    assert carried(tenant, V2026, first) == {}
    assert carried(tenant, V2026, second) == {"env": "qa"}
    do(tenant, "DeleteTags", tags=[tag("env", "qa"), tag("never", "there")])
    assert carried(tenant, V2026, second) == {}
    remaining = {(t.key, t.value) for t in do(tenant, "DescribeTags").dataSet}
    assert remaining == {("env", "prod"), ("owner", "")}


def test_describe_tags_filters_sorts_and_pages(tenant: Tenant) -> None:
    do(tenant, "CreateTags", tags=[tag(f"k{n}", "v") for n in range(5)])
    do(tenant, "CreateTags", tags=[tag("k1", "w")])
    fails(tenant, "CreateTags", "INVALID_PARAMETER", 400, tags=[tag(f"x{n}") for n in range(21)])
    fails(tenant, "CreateTags", "INVALID_PARAMETER", 400, tags=[tag("a"), tag("a")])
    every = do(tenant, "DescribeTags", keySort="ascend", pageSize=100)
    assert [(t.key, t.value) for t in every.dataSet] == [
        ("k0", "v"),
        ("k1", "v"),
        ("k1", "w"),
        ("k2", "v"),
        ("k3", "v"),
        ("k4", "v"),
    ]
    down = do(tenant, "DescribeTags", keySort="descend", pageNum=2, pageSize=4)
    assert (down.totalCount, [t.key for t in down.dataSet]) == (6, ["k1", "k0"])
    assert do(tenant, "DescribeTags", tagKeys=["k1"]).totalCount == 2
    assert do(tenant, "DescribeTags", tags=[tag("k1", "w")]).totalCount == 1
    fails(tenant, "DescribeTags", "INVALID_PARAMETER", 400, keySort="up")
    fails(tenant, "DescribeTags", "INVALID_PARAMETER", 400, pageSize=0)


def test_resource_types_and_resource_search(tenant: Tenant) -> None:
    web = tenant.instance(name="web-1", tag="env=prod")
    tenant.instance(name="db-1")
    types = do(tenant, "DescribeResourceTypes")
    assert [(t.resourceType, t.name, t.service) for t in types.dataSet] == [
        ("BMC_INSTANCE", "Bare Metal Instance", "Bare Metal")
    ]
    assert do(tenant, "DescribeResourceTypes", services=["Elastic Compute"]).totalCount == 0
    found = do(tenant, "DescribeResources", resourceName="WEB")
    assert found.totalCount == 1
    (item,) = found.dataSet
    assert (item.resourceId, item.name, item.resourceType, item.service) == (
        web,
        "web-1",
        "BMC_INSTANCE",
        "Bare Metal",
    )
    assert (item.resourceGroupId, item.resourceGroupName, item.location) == (
        "default",
        "Default Resource Group",
        "SEL-A",
    )
    assert do(tenant, "DescribeResources", tagKeys=["env"]).totalCount == 1
    assert do(tenant, "DescribeResources", resourceIds=[web, "0"]).totalCount == 1
    assert do(tenant, "DescribeResources").totalCount == 2


@pytest.mark.parametrize("version", [V2022, V2026])
def test_wrong_versions_and_services(stack: Stack, tenant: Tenant, version: str) -> None:
    """The zrm service has its own version; bmc actions are not zrm actions and back."""
    key = (tenant.access_key_id, tenant.access_key_password)
    answer = stack.raw({}, action="DescribeTags", version=version, key=key, path="/api/v2/zrm")
    assert (answer.status_code, answer.json()["code"]) == (400, "INVALID_VERSION")
    answer = stack.raw({}, action="DescribeTags", version=None, key=key, path="/api/v2/zrm")
    assert answer.status_code == 200
    answer = stack.raw({}, action="DescribeZones", version=None, key=key, path="/api/v2/zrm")
    assert (answer.status_code, answer.json()["code"]) == (400, "INVALID_ACTION")
    answer = stack.raw({}, action="DescribeTags", version=version, key=key)
    assert (answer.status_code, answer.json()["code"]) == (400, "INVALID_ACTION")
    unsigned = stack.raw({}, action="DescribeTags", version=None, path="/api/v2/zrm")
    assert unsigned.status_code == 401


def test_tenants_see_only_their_tags(stack: Stack, tenant: Tenant) -> None:
    other = stack.tenant()
    theirs = other.instance()
    do(other, "ModifyResourceTags", resourceUuid=theirs, replaceTags=[tag("secret", "x")])
    assert do(tenant, "DescribeTags").totalCount == 0
    assert do(tenant, "DescribeResourceByTags", tagKeys=["secret"]).totalCount == 0
    assert do(other, "DescribeResourceByTags", tagKeys=["secret"]).totalCount == 1
