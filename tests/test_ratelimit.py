"""Rate limits: token buckets per access key and action, enforced before the database, seen by
the official SDK as REQUEST_LIMIT_EXCEEDED (HTTP 429), retried by its built-in back-off, and
shared by several server processes through Redis."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StackFactory
from tests.harness import Stack, Tenant, free_port
from zbmc.ratelimit import Limit, LocalBuckets, parse_limit, parse_policy

REDIS_URL = "redis://127.0.0.1:6379/0"


def sdk_error(call: Any) -> Any:
    from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
        ZenlayerCloudSdkException,
    )

    with pytest.raises(ZenlayerCloudSdkException) as caught:
        call()
    return caught.value


def describe_zones(client: Any) -> Any:
    from zenlayercloud.bmc.v20260201 import models

    return client.DescribeZones(models.DescribeZonesRequest())


def assert_throttled(stack: Stack, tenant: Tenant) -> None:
    """The same call, raw: HTTP 429 and the standard error envelope."""
    response = stack.raw({}, key=(tenant.access_key_id, tenant.access_key_password))
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "REQUEST_LIMIT_EXCEEDED"
    assert body["requestId"] == response.headers["x-zc-request-id"]
    assert body["message"]


def redis_unreachable() -> str | None:
    try:
        import redis
    except ImportError:
        return "the redis package is not installed (pip install 'zbmc[redis]')"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"Redis at {REDIS_URL} is unreachable: {exc}"
    return None


# --- configuration and the bucket itself (pure) -------------------------------------------------


def test_limits_are_read_from_the_documented_syntax() -> None:
    assert parse_limit("20/s,burst=40") == Limit(rate=20.0, burst=40)
    assert parse_limit("5/s") == Limit(rate=5.0, burst=5)
    assert parse_limit("120/m") == Limit(rate=2.0, burst=120)
    assert parse_limit("0.5/s, burst=1") == Limit(rate=0.5, burst=1)
    assert parse_limit("off") is None
    policy = parse_policy(
        "20/s,burst=40", "ModifyInstanceBandwidth=5/s,DescribeZones=1/h,burst=3;DescribeImages=off"
    )
    assert policy.limit_for("ModifyInstanceBandwidth") == Limit(5.0, 5)
    assert policy.limit_for("DescribeZones") == Limit(1 / 3600, 3)
    assert policy.limit_for("DescribeImages") is None
    assert policy.limit_for("DescribeInstances") == Limit(20.0, 40)
    assert not parse_policy(None, None).enabled
    assert parse_policy(None, "DescribeZones=1/s").limit_for("DescribeInstances") is None


@pytest.mark.parametrize("text", ["20", "20/d", "-1/s", "0/s", "5/s,burst=0", "5/s,bust=3"])
def test_malformed_limits_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        parse_limit(text)


def test_malformed_action_overrides_are_refused() -> None:
    with pytest.raises(ValueError, match="ZBMC_RATE_LIMIT_ACTIONS"):
        parse_policy(None, "burst=3")
    with pytest.raises(ValueError, match="ZBMC_RATE_LIMIT_ACTIONS"):
        parse_policy(None, "DescribeZones")


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    now = [100.0]
    buckets = LocalBuckets(clock=lambda: now[0])
    limit = Limit(rate=2.0, burst=3)

    def take(key: str = "k") -> bool:
        return asyncio.run(buckets.take(key, limit))

    assert [take() for _ in range(4)] == [True, True, True, False]
    assert take("other")  # buckets are per key
    now[0] += 0.49
    assert not take()
    now[0] += 0.02  # 0.51 s at 2/s: one token
    assert take()
    assert not take()
    now[0] += 60  # a long pause refills up to the burst, not beyond
    assert [take() for _ in range(4)] == [True, True, True, False]


def test_bucket_memory_is_bounded() -> None:
    buckets = LocalBuckets(max_keys=10, clock=lambda: 0.0)
    for n in range(100):
        asyncio.run(buckets.take(f"k{n}", Limit(1.0, 1)))
    assert len(buckets._state) == 10


def test_a_bad_setting_stops_the_server_at_start(make_stack: StackFactory, tmp_path: Path) -> None:
    stack = make_stack(start=False)
    with pytest.raises(RuntimeError, match="ZBMC_RATE_LIMIT_ACTIONS"):
        stack.start(tmp_path / "server.log", ZBMC_RATE_LIMIT_ACTIONS="DescribeZones")


# --- through the server and the SDK -------------------------------------------------------------


def test_sdk_without_retries_sees_request_limit_exceeded(make_stack: StackFactory) -> None:
    stack = make_stack(ZBMC_RATE_LIMIT_ACTIONS="DescribeZones=1/h,burst=2")
    tenant, other = stack.tenant(), stack.tenant()
    client = tenant.client()  # the harness's clients have rate_limit_max_retries=0
    describe_zones(client)
    describe_zones(client)
    error = sdk_error(lambda: describe_zones(client))
    assert error.code == "REQUEST_LIMIT_EXCEEDED"
    assert error.request_id
    assert_throttled(stack, tenant)
    # The bucket belongs to this key and this action only.
    assert describe_zones(other.client()).zoneSet
    from zenlayercloud.bmc.v20260201 import models

    assert client.DescribeInstances(models.DescribeInstancesRequest()).totalCount == 0


def test_sdk_retry_with_backoff_then_succeeds(make_stack: StackFactory) -> None:
    from zenlayercloud.bmc.v20260201.bmc_client import BmcClient
    from zenlayercloud.common.config import Config
    from zenlayercloud.common.credential import Credential

    stack = make_stack(ZBMC_RATE_LIMIT_ACTIONS="DescribeZones=0.5/s,burst=1")
    tenant = stack.tenant()
    waits: list[int] = []

    def backoff(index: int) -> float:
        waits.append(index)
        return 2.1  # one token comes back every 2 s

    config = Config(
        scheme="http",
        domain=stack.host,
        rate_limit_max_retries=3,
        rate_limit_retry_duration=backoff,
    )
    client = BmcClient(Credential(tenant.access_key_id, tenant.access_key_password), config)
    describe_zones(tenant.client())  # spends the only token
    assert describe_zones(client).zoneSet
    assert waits  # the SDK was throttled first and retried, as real clients do
    assert waits == list(range(len(waits)))


def test_limit_applies_before_authentication(make_stack: StackFactory) -> None:
    """Excess traffic is turned away before it costs a database transaction, so even a
    caller with a bad key is throttled rather than checked."""
    stack = make_stack(ZBMC_RATE_LIMIT="1/h,burst=2")
    statuses = [stack.raw({}, key=("AKnosuchkey", "wrong")).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


def test_bearer_tokens_have_their_own_buckets(make_stack: StackFactory) -> None:
    stack = make_stack(ZBMC_RATE_LIMIT="1/h,burst=1")
    tenant = stack.tenant()
    token = stack.admin.json("token", "create", tenant.tenant_id)["token"]
    client = stack.token_client(token)
    client.config.rate_limit_max_retries = 0
    assert describe_zones(client).zoneSet
    assert sdk_error(lambda: describe_zones(client)).code == "REQUEST_LIMIT_EXCEEDED"
    assert describe_zones(tenant.client()).zoneSet  # the access key's bucket is untouched


def _second_server(stack: Stack, tmp_path: Path, **env: str) -> Stack:
    twin = Stack(backend=stack.backend, database_url=stack.database_url, port=free_port())
    twin.start(tmp_path / "twin.log", **env)
    return twin


def test_redis_shares_one_limit_between_processes(make_stack: StackFactory, tmp_path: Path) -> None:
    reason = redis_unreachable()
    if reason is not None:
        if os.environ.get("ZBMC_TEST_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis is required (ZBMC_TEST_REQUIRE_REDIS=1): {reason}")
        pytest.skip(reason)
    env = {
        "ZBMC_RATE_LIMIT_ACTIONS": "DescribeZones=1/h,burst=4",
        "ZBMC_REDIS_URL": REDIS_URL,
        "ZBMC_REDIS_PREFIX": f"zbmc-test-{secrets.token_hex(6)}",
    }
    first = make_stack(**env)
    second = _second_server(first, tmp_path, **env)
    try:
        tenant = first.tenant()
        on_first = first.client(tenant.access_key_id, tenant.access_key_password)
        on_second = second.client(tenant.access_key_id, tenant.access_key_password)
        for client in (on_first, on_second, on_first, on_second):
            assert describe_zones(client).zoneSet
        # Four taken in all: each process alone would still have two left.
        assert sdk_error(lambda: describe_zones(on_first)).code == "REQUEST_LIMIT_EXCEEDED"
        assert sdk_error(lambda: describe_zones(on_second)).code == "REQUEST_LIMIT_EXCEEDED"
        assert_throttled(second, tenant)
    finally:
        second.stop()


def test_in_process_limits_are_per_process(make_stack: StackFactory, tmp_path: Path) -> None:
    """Without Redis each process keeps its own buckets (documented in docs/operations.md)."""
    env = {"ZBMC_RATE_LIMIT_ACTIONS": "DescribeZones=1/h,burst=2"}
    first = make_stack(**env)
    second = _second_server(first, tmp_path, **env)
    try:
        tenant = first.tenant()
        for stack in (first, second):
            client = stack.client(tenant.access_key_id, tenant.access_key_password)
            assert describe_zones(client).zoneSet
            assert describe_zones(client).zoneSet
            assert sdk_error(lambda c=client: describe_zones(c)).code == "REQUEST_LIMIT_EXCEEDED"
    finally:
        second.stop()


def test_unreachable_redis_does_not_take_the_service_down(make_stack: StackFactory) -> None:
    stack = make_stack(
        ZBMC_RATE_LIMIT="1/h,burst=1",
        ZBMC_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    client = stack.tenant().client()
    assert describe_zones(client).zoneSet
    assert describe_zones(client).zoneSet  # over the limit, but the limit store is down
    assert stack.log_path is not None
    assert "rate limit store unavailable" in stack.log_path.read_text()
