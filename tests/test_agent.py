"""`zbmc agent` on real interfaces: a host built from network namespaces and veth pairs, caps
set through the official SDK, enforced by tc and measured with iperf3, traffic counted by
nftables and stored as samples (docs/drivers.md). Needs root, iproute2, nftables and iperf3
(installed by .ci/run); elsewhere every test here is skipped with that reason."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from zenlayercloud.bmc.v20260201 import models

from tests.conftest import StackFactory
from tests.harness import Stack, Tenant, wait_until
from zbmc.agent.client import AdminClient
from zbmc.agent.counters import Counters
from zbmc.agent.kernel import BYTES_PER_MBPS, Kernel, ifb_name
from zbmc.agent.lab import Lab, unavailable
from zbmc.agent.meter import Meter
from zbmc.agent.reconciler import Agent
from zbmc.app import build_runtime
from zbmc.catalogue import demo_text
from zbmc.db.tables import orders, traffic_samples
from zbmc.settings import Settings

REASON = unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"agent namespace tests: {REASON}")
TOKEN = "agent-test-token"


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    marker = request.node.get_closest_marker("instances")
    count = marker.args[0] if marker else 1
    built = Lab(prefix=f"zt{os.getpid() % 10000}", instances=count)
    built.destroy()
    try:
        built.build()
        yield built
    finally:
        built.destroy()  # its namespaces, and with them every device, qdisc and nft table


def status(tenant: Tenant, instance_id: str) -> tuple[str, int]:
    request = models.DescribeInstanceInternetStatusRequest()
    request.instanceId = instance_id
    answer = tenant.client().DescribeInstanceInternetStatus(request)
    return answer.modifiedBandwidthStatus, answer.internetMaxBandwidthOut


def modify(tenant: Tenant, instance_id: str, mbps: int) -> str:
    request = models.ModifyInstanceBandwidthRequest()
    request.instanceId, request.bandwidthOutMbps = instance_id, mbps
    return str(tenant.client().ModifyInstanceBandwidth(request).orderNumber)


def out_cap(lab: Lab, k: int) -> int | None:
    snap = Kernel(lab.host).snapshot()
    ifb = snap.get(ifb_name(snap.devices[lab.interface(k)].ifindex))
    if ifb is None or not ifb.capped or ifb.rate is None:
        return None
    return ifb.rate // BYTES_PER_MBPS


def agent_for(stack: Stack, lab: Lab, state: Path, clock: Any = None) -> Agent:
    import time

    return Agent(
        AdminClient(f"http://{stack.host}", TOKEN),
        Kernel(lab.host),
        Counters(lab.host),
        Meter.load(state / "agent.json", lab.host),
        lab.host,
        sample_interval=1,
        clock=clock or time.time,
    )


def stored_out_bytes(stack: Stack, instance_id: str) -> int:
    engine = stack.engine()
    with engine.connect() as conn:
        total = conn.execute(
            select(func.coalesce(func.sum(traffic_samples.c.out_bytes), 0)).where(
                traffic_samples.c.instance_id == instance_id
            )
        ).scalar_one()
    engine.dispose()
    return int(total)


def settled_out_bytes(stack: Stack, instance_id: str) -> int:
    """The stored total once two readings 1.5 s apart agree (the last sample is in)."""
    import time

    last = -1
    while True:
        total = stored_out_bytes(stack, instance_id)
        if total == last:
            return total
        last = total
        time.sleep(1.5)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_caps_hold_within_90_to_102_percent_and_samples_match_iperf3(
    make_stack: StackFactory, lab: Lab, tmp_path: Path
) -> None:
    stack = make_stack(ZBMC_DRIVER="agent", ZBMC_ADMIN_TOKEN=TOKEN)
    tenant = stack.tenant(balance="100000.00")
    instance_id = tenant.instance(zone="HKG-A", instance_charge_type="POSTPAID", bandwidth=5)
    stack.admin.run(
        "network", "attach", instance_id, "--host", lab.host, "--interface", lab.interface(0)
    )
    log = (tmp_path / "agent.log").open("wb")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "zbmc", "agent", "--api", f"http://{stack.host}"),
                *("--host", lab.host, "--netns", lab.host, "--state-dir", str(tmp_path)),
                *("--interval", "0.2", "--sample-interval", "1", "--json"),
            ],
            env={**os.environ, "ZBMC_ADMIN_TOKEN": TOKEN},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    agent = start()
    try:
        wait_until(lambda: out_cap(lab, 0) == 5, timeout=30)
        for cap in (10, 100, 1000):
            order = modify(tenant, instance_id, cap)
            seen = wait_until(lambda: status(tenant, instance_id)[0] == "Enable", timeout=30)
            # Enable only once the kernel has the new cap, never with the old one.
            assert seen
            assert out_cap(lab, 0) == cap
            assert status(tenant, instance_id) == ("Enable", cap)
            assert order in {o["orderNumber"] for o in tenant.orders() if o["state"] == "ENABLED"}
            # CPU contention (2 shared cores) can only slow a run down, never beat the cap:
            # the best of up to three 3 s runs must reach 90 %, and none may pass 102 %.
            ratios = []
            for _run in range(3):
                report = lab.iperf(0, 3)
                ratios.append(report["end"]["sum_received"]["bits_per_second"] / (cap * 1e6))
                if ratios[-1] >= 0.90:
                    break
            # Bytes: a run paced below the cap, so that no queue is left behind the shaper when
            # iperf3 stops counting (at full speed up to the queue's bytes still cross after).
            before = settled_out_bytes(stack, instance_id)
            report = lab.iperf(0, 3, rate_mbps=cap * 8 // 10)
            sent = int(report["end"]["sum_received"]["bytes"])
            counted = settled_out_bytes(stack, instance_id) - before
            print(
                f"cap {cap} Mbps, MTU {lab.mtu}: throughput / cap {[round(r, 4) for r in ratios]},"
                f" iperf3 {sent} B, samples {counted} B ({counted / sent:.4f})"
            )
            assert max(ratios) >= 0.90, ratios
            assert all(r <= 1.02 for r in ratios), ratios
            assert abs(counted - sent) <= 0.01 * sent
            # A killed agent restarts from its state file: the next step's bytes still match.
            agent.kill()
            agent.wait()
            agent = start()
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        log.close()


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def tc(lab: Lab, *args: str) -> None:
    subprocess.run(["ip", "netns", "exec", lab.host, "tc", *args], check=True)


@pytest.mark.instances(2)
def test_passes_are_idempotent_repair_hand_changes_and_retry_refusals(  # noqa: PLR0915
    make_stack: StackFactory, lab: Lab, tmp_path: Path
) -> None:
    stack = make_stack(ZBMC_DRIVER="agent", ZBMC_ADMIN_TOKEN=TOKEN)
    tenant = stack.tenant(balance="100000.00")
    first = tenant.instance(zone="HKG-A", instance_charge_type="POSTPAID", bandwidth=20)
    second = tenant.instance(zone="HKG-A", instance_charge_type="POSTPAID", bandwidth=30)
    for k, instance_id in enumerate((first, second)):
        stack.admin.run(
            "network", "attach", instance_id, "--host", lab.host, "--interface", lab.interface(k)
        )
    clock = Clock()
    agent = agent_for(stack, lab, tmp_path, clock)
    report = agent.run_pass()
    assert sorted(report.changed) == sorted([first, second])
    assert (out_cap(lab, 0), out_cap(lab, 1)) == (20, 30)
    assert agent.run_pass().changed == []  # a right kernel: no command at all
    assert agent_for(stack, lab, tmp_path, clock).run_pass().changed == []  # a restart neither

    # A cap changed by hand, and a redirect removed by hand, are put back.
    ifb = ifb_name(Kernel(lab.host).snapshot().devices["vi0"].ifindex)
    hand_made = ["root", "tbf", "rate", "5mbit", "burst", "128k", "latency", "1s"]
    tc(lab, "qdisc", "change", "dev", ifb, *hand_made)
    tc(lab, "qdisc", "del", "dev", "vi1", "ingress")
    assert out_cap(lab, 0) == 5
    assert sorted(agent.run_pass().changed) == sorted([first, second])
    assert out_cap(lab, 0) == 20
    vi1 = Kernel(lab.host).snapshot().devices["vi1"]
    assert vi1.redirect_to == {ifb_name(vi1.ifindex)}

    # Without an agent pass the change stays Processing: the worker leaves it to the agent.
    order = modify(tenant, first, 40)
    worker = build_runtime(Settings(database_url=stack.database_url, driver="agent"))
    worker.worker.catch_up()
    worker.engine.dispose()
    assert status(tenant, first) == ("Processing", 20)
    report = agent.run_pass()
    assert report.changed == [first]
    assert report.enabled == 1
    assert status(tenant, first) == ("Enable", 40)
    assert out_cap(lab, 0) == 40

    # The kernel refuses (the interface is gone): the order stays Processing, the attempts are
    # recorded, the agent backs off and succeeds once the interface is back.
    subprocess.run(["ip", "-n", lab.host, "link", "set", "vi1", "name", "gone1"], check=True)
    order = modify(tenant, second, 50)
    report = agent.run_pass()
    assert report.failed == [second]
    assert status(tenant, second) == ("Processing", 30)
    engine = stack.engine()
    with engine.connect() as conn:
        row = conn.execute(select(orders).where(orders.c.order_number == order)).one()
    assert row.state == "PROCESSING"
    assert row.attempts == 1
    assert "vi1 does not exist" in (row.last_error or "")
    subprocess.run(["ip", "-n", lab.host, "link", "set", "gone1", "name", "vi1"], check=True)
    assert agent.run_pass().failed == []  # waiting for its retry time: nothing tried
    assert status(tenant, second) == ("Processing", 30)
    clock.now += 3
    report = agent.run_pass()
    assert report.changed == [second]
    assert report.enabled == 1
    assert status(tenant, second) == ("Enable", 50)
    assert out_cap(lab, 1) == 50
    with engine.connect() as conn:
        row = conn.execute(select(orders).where(orders.c.order_number == order)).one()
    engine.dispose()
    assert row.state == "ENABLED"
    assert row.attempts == 1

    # Detached: its cap, its IFB and its counters go; the other instance is untouched.
    stack.admin.run("network", "detach", second)
    report = agent.run_pass()
    assert report.changed == []
    assert len(report.removed) == 1
    snap = Kernel(lab.host).snapshot()
    assert not snap.devices["vi1"].ingress
    assert out_cap(lab, 0) == 40
    assert [d.name for d in snap.ifbs()] == [ifb_name(snap.devices["vi0"].ifindex)]
    assert set(Counters(lab.host).table().counters) == {f"o_{first}", f"i_{first}"}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_inbound_is_capped_when_the_catalogue_says_so(
    make_stack: StackFactory, lab: Lab, tmp_path: Path
) -> None:
    stack = make_stack(ZBMC_DRIVER="agent", ZBMC_ADMIN_TOKEN=TOKEN)
    text = demo_text().replace(
        "default_bandwidth_out = 10\n", "default_bandwidth_out = 10\ncap_inbound = true\n", 1
    )
    (tmp_path / "catalogue.toml").write_text(text)
    stack.admin.run("catalogue", "load", str(tmp_path / "catalogue.toml"))
    tenant = stack.tenant(balance="100000.00")
    instance_id = tenant.instance(zone="HKG-A", instance_charge_type="POSTPAID", bandwidth=100)
    stack.admin.run(
        "network", "attach", instance_id, "--host", lab.host, "--interface", lab.interface(0)
    )
    agent = agent_for(stack, lab, tmp_path)
    assert agent.run_pass().changed == [instance_id]
    assert Kernel(lab.host).snapshot().devices["vi0"].capped_at(100)
    assert out_cap(lab, 0) == 100
    report = lab.iperf(0, 3, reverse=True)
    ratio = report["end"]["sum_received"]["bits_per_second"] / 100e6
    print(f"inbound cap 100 Mbps: throughput / cap {ratio:.4f}")
    assert 0.90 <= ratio <= 1.02
