"""Operating the server: health and readiness, refusing a stale schema, Prometheus metrics,
JSON logs, --no-worker with a separate worker, and graceful shutdown on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import text

from tests.conftest import StackFactory
from tests.harness import Stack, Tenant, free_port, wait_until
from zbmc.cli.main import main as cli_main
from zbmc.signature import sign

BODY = b"{}"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(stack: Stack) -> Samples:
    from prometheus_client.parser import text_string_to_metric_families

    response = requests.get(f"http://{stack.host}/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def upgrade(tenant: Tenant, instance_id: str, mbps: int) -> str:
    from zenlayercloud.bmc.v20260201 import models

    request = models.ModifyInstanceBandwidthRequest()
    request.instanceId = instance_id
    request.bandwidthOutMbps = mbps
    return str(tenant.client().ModifyInstanceBandwidth(request).orderNumber)


def set_schema_version(stack: Stack, version: str) -> str:
    """Rewrite the recorded migration (the tables stay as they are); return the old one."""
    engine = stack.engine()
    try:
        with engine.begin() as conn:
            old = str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": version})
    finally:
        engine.dispose()
    return old


# --- health and readiness ---------------------------------------------------------------------


def test_healthz_and_readyz_answer_when_all_is_well(stack: Stack) -> None:
    live = requests.get(f"http://{stack.host}/healthz", timeout=10)
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    ready = requests.get(f"http://{stack.host}/readyz", timeout=10)
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})


def test_readyz_is_503_while_the_schema_is_behind(make_stack: StackFactory) -> None:
    stack = make_stack()
    head = set_schema_version(stack, "0001")
    ready = requests.get(f"http://{stack.host}/readyz", timeout=10)
    assert ready.status_code == 503
    assert ready.json()["status"] == "schema behind"
    # Liveness is about the process, not the database.
    assert requests.get(f"http://{stack.host}/healthz", timeout=10).status_code == 200
    set_schema_version(stack, head)
    assert requests.get(f"http://{stack.host}/readyz", timeout=10).status_code == 200


def test_server_refuses_to_start_on_a_schema_that_is_behind(make_stack: StackFactory) -> None:
    stack = make_stack(start=False)
    set_schema_version(stack, "0001")
    result = subprocess.run(
        [sys.executable, "-m", "zbmc", "serve", "--port", str(free_port())],
        env={**os.environ, "ZBMC_DATABASE_URL": stack.database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "schema is behind" in result.stderr
    assert "zbmc admin db upgrade" in result.stderr


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_count_requests_by_action_and_code(stack: Stack, tenant: Tenant) -> None:
    from zenlayercloud.bmc.v20260201 import models
    from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
        ZenlayerCloudSdkException,
    )

    before = scrape(stack)
    client = tenant.client()
    client.DescribeZones(models.DescribeZonesRequest())
    client.DescribeZones(models.DescribeZonesRequest())
    request = models.ModifyInstanceBandwidthRequest()
    request.instanceId = "no-such-instance"
    request.bandwidthOutMbps = 20
    with pytest.raises(ZenlayerCloudSdkException, match="INVALID_INSTANCE_NOT_FOUND"):
        client.ModifyInstanceBandwidth(request)
    assert stack.raw({}, action="NoSuchAction").status_code == 400
    after = scrape(stack)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("zbmc_requests_total", action="DescribeZones", code="OK") == 2
    assert delta("zbmc_request_duration_seconds_count", action="DescribeZones") == 2
    assert delta("zbmc_request_duration_seconds_sum", action="DescribeZones") > 0
    assert (
        delta(
            "zbmc_requests_total",
            action="ModifyInstanceBandwidth",
            code="INVALID_INSTANCE_NOT_FOUND",
        )
        == 1
    )
    # Client-chosen action names never become label values.
    assert delta("zbmc_requests_total", action="unknown", code="INVALID_ACTION") == 1
    assert not any(labels and ("action", "NoSuchAction") in labels for _, labels in after)
    assert value(after, "zbmc_database_up") == 1
    ticks = value(after, "zbmc_worker_ticks_total")
    wait_until(lambda: value(scrape(stack), "zbmc_worker_ticks_total") > ticks)
    # Every tick, finished or failed, is timed.
    timed = scrape(stack)
    assert value(timed, "zbmc_worker_tick_duration_seconds_count") >= value(
        timed, "zbmc_worker_ticks_total"
    )
    assert value(timed, "zbmc_worker_tick_duration_seconds_sum") > 0


def test_metrics_count_what_the_worker_applied(stack: Stack, tenant: Tenant) -> None:
    applied = value(scrape(stack), "zbmc_worker_events_total", kind="applied")
    upgrade(tenant, tenant.instance(bandwidth=100), 200)  # Processing until the worker applies it
    wait_until(lambda: value(scrape(stack), "zbmc_worker_events_total", kind="applied") > applied)


def test_metrics_report_ledger_totals_and_worker_progress(make_stack: StackFactory) -> None:
    # No worker in the API process: orders wait until `zbmc worker` runs (production layout).
    stack = make_stack(ZBMC_RUN_WORKER="0")
    tenant = stack.tenant(balance="1000.00")
    samples = scrape(stack)
    assert value(samples, "zbmc_tenants") == 1
    assert value(samples, "zbmc_balance_cents") == 100000
    assert value(samples, "zbmc_ledger_amount_cents", kind="TOPUP") == 100000
    assert value(samples, "zbmc_ledger_entries", kind="TOPUP") == 1
    assert value(samples, "zbmc_worker_ticks_total") == 0

    order = upgrade(tenant, tenant.instance(bandwidth=100), 200)
    charge = [e for e in tenant.ledger() if e["kind"] == "CHARGE"]
    assert [e["orderNumber"] for e in charge] == [order]
    cents = int(Decimal(str(charge[0]["amount"])) * 100)
    assert cents < 0

    def lagging() -> Samples | None:
        current = scrape(stack)
        return current if value(current, "zbmc_worker_lag_seconds") >= 1 else None

    samples = wait_until(lagging)
    assert value(samples, "zbmc_ledger_amount_cents", kind="CHARGE") == cents
    assert value(samples, "zbmc_balance_cents") == 100000 + cents
    assert value(samples, "zbmc_worker_due_orders") == 1

    result = CliRunner().invoke(
        cli_main, ["worker", "--once", "--json"], env={"ZBMC_DATABASE_URL": stack.database_url}
    )
    assert result.exit_code == 0, result.output
    samples = scrape(stack)
    assert value(samples, "zbmc_worker_due_orders") == 0
    assert value(samples, "zbmc_worker_lag_seconds") == 0


def test_worker_process_serves_its_own_metrics(make_stack: StackFactory, tmp_path: Path) -> None:
    stack = make_stack(start=False)
    port = free_port()
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [
                *(sys.executable, "-m", "zbmc", "worker"),
                *("--interval", "0.05", "--metrics-port", str(port)),
            ],
            env={**os.environ, "ZBMC_DATABASE_URL": stack.database_url},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        probe = Stack(backend=stack.backend, database_url=stack.database_url, port=port)

        def ticks() -> float:
            try:
                return value(scrape(probe), "zbmc_worker_ticks_total")
            except requests.ConnectionError:
                assert worker.poll() is None, log.read_text()
                return 0.0

        wait_until(lambda: ticks() >= 2, timeout=60)
        assert value(scrape(probe), "zbmc_database_up") == 1
    finally:
        worker.terminate()
        worker.wait(timeout=30)


# --- logs ---------------------------------------------------------------------------------------


def test_json_logs_carry_the_request_fields(make_stack: StackFactory) -> None:
    from zenlayercloud.bmc.v20260201 import models

    stack = make_stack(ZBMC_LOG_FORMAT="json")
    tenant = stack.tenant()
    response = tenant.client().DescribeZones(models.DescribeZonesRequest())
    request_id = response.requestId
    assert stack.log_path is not None

    log_path = stack.log_path

    def access_line() -> dict[str, Any] | None:
        lines = [line for line in log_path.read_text().splitlines() if line.strip()]
        entries = [json.loads(line) for line in lines]  # every line is one JSON object
        return next((e for e in entries if e.get("request_id") == request_id), None)

    entry = wait_until(access_line)
    assert entry["logger"] == "zbmc.access"
    assert entry["level"] == "info"
    assert entry["tenant_id"] == tenant.tenant_id
    assert entry["action"] == "DescribeZones"
    assert (entry["code"], entry["status"]) == ("OK", 200)
    assert isinstance(entry["duration_ms"], float | int)
    assert entry["duration_ms"] >= 0
    assert entry["time"].endswith("+00:00")
    assert "DescribeZones" in entry["message"]


# --- graceful shutdown --------------------------------------------------------------------------


def held_request(stack: Stack, tenant: Tenant) -> socket.socket:
    """A signed DescribeZones whose body is not sent yet. ``Expect: 100-continue`` makes the
    server say when the application is waiting for the body, i.e. the request is in flight."""
    timestamp = str(int(time.time()))
    signature = sign(tenant.access_key_password, "application/json", stack.host, timestamp, BODY)
    head = (
        "POST /api/v2/bmc HTTP/1.1\r\n"
        f"Host: {stack.host}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n"
        "Expect: 100-continue\r\n"
        "X-ZC-Action: DescribeZones\r\n"
        "X-ZC-Version: 2026-02-01\r\n"
        f"X-ZC-Timestamp: {timestamp}\r\n"
        f"Authorization: ZC2-HMAC-SHA256 Credential={tenant.access_key_id}, "
        f"SignedHeaders=content-type;host, Signature={signature}\r\n"
        "\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", stack.port), timeout=60)
    sock.sendall(head)
    interim = sock.recv(1024)
    assert interim.startswith(b"HTTP/1.1 100"), interim
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.partition(": ")[::2] for line in lines[1:])
    length = int({k.lower(): v for k, v in fields.items()}["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection before the response was complete"
        rest += chunk
    return int(lines[0].split()[1]), json.loads(rest)


def count(path: Path | None, text_: str) -> int:
    assert path is not None
    return path.read_text().count(text_)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_the_request_in_flight_finish(
    make_stack: StackFactory, tmp_path: Path, workers: int
) -> None:
    stack = make_stack(start=False)
    stack.workers = workers
    stack.start(tmp_path / "server.log")
    wait_until(lambda: count(stack.log_path, "Application startup complete") == workers, 120)
    tenant = stack.tenant()
    assert stack.process is not None
    with held_request(stack, tenant) as sock:
        stack.process.send_signal(signal.SIGTERM)
        # Every API process has begun shutting down while our request waits for its body.
        wait_until(lambda: count(stack.log_path, "Shutting down") == workers, 60)
        assert stack.process.poll() is None
        sock.sendall(BODY)
        status, body = read_response(sock)
    assert status == 200
    assert {z["zoneId"] for z in body["response"]["zoneSet"]} >= {"SEL-A"}
    code = stack.process.wait(timeout=60)
    assert code in (0, -signal.SIGTERM)
    assert "Finished server process" in (stack.log_path or Path()).read_text()


def test_request_latencies_land_in_the_buckets_histogram_observe_picks() -> None:
    """observe_request adds to prometheus-client's value objects directly: each latency lands
    in the bucket Histogram.observe picks (a bound itself counts as within it)."""
    from prometheus_client import REGISTRY, CollectorRegistry, Histogram

    from zbmc import metrics
    from zbmc.auth import Credentials
    from zbmc.pipeline import Call, Outcome

    registry = CollectorRegistry()
    bounds = metrics.LATENCY._upper_bounds
    reference = Histogram("reference", "same buckets", buckets=bounds, registry=registry)

    def buckets(source: Any, name: str, **labels: str) -> dict[str, float]:
        return {
            sample.labels["le"]: sample.value
            for family in source.collect()
            for sample in family.samples
            if sample.name == f"{name}_bucket"
            and all(sample.labels.get(k) == v for k, v in labels.items())
        }

    action = "DescribeZones"
    call = Call("T1", "bmc", action, None, Credentials(None, None, "", "", b""))
    before = buckets(REGISTRY, "zbmc_request_duration_seconds", action=action)
    for seconds in (0.0, 0.0005, 0.001, 0.0011, 0.0025, 0.004, 0.05, 0.07, 1.0, 4.9, 5.0, 99.0):
        metrics.observe_request(call, Outcome(200, b"", "OK"), seconds, {action})
        reference.observe(seconds)
    after = buckets(REGISTRY, "zbmc_request_duration_seconds", action=action)
    assert {le: after[le] - before.get(le, 0.0) for le in after} == buckets(registry, "reference")


def test_tick_events_count_what_was_done_not_whether_more_is_due() -> None:
    from prometheus_client import REGISTRY

    from zbmc import metrics
    from zbmc.worker import TickReport

    def sample(kind: str) -> float | None:
        return REGISTRY.get_sample_value("zbmc_worker_events_total", {"kind": kind})

    before = sample("applied") or 0.0
    metrics.record_tick(TickReport(now=1, applied=3, more=True))
    assert sample("applied") == before + 3
    assert sample("more") is None
    assert sample("now") is None
