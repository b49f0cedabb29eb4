"""PostgreSQL ends the API's connections (a restart, a failover, an administrator's
``pg_terminate_backend``): the next requests are answered normally, writes applied exactly once.

Each API process holds its request-path connection for its whole life (no ping per request);
a request that finds it broken before its commit runs again on a new connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import psycopg
import pytest

from tests.conftest import _check_backend, _make_stack_factory
from tests.harness import V2022, V2026, Stack, Tenant, _libpq, wait_until
from tests.test_bandwidth import call, raw

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _check_backend("postgres")
    with ExitStack() as resources:
        yield _make_stack_factory("postgres", tmp_path_factory, resources)()


def end_sessions(stack: Stack) -> int:
    """End every other session on the stack's database, as a restart does; how many."""
    with psycopg.connect(_libpq(stack.database_url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


@pytest.mark.parametrize("version", [V2022, V2026])
def test_requests_after_the_database_ended_the_connections(pg_stack: Stack, version: str) -> None:
    tenant = pg_stack.tenant(balance="1000.00")
    instance_id = tenant.instance(instance_charge_type="POSTPAID")
    # both paths hold their connections: reads (SQLAlchemy's pool) and direct actions
    call(tenant, version, "DescribeInstances", instanceIds=[instance_id])
    first = call(tenant, version, "ModifyInstanceBandwidth", instanceId=instance_id,
                 bandwidthOutMbps=150)  # fmt: skip
    wait_until(lambda: enabled(tenant, version, instance_id, 150), timeout=30)

    # Sent by hand: the SDK would retry a 500 and hide it.
    assert end_sessions(pg_stack) > 0
    found = raw(tenant, version, "DescribeInstances", instanceIds=[instance_id])
    assert found.status_code == 200, found.text
    assert [i["instanceId"] for i in found.json()["response"]["dataSet"]] == [instance_id]

    assert end_sessions(pg_stack) > 0
    answer = raw(tenant, version, "ModifyInstanceBandwidth", instanceId=instance_id,
                 bandwidthOutMbps=200)  # fmt: skip
    assert answer.status_code == 200, answer.text
    order_number = answer.json()["response"]["orderNumber"]
    changes = [
        o for o in tenant.orders() if o["instanceId"] == instance_id and o["kind"] != "CREATE"
    ]
    assert sorted(o["orderNumber"] for o in changes) == sorted([first.orderNumber, order_number])

    # the worker's connection was ended too: it reconnects and enables the change
    wait_until(lambda: enabled(tenant, version, instance_id, 200), timeout=30)


def enabled(tenant: Tenant, version: str, instance_id: str, mbps: int) -> bool:
    status = call(tenant, version, "DescribeInstanceInternetStatus", instanceId=instance_id)
    return bool(
        status.internetMaxBandwidthOut == mbps and status.modifiedBandwidthStatus == "Enable"
    )
