"""The replay policy (issue 16, docs/security.md): a signed write request is applied once.

A captured request sent again within the signature window is refused with 401
``AUTHFAILURE_SIGNATURE_REPLAYED`` and changes nothing; a fresh SDK call with the same body
passes; the SDK's own retries of a rate-limited call pass (a refused attempt burns nothing);
the guard holds across API processes and under concurrent copies, on both backends.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from tests.conftest import StackFactory
from tests.harness import V2026, Stack, Tenant, wait_until
from tests.signing import capturing_client
from tests.test_protocol import assert_error, assert_success
from zbmc.db.tables import seen_signatures
from zbmc.replay import GRACE_SECONDS

REPLAYED = "AUTHFAILURE_SIGNATURE_REPLAYED"


def models(version: str) -> Any:
    module = "v20260201" if version == V2026 else "v20221120"
    return __import__(f"zenlayercloud.bmc.{module}", fromlist=["models"]).models


def modify(client: Any, version: str, instance_id: str, mbps: int) -> Any:
    request = models(version).ModifyInstanceBandwidthRequest()
    request.instanceId = instance_id
    request.bandwidthOutMbps = mbps
    return client.ModifyInstanceBandwidth(request)


def bandwidth(tenant: Tenant, version: str, instance_id: str) -> int:
    """The instance's bandwidth once no change is in progress."""
    request = models(version).DescribeInstanceInternetStatusRequest()
    request.instanceId = instance_id
    client = tenant.client(version)

    def settled() -> int | None:
        status = client.DescribeInstanceInternetStatus(request)
        return (
            int(status.internetMaxBandwidthOut)
            if status.modifiedBandwidthStatus == "Enable"
            else None
        )

    return int(wait_until(settled))


def next_second_after(timestamp: str) -> None:
    """Wait until the wall clock's second is past ``timestamp`` (a new SDK signature)."""
    wait_until(lambda: int(time.time()) > int(timestamp), timeout=5, interval=0.02)


def past_grace(timestamp: str) -> None:
    """Wait until a copy of a request signed at ``timestamp`` counts as a replay (a copy within
    replay.GRACE_SECONDS of its timestamp is a legitimate duplicate)."""
    wait_until(lambda: time.time() > int(timestamp) + GRACE_SECONDS + 1, timeout=10, interval=0.05)


def timestamp_of(headers: dict[str, str]) -> str:
    return {name.lower(): value for name, value in headers.items()}["x-zc-timestamp"]


def test_captured_write_resent_is_refused(tenant: Tenant, version: str) -> None:
    """The issue's scenario: a postpaid 200 -> 310 Mbps change, captured, sent again after the
    user went back to 200."""
    iid = tenant.instance(bandwidth=200, instance_charge_type="POSTPAID")
    client, captured = capturing_client(tenant, version)
    modify(client, version, iid, 310)
    assert bandwidth(tenant, version, iid) == 310
    modify(client, version, iid, 200)
    assert bandwidth(tenant, version, iid) == 200
    orders = len(tenant.orders())

    past_grace(timestamp_of(captured.requests[0][0]))
    message = assert_error(captured.resend(tenant.stack, 0), 401, REPLAYED)
    assert "ModifyInstanceBandwidth" in message
    assert "again" in message
    assert bandwidth(tenant, version, iid) == 200
    assert len(tenant.orders()) == orders

    # The user's own fresh call with the same body is a new signature: it passes.
    next_second_after(timestamp_of(captured.requests[0][0]))
    modify(client, version, iid, 310)
    assert bandwidth(tenant, version, iid) == 310
    assert captured.requests[-1][1] == captured.requests[0][1]  # the same body


def test_reads_and_failed_writes_burn_no_signature(tenant: Tenant) -> None:
    client, captured = capturing_client(tenant)
    assert client.DescribeZones(models(V2026).DescribeZonesRequest()).zoneSet
    assert assert_success(captured.resend(tenant.stack))["zoneSet"]  # reads are not guarded
    # A write refused by its rules rolled back: sending it again gets the same answer.
    iid = tenant.instance(bandwidth=100, status="STOPPED")
    with pytest.raises(Exception, match="OPERATION_DENIED_INSTANCE_NOT_RUNNING"):
        modify(client, V2026, iid, 150)
    again = captured.resend(tenant.stack)
    assert_error(again, 403, "OPERATION_DENIED_INSTANCE_NOT_RUNNING")


def test_rate_limited_sdk_retries_pass(make_stack: StackFactory, version: str) -> None:
    """The SDK retries REQUEST_LIMIT_EXCEEDED by signing again; within the same second the
    retry carries the same signature as the refused attempt, which burned nothing."""
    from zenlayercloud.common.config import Config
    from zenlayercloud.common.credential import Credential

    stack = make_stack(ZBMC_RATE_LIMIT="2/s,burst=1")
    tenant = stack.tenant(balance="100000.00")
    iid, other = tenant.instance(bandwidth=100), tenant.instance(bandwidth=100)
    module = "v20260201" if version == V2026 else "v20221120"
    bmc = __import__(f"zenlayercloud.bmc.{module}.bmc_client", fromlist=["BmcClient"])
    seen: list[tuple[str, int]] = []

    class Client(bmc.BmcClient):  # type: ignore[misc,name-defined]
        def _send_request(self, req: Any) -> Any:
            response = super()._send_request(req)
            seen.append((req.header["Authorization"], response.status))
            return response

    config = Config(
        scheme="http",
        domain=stack.host,
        rate_limit_max_retries=5,
        rate_limit_retry_duration=lambda _index: 0.15,  # one token per 500 ms
    )
    client = Client(Credential(tenant.access_key_id, tenant.access_key_password), config)
    # Early in a second, so that the attempts below share their timestamp.
    wait_until(lambda: time.time() % 1 < 0.1, timeout=5, interval=0.005)
    first = modify(client, version, other, 150)  # takes the action's one token
    order = modify(client, version, iid, 150)
    assert order.orderNumber
    statuses = [status for _, status in seen[1:]]
    assert statuses[0] == 429, statuses
    assert statuses[-1] == 200, statuses
    assert seen[1][0] == seen[-1][0]  # the retry re-sent the refused attempt's signature
    numbers = {item["orderNumber"] for item in tenant.orders()}
    assert numbers == {first.orderNumber, order.orderNumber}


def _fresh_stack(make_stack: StackFactory, tmp_path: Path, workers: int) -> Stack:
    stack = make_stack(start=False)
    stack.workers = workers
    stack.start(tmp_path / "server.log")
    return stack


def test_replays_are_refused_across_processes(
    make_stack: StackFactory, tmp_path: Path, version: str
) -> None:
    stack = _fresh_stack(make_stack, tmp_path, workers=2)
    tenant = stack.tenant()
    iid = tenant.instance(bandwidth=100)
    client, captured = capturing_client(tenant, version)
    order = modify(client, version, iid, 150)
    assert bandwidth(tenant, version, iid) == 150  # applied: no longer Processing
    balance = tenant.balance()
    past_grace(timestamp_of(captured.requests[0][0]))
    # Each copy on a new connection: the two processes share the listening socket.
    for _ in range(12):
        assert_error(captured.resend(stack), 401, REPLAYED)
    assert [item["orderNumber"] for item in tenant.orders()] == [order.orderNumber]
    assert tenant.balance() == balance


def test_concurrent_copies_apply_once(make_stack: StackFactory, tmp_path: Path) -> None:
    """Copies of one signed RenewInstance (each would charge a period) sent at once to two
    processes: one is applied and charged, every other one is refused."""
    stack = _fresh_stack(make_stack, tmp_path, workers=2)
    tenant = stack.tenant(balance="100000.00")
    iid = tenant.instance(bandwidth=100)
    key = (tenant.access_key_id, tenant.access_key_password)
    headers, body = stack.prepared({"instanceId": iid}, action="RenewInstance", key=key)
    past_grace(timestamp_of(headers))

    def send(_: int) -> requests.Response:
        return requests.post(stack.url, data=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(send, range(12)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [401] * 11, [r.text for r in responses]
    for response in responses:
        if response.status_code == 401:
            assert_error(response, 401, REPLAYED)
    renewals = [item for item in tenant.ledger() if item["kind"] != "TOPUP"]
    assert len(renewals) == 1, renewals


def test_the_worker_prunes_signatures_outside_the_window_in_slices(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(ZBMC_SIGNATURE_WINDOW_SECONDS="300")
    tenant = stack.tenant()
    iid = tenant.instance(bandwidth=100)
    modify(tenant.client(), V2026, iid, 150)
    old = int(time.time()) - 400
    engine = stack.engine()
    try:
        with engine.begin() as conn:
            conn.execute(
                seen_signatures.insert(),
                [{"signed_at": old + k, "digest": 7} for k in range(5)],
            )

        def count() -> int:
            with engine.connect() as conn:
                return int(
                    conn.execute(select(func.count()).select_from(seen_signatures)).scalar() or 0
                )

        assert count() == 6
        from zbmc.app import build_runtime
        from zbmc.settings import Settings
        from zbmc.worker import Batches

        runtime = build_runtime(Settings(database_url=stack.database_url))
        runtime.worker.batches = Batches(signatures=2)
        try:
            # A full slice says more is due; the next tick goes on at once, the last slice
            # (short) ends the pruning until the next minute.
            assert runtime.worker.prune_signatures() == 2
            first = runtime.worker.tick()
            assert (first.pruned, first.more) == (2, True)
            last = runtime.worker.tick()
            assert (last.pruned, last.more) == (1, False)
            assert runtime.worker.tick().pruned == 0
        finally:
            runtime.engine.dispose()
        assert count() == 1  # the fresh one stays until it leaves the window
    finally:
        engine.dispose()


def test_identical_writes_sent_together_are_all_applied(tenant: Tenant) -> None:
    """Three identical CreateInstances (a Terraform ``count`` over identical instances) signed
    in the same second share one signature: sent at once they are duplicates, not replays, and
    each creates its instance; the same signed request sent again later is refused."""
    body = {
        "zoneId": "SEL-A",
        "instanceTypeId": "M6C",
        "instanceChargeType": "POSTPAID",
        "internetChargeType": "ByBandwidth",
        "internetMaxBandwidthOut": 50,
        "instanceName": "same",
    }
    key = (tenant.access_key_id, tenant.access_key_password)
    stack = tenant.stack
    headers, raw = stack.prepared(body, action="CreateInstances", key=key)

    def send(_: int) -> requests.Response:
        return requests.post(stack.url, data=raw, headers=headers, timeout=60)

    with ThreadPoolExecutor(max_workers=3) as pool:
        responses = list(pool.map(send, range(3)))
    created = {
        instance_id
        for response in responses
        for instance_id in assert_success(response)["instanceIdSet"]
    }
    assert len(created) == 3
    past_grace(timestamp_of(headers))
    assert_error(send(0), 401, REPLAYED)
