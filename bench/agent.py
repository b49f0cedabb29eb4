"""The network agent's accuracy and speed (docs/performance.md, docs/drivers.md). Needs root,
iproute2, nftables and iperf3.

For 1, 10 and 100 instances on one host (network namespaces, veth pairs): every instance's
bandwidth is changed through the official SDK (ModifyInstanceBandwidth) to 10, 100, then 1000
Mbps, and the table shows, per cap, the time from the last change accepted until every instance
is Enable with the cap in its kernel, and the TCP throughput iperf3 measures through instance 0.
Then the time one agent pass takes for 1000 instances: the first (creating everything), a pass
with nothing to do, and one changing every cap.

    .venv/bin/python bench/agent.py [--sizes 1,10,100] [--seconds 5] [--pass-instances 1000]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import update
from tests.harness import Stack, Tenant, database, free_port
from zenlayercloud.bmc.v20260201 import models

from zbmc.agent.client import AdminClient
from zbmc.agent.counters import Counters
from zbmc.agent.kernel import BYTES_PER_MBPS, Kernel, ifb_name
from zbmc.agent.lab import Lab, unavailable
from zbmc.agent.meter import Meter
from zbmc.agent.reconciler import Agent
from zbmc.db.engine import create_db_engine, unit_of_work
from zbmc.db.tables import instances
from zbmc.provisioning import InstanceSpec, provision
from zbmc.store import attachments

TOKEN = "bench-agent-token"


def caps(lab: Lab) -> dict[str, int]:
    snap = Kernel(lab.host).snapshot()
    found = {}
    for k in range(lab.instances):
        device = snap.get(lab.interface(k))
        ifb = snap.get(ifb_name(device.ifindex)) if device else None
        if ifb is not None and ifb.rate is not None:
            found[lab.interface(k)] = ifb.rate // BYTES_PER_MBPS
    return found


def provisioned(stack: Stack, tenant: Tenant, lab: Lab, mbps: int) -> list[str]:
    engine = create_db_engine(stack.database_url)
    ids = []
    with unit_of_work(engine) as conn:
        for k in range(lab.instances):
            spec = InstanceSpec(
                tenant_id=tenant.tenant_id,
                zone_id="HKG-A",
                instance_type_id="M6C",
                instance_charge_type="POSTPAID",
                internet_charge_type="ByBandwidth",
                bandwidth=mbps,
            )
            instance_id = provision(conn, spec, int(time.time()))
            attachments.attach(conn, instance_id, lab.host, lab.interface(k), int(time.time()))
            ids.append(instance_id)
    engine.dispose()
    return ids


def accuracy(size: int, seconds: float, work: Path) -> list[str]:
    lab = Lab(prefix=f"zb{os.getpid() % 1000}", instances=size)
    lab.destroy()
    lab.build()
    rows = []
    with database("sqlite", work) as url:
        stack = Stack(backend="sqlite", database_url=url, port=free_port())
        stack.admin.run("db", "upgrade")
        stack.admin.run("catalogue", "load", "--demo")
        stack.start(work / "server.log", ZBMC_DRIVER="agent", ZBMC_ADMIN_TOKEN=TOKEN)
        import subprocess

        agent = subprocess.Popen(
            [
                *(sys.executable, "-m", "zbmc", "agent", "--api", f"http://{stack.host}"),
                *("--host", lab.host, "--netns", lab.host, "--state-dir", str(work)),
                *("--interval", "0.2", "--sample-interval", "60"),
            ],
            env={**os.environ, "ZBMC_ADMIN_TOKEN": TOKEN},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            tenant = stack.tenant(balance="10000000.00")
            ids = provisioned(stack, tenant, lab, 5)
            while len(caps(lab)) < size:
                time.sleep(0.1)
            client = tenant.client()
            for cap in (10, 100, 1000):
                for instance_id in ids:
                    request = models.ModifyInstanceBandwidthRequest()
                    request.instanceId, request.bandwidthOutMbps = instance_id, cap
                    client.ModifyInstanceBandwidth(request)
                accepted = time.perf_counter()
                while not all(v == cap for v in caps(lab).values()) or not _enabled(stack, ids):
                    time.sleep(0.02)
                applied = time.perf_counter() - accepted
                ratios = []
                for _run in range(3):
                    report = lab.iperf(0, seconds)
                    ratios.append(report["end"]["sum_received"]["bits_per_second"] / (cap * 1e6))
                best = max(ratios)
                rows.append(
                    f"| {size} | {cap} | {best * cap:.1f} | {best:.3f}"
                    f" (runs {', '.join(f'{r:.3f}' for r in ratios)}) | {applied:.2f} s |"
                )
                print(rows[-1], flush=True)
        finally:
            agent.terminate()
            agent.wait(timeout=30)
            stack.stop()
            lab.destroy()
    return rows


def _enabled(stack: Stack, ids: list[str]) -> bool:
    engine = create_db_engine(stack.database_url)
    with engine.connect() as conn:
        from sqlalchemy import func, select

        waiting = conn.execute(
            select(func.count())
            .select_from(instances)
            .where(instances.c.instance_id.in_(ids), instances.c.bw_order.is_not(None))
        ).scalar_one()
    engine.dispose()
    return int(waiting) == 0


def pass_times(count: int, work: Path) -> list[str]:
    lab = Lab(prefix=f"zp{os.getpid() % 1000}", instances=count, namespaces=False)
    lab.destroy()
    lab.build()
    rows = []
    with database("sqlite", work) as url:
        stack = Stack(backend="sqlite", database_url=url, port=free_port())
        stack.admin.run("db", "upgrade")
        stack.admin.run("catalogue", "load", "--demo")
        stack.start(work / "server.log", ZBMC_DRIVER="agent", ZBMC_ADMIN_TOKEN=TOKEN)
        try:
            tenant = stack.tenant(balance="10000000.00")
            ids = provisioned(stack, tenant, lab, 10)
            agent = Agent(
                AdminClient(f"http://{stack.host}", TOKEN),
                Kernel(lab.host),
                Counters(lab.host),
                Meter.load(work / "pass.json", lab.host),
                lab.host,
            )
            first = agent.run_pass()
            rows.append(
                f"| first pass (creates {len(first.changed)} caps) | {first.seconds:.2f} s |"
            )
            idle = [agent.run_pass().seconds for _ in range(5)]
            rows.append(
                f"| pass with nothing to change (median of 5) | {statistics.median(idle):.2f} s |"
            )
            engine = create_db_engine(url)
            with unit_of_work(engine) as conn:
                conn.execute(
                    update(instances).where(instances.c.instance_id.in_(ids)).values(bandwidth=20)
                )
            engine.dispose()
            changed = agent.run_pass()
            rows.append(f"| pass changing {len(changed.changed)} caps | {changed.seconds:.2f} s |")
            for row in rows:
                print(row, flush=True)
        finally:
            stack.stop()
            lab.destroy()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,10,100")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--pass-instances", type=int, default=1000)
    args = parser.parse_args()
    reason = unavailable()
    if reason:
        sys.exit(f"bench/agent.py {reason}")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"{platform.node()}, {os.cpu_count()} CPUs, kernel {platform.release()}, {when}")
    print("| instances | cap Mbps | measured Mbps | ratio (best of 3) | time to apply |")
    print("|---|---|---|---|---|")
    for size in [int(s) for s in args.sizes.split(",") if s]:
        with tempfile.TemporaryDirectory() as work:
            accuracy(size, args.seconds, Path(work))
    print(f"\n| agent pass, {args.pass_instances} instances | duration |")
    print("|---|---|")
    with tempfile.TemporaryDirectory() as work:
        pass_times(args.pass_instances, Path(work))


if __name__ == "__main__":
    main()
