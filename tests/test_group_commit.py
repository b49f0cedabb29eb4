"""Group commit (``Pipeline.handle_batch``): calls that arrive together share one transaction,
and every call gets exactly the outcome it would have alone (an API error before any change is
its answer; one after a change makes the batch run again call by call).

Driven in process, with calls signed as the SDK signs them, against a migrated database of
each backend (on PostgreSQL the shared transaction runs in psycopg's pipeline mode)."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import StackFactory
from tests.harness import Stack, Tenant
from zbmc import errors
from zbmc.app import build_runtime
from zbmc.auth import Credentials
from zbmc.context import Context
from zbmc.db.tables import instances, orders
from zbmc.drivers import NoopDriver
from zbmc.pipeline import Call, Outcome, Pipeline, new_request_id
from zbmc.settings import Settings
from zbmc.signature import ALGORITHM, SIGNED_HEADERS, sign
from zbmc.wire import V2026
from zbmc.worker import Worker

HOST = "127.0.0.1:8080"


@pytest.fixture
def stack(make_stack: StackFactory) -> Stack:
    return make_stack(start=False)


@pytest.fixture
def pipeline(stack: Stack) -> Iterator[Pipeline]:
    settings = Settings(database_url=stack.database_url)
    runtime = build_runtime(settings)
    pipeline = Pipeline(runtime.engine, settings, runtime.clock)
    yield pipeline
    pipeline.close()
    runtime.engine.dispose()


def call(
    tenant: Tenant,
    action: str,
    body: dict[str, Any],
    *,
    secret: str | None = None,
    signed_at: int | None = None,
) -> Call:
    raw = json.dumps(body).encode()
    timestamp = str(int(time.time()) if signed_at is None else signed_at)
    signature = sign(secret or tenant.access_key_password, "application/json", HOST, timestamp, raw)
    authorization = (
        f"{ALGORITHM} Credential={tenant.access_key_id}, SignedHeaders={SIGNED_HEADERS}, "
        f"Signature={signature}"
    )
    credentials = Credentials(authorization, timestamp, "application/json", HOST, raw)
    return Call(new_request_id(), "bmc", action, V2026, credentials)


def modify(tenant: Tenant, instance_id: str, mbps: int, **kw: Any) -> Call:
    body = {"instanceId": instance_id, "bandwidthOutMbps": mbps}
    return call(tenant, "ModifyInstanceBandwidth", body, **kw)


def price(pipeline: Pipeline, tenant: Tenant, instance_id: str, mbps: int) -> Decimal:
    body = {"instanceId": instance_id, "bandwidthOutMbps": mbps}
    quoted = pipeline.handle(call(tenant, "InquiryPriceInstanceBandwidth", body))
    item = answer(quoted)["response"]["bandwidthPrice"][0]
    return Decimal(str(item["discountPrice"]))


def answer(outcome: Outcome) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(outcome.body)
    return data


def bandwidth_status(stack: Stack, instance_id: str) -> tuple[str, int]:
    engine = stack.engine()
    try:
        with engine.connect() as conn:
            row = conn.execute(
                select(instances.c.bw_status, instances.c.bandwidth).where(
                    instances.c.instance_id == instance_id
                )
            ).one()
    finally:
        engine.dispose()
    return str(row.bw_status), int(row.bandwidth)


def fail_after_writing(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, instance_id: str, error: Exception
) -> None:
    """ModifyInstanceBandwidth of ``instance_id`` writes its order and instance, then raises."""
    key = ("bmc", "ModifyInstanceBandwidth")
    spec = pipeline.actions[key]

    def handler(ctx: Context, request: Any) -> Any:
        response = spec.handler(ctx, request)
        if request.instance_id == instance_id:
            raise error
        return response

    monkeypatch.setitem(pipeline.actions, key, dataclasses.replace(spec, handler=handler))


def count_transactions(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    opened: list[bool] = []
    original = pipeline.direct.transaction

    def counting(*, write: bool) -> Any:
        opened.append(write)
        return original(write=write)

    monkeypatch.setattr(pipeline.direct, "transaction", counting)
    return opened


def test_calls_that_arrive_together_share_one_commit(
    stack: Stack, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = stack.tenant()
    ids = [tenant.instance(instance_charge_type="POSTPAID") for _ in range(5)]
    opened = count_transactions(pipeline, monkeypatch)
    outcomes = pipeline.handle_batch([modify(tenant, i, 150) for i in ids])
    assert [o.status for o in outcomes] == [200] * 5
    numbers = [answer(o)["response"]["orderNumber"] for o in outcomes]
    assert len(set(numbers)) == 5
    assert {o["orderNumber"] for o in tenant.orders()} >= set(numbers)
    assert opened == [True]


def test_a_replay_in_a_batch_is_refused_and_the_other_calls_applied(
    stack: Stack, pipeline: Pipeline
) -> None:
    """The replay guard's records of a batch are written together after its calls: a
    signature applied before makes the batch run call by call, where the replay is refused
    (docs/security.md) and the other calls are applied once."""
    tenant = stack.tenant()
    ids = [tenant.instance(instance_charge_type="POSTPAID", bandwidth=100) for _ in range(3)]
    worker = Worker(pipeline.engine, pipeline.clock, NoopDriver())
    captured = modify(tenant, ids[0], 150, signed_at=int(time.time()) - 10)
    assert pipeline.handle(captured).status == 200
    worker.tick()
    assert pipeline.handle(modify(tenant, ids[0], 100)).status == 200
    worker.tick()
    outcomes = pipeline.handle_batch(
        [modify(tenant, ids[1], 150), captured, modify(tenant, ids[2], 150)]
    )
    assert [o.status for o in outcomes] == [200, 401, 200]
    assert answer(outcomes[1])["code"] == errors.SignatureReplayed.code
    worker.tick()
    assert [bandwidth_status(stack, i) for i in ids] == [("Enable", 100), *[("Enable", 150)] * 2]
    engine = stack.engine()
    try:
        with engine.connect() as conn:
            counted = conn.execute(
                select(orders.c.instance_id, func.count())
                .where(orders.c.instance_id.in_(ids))
                .group_by(orders.c.instance_id)
            )
            per_instance = {str(row[0]): int(row[1]) for row in counted}
    finally:
        engine.dispose()
    assert per_instance == {ids[0]: 2, ids[1]: 1, ids[2]: 1}


def test_an_api_error_rolls_back_its_own_call_only(
    stack: Stack, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = stack.tenant(balance="0")
    first, second = (tenant.instance(bandwidth=100) for _ in range(2))  # PREPAID
    postpaid = tenant.instance(instance_charge_type="POSTPAID")
    first_price, second_price = (
        price(pipeline, tenant, instance, mbps) for instance, mbps in ((first, 200), (second, 1000))
    )
    # enough for the first upgrade, not for both
    stack.admin.run("tenant", "topup", tenant.tenant_id, str(first_price + second_price / 2))
    before = tenant.balance()
    batch = [
        modify(tenant, first, 200),  # a prepaid upgrade: charged at once
        modify(tenant, second, 1000),  # costs more than the balance left after the first
        modify(tenant, postpaid, 300, secret="not-the-password"),  # 401
        modify(tenant, postpaid, 200),
        modify(tenant, postpaid, 250),  # the one before left it Processing: refused
        modify(tenant, "no-such-instance", 200),
    ]
    opened = count_transactions(pipeline, monkeypatch)
    outcomes = pipeline.handle_batch(batch)
    # every error came before its call changed anything: the batch kept its one transaction
    assert opened == [True]
    codes = [o.code for o in outcomes]
    assert codes[0] == "OK"
    assert codes[3] == "OK"
    assert codes[1] == "OPERATION_DENIED_BALANCE_INSUFFICIENT"
    assert codes[2] == "AUTHFAILURE_SIGNATURE_FAILURE"
    assert codes[4] == "OPERATION_FAILED_INSTANCE_BANDWIDTH_PROCESSING"
    assert codes[5] == "INVALID_INSTANCE_NOT_FOUND"
    for outcome, original in zip(outcomes, batch, strict=True):
        assert answer(outcome)["requestId"] == original.request_id
    orders = {o["orderNumber"]: o for o in tenant.orders() if o["kind"] == "BANDWIDTH"}
    assert answer(outcomes[0])["response"]["orderNumber"] in orders
    assert answer(outcomes[3])["response"]["orderNumber"] in orders
    assert {o["instanceId"] for o in orders.values()} == {first, postpaid}
    charges = [e for e in tenant.ledger() if e["kind"] == "CHARGE"]
    assert len(charges) == 1
    assert charges[0]["orderNumber"] in orders
    assert tenant.balance() == before + Decimal(str(charges[0]["amount"])) < before
    assert bandwidth_status(stack, second) == ("Enable", 100)


def test_a_call_sees_what_an_earlier_call_of_its_batch_did_to_the_same_instance(
    stack: Stack, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the instances of a batch's modifications are read at once, before its
    first call (``Pipeline._prefetch``): a cancellation earlier in the batch must still be seen
    by the modification of the same instance after it."""
    tenant = stack.tenant()
    prepaid = tenant.instance(bandwidth=200)
    postpaid = tenant.instance(instance_charge_type="POSTPAID")
    waiting = pipeline.handle_batch([modify(tenant, prepaid, 150)])
    assert answer(waiting[0])["response"]["orderNumber"]
    assert bandwidth_status(stack, prepaid) == ("WaitToEnable", 200)
    opened = count_transactions(pipeline, monkeypatch)
    outcomes = pipeline.handle_batch(
        [
            modify(tenant, postpaid, 150),
            call(tenant, "CancelInstanceBandwidthDowngrade", {"instanceId": prepaid}),
            modify(tenant, prepaid, 120),  # a new downgrade: the cancelled one is gone
            modify(tenant, prepaid, 110),  # and this one finds the new one waiting
        ]
    )
    assert opened == [True]
    assert [o.code for o in outcomes] == [
        "OK",
        "OK",
        "OK",
        "OPERATION_FAILED_INSTANCE_BANDWIDTH_PROCESSING",
    ]
    assert bandwidth_status(stack, prepaid) == ("WaitToEnable", 200)
    downgrades = [o for o in tenant.orders() if o["instanceId"] == prepaid]
    assert sorted(o["state"] for o in downgrades) == ["CANCELLED", "WAIT_TO_ENABLE"]


def test_an_unexpected_error_costs_the_others_nothing(
    stack: Stack, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = stack.tenant()
    ids = [tenant.instance(instance_charge_type="POSTPAID") for _ in range(4)]
    fail_after_writing(pipeline, monkeypatch, ids[2], RuntimeError("a bug"))
    outcomes = pipeline.handle_batch([modify(tenant, i, 150) for i in ids])
    assert [o.status for o in outcomes] == [200, 200, 500, 200]
    assert answer(outcomes[2])["code"] == "INTERNAL_SERVER_ERROR"
    assert bandwidth_status(stack, ids[2]) == ("Enable", 100)  # nothing of it was kept
    assert bandwidth_status(stack, ids[0]) == ("Processing", 100)
    kept = {o["instanceId"] for o in tenant.orders() if o["kind"] == "BANDWIDTH"}
    assert kept == {ids[0], ids[1], ids[3]}


def test_calls_rejected_before_the_database_never_open_a_transaction(
    stack: Stack, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = stack.tenant()
    opened = count_transactions(pipeline, monkeypatch)
    bad_version = call(tenant, "DescribeZones", {})._replace(version="1999-01-01")
    unknown = call(tenant, "NoSuchAction", {})
    invalid = call(tenant, "ModifyInstanceBandwidth", {"instanceId": "x", "bandwidthOutMbps": "1"})
    outcomes = pipeline.handle_batch([bad_version, unknown, invalid])
    assert [o.code for o in outcomes] == [
        "INVALID_VERSION",
        "INVALID_ACTION",
        "INVALID_PARAMETER",
    ]
    assert opened == []


def test_an_api_error_after_its_writes_leaves_none_of_them(
    stack: Stack, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = stack.tenant()
    ids = [tenant.instance(instance_charge_type="POSTPAID") for _ in range(3)]
    fail_after_writing(pipeline, monkeypatch, ids[1], errors.InstanceNotRunning(instance_id=ids[1]))
    opened = count_transactions(pipeline, monkeypatch)
    outcomes = pipeline.handle_batch([modify(tenant, i, 150) for i in ids])
    assert [o.code for o in outcomes] == ["OK", "OPERATION_DENIED_INSTANCE_NOT_RUNNING", "OK"]
    # the shared transaction is rolled back, then every call runs on its own
    assert opened == [True] * 4
    assert bandwidth_status(stack, ids[1]) == ("Enable", 100)
    assert bandwidth_status(stack, ids[2]) == ("Processing", 100)
    kept = {o["instanceId"] for o in tenant.orders() if o["kind"] == "BANDWIDTH"}
    assert kept == {ids[0], ids[2]}


def test_calls_of_several_keys_in_one_batch_each_authenticate_as_their_own(
    stack: Stack, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The access key read once per shared transaction (``Pipeline._shared``) is per key id:
    another tenant's calls, a wrong secret for a key already read, an unknown and a revoked key
    in the same batch each get the outcome they would get alone."""
    mine, theirs, revoked = stack.tenant(), stack.tenant(), stack.tenant()
    my_instance = mine.instance(instance_charge_type="POSTPAID")
    their_instance = theirs.instance(instance_charge_type="POSTPAID")
    stack.admin.run("key", "revoke", revoked.access_key_id)
    unknown = dataclasses.replace(mine, access_key_id="no-such-key")
    opened = count_transactions(pipeline, monkeypatch)
    outcomes = pipeline.handle_batch(
        [
            modify(mine, my_instance, 150),
            modify(theirs, my_instance, 200),  # not their instance
            modify(mine, my_instance, 300, secret="not-the-password"),
            modify(theirs, their_instance, 150),
            modify(unknown, my_instance, 200),
            modify(revoked, my_instance, 200),
            call(mine, "DescribeZones", {}),  # not a direct action: its own transaction
        ]
    )
    assert [o.code for o in outcomes] == [
        "OK",
        "INVALID_INSTANCE_NOT_FOUND",
        "AUTHFAILURE_SIGNATURE_FAILURE",
        "OK",
        "AUTHFAILURE_INVALID_AUTHORIZATION",
        "AUTHFAILURE_INVALID_AUTHORIZATION",
        "OK",
    ]
    assert [o.tenant_id for o in outcomes] == [
        mine.tenant_id,
        theirs.tenant_id,
        None,
        theirs.tenant_id,
        None,
        None,
        mine.tenant_id,
    ]
    assert opened == [True]
    assert bandwidth_status(stack, my_instance) == ("Processing", 100)
    assert bandwidth_status(stack, their_instance) == ("Processing", 100)


def test_a_batch_that_waits_for_a_lock_runs_call_by_call(
    stack: Stack, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a shared transaction holds its rows until the batch commits, so one that
    waits for a row lock (here another connection's; in production the worker's tick or
    another process's batch, possibly waiting for this one) gives up after the lock timeout
    and its calls run alone, each waiting as long as it takes."""
    if stack.backend != "postgres":
        pytest.skip("SQLite has no row locks: a transaction waits for the database's write lock")
    tenant = stack.tenant()
    free, held = (tenant.instance(instance_charge_type="POSTPAID") for _ in range(2))
    engine = stack.engine()
    try:
        with engine.connect() as other:
            other.execute(
                select(instances.c.instance_id)
                .where(instances.c.instance_id == held)
                .with_for_update()
            )
            release = threading.Timer(0.5, other.rollback)
            release.start()
            opened = count_transactions(pipeline, monkeypatch)
            outcomes = pipeline.handle_batch([modify(tenant, free, 150), modify(tenant, held, 150)])
            release.join()
    finally:
        engine.dispose()
    assert [o.code for o in outcomes] == ["OK", "OK"]
    assert opened == [True, True, True]
    assert bandwidth_status(stack, free) == ("Processing", 100)
    assert bandwidth_status(stack, held) == ("Processing", 100)
    kept = [o["instanceId"] for o in tenant.orders() if o["kind"] == "BANDWIDTH"]
    assert sorted(kept) == sorted([free, held])
