"""How long a snapshot restore and a reset take: what a test suite pays per test.

    .venv/bin/python bench/snapshots.py [--instances 200] [--rounds 30] [--backend sqlite]

Builds a database with the demo state plus ``--instances`` more instances (each with a charged
first period: a ledger entry each), saves a snapshot, then times
``--rounds`` restores and resets (empty, demo) in-process (``zbmc.snapshots``) and restores
through a live ``zbmc serve``'s ``POST /admin/v1/snapshots/NAME/restore``. Prints figures only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import requests

from zbmc.clock import Clock
from zbmc.db.engine import create_db_engine, unit_of_work
from zbmc.db.migrate import upgrade
from zbmc.demo import ensure_demo
from zbmc.provisioning import InstanceSpec, provision
from zbmc.snapshots import Snapshots
from zbmc.tenancy import top_up

TOKEN = "bench-token"


def seed(url: str, instances: int) -> None:
    engine = create_db_engine(url)
    upgrade(engine)
    clock = Clock()
    with unit_of_work(engine) as conn:
        key = ensure_demo(conn, clock).key
        now = clock.now(conn)
        top_up(conn, key.tenant_id, Decimal("1000000"), now)
        for n in range(instances):
            provision(
                conn,
                InstanceSpec(
                    tenant_id=key.tenant_id,
                    zone_id="SEL-A",
                    instance_type_id="M6C",
                    instance_charge_type="PREPAID",
                    internet_charge_type="ByBandwidth",
                    bandwidth=100,
                    traffic_package_tb=None,
                    status="RUNNING",
                    name=f"bench-{n}",
                    image_id="img-ubuntu-2404",
                    charge=True,
                ),
                now,
            )
    engine.dispose()


def timings(label: str, rounds: int, action: Callable[[], object]) -> None:
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    seconds.sort()
    p95 = seconds[min(len(seconds) - 1, int(len(seconds) * 0.95))]
    print(
        f"{label:<50} median {statistics.median(seconds) * 1000:8.1f} ms   "
        f"p95 {p95 * 1000:8.1f} ms   max {seconds[-1] * 1000:8.1f} ms"
    )


def http_restores(url: str, rounds: int) -> None:
    port = 18000 + os.getpid() % 1000
    env = {**os.environ, "ZBMC_DATABASE_URL": url, "ZBMC_ADMIN_TOKEN": TOKEN}
    server = subprocess.Popen(
        [sys.executable, "-m", "zbmc", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if requests.get(f"{base_url}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {TOKEN}"

        def restore_http() -> None:
            session.post(f"{base_url}/admin/v1/snapshots/bench/restore").raise_for_status()

        timings("restore, POST /admin/v1/snapshots/NAME/restore", rounds, restore_http)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.backend == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'zbmc.sqlite3'}"
        else:
            import psycopg

            base = os.environ.get("ZBMC_BENCH_POSTGRES_URL", "postgresql://root@127.0.0.1/test")
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute("DROP DATABASE IF EXISTS zbmc_bench_snapshots WITH (FORCE)")
                conn.execute("CREATE DATABASE zbmc_bench_snapshots")
            url = "postgresql+psycopg://" + base.split("://", 1)[1].rsplit("/", 1)[0]
            url += "/zbmc_bench_snapshots"
        seed(url, args.instances)
        engine = create_db_engine(url)
        store = Snapshots(engine, Clock())
        started = time.perf_counter()
        store.save("bench")
        print(f"{args.backend}: demo + {args.instances} instances")
        print(f"{'save (once)':<50} {(time.perf_counter() - started) * 1000:8.1f} ms")
        timings("restore, in-process", args.rounds, lambda: store.restore("bench"))
        timings("reset to empty, in-process", args.rounds, store.reset)
        timings("reset to the demo, in-process", args.rounds, lambda: store.reset(demo=True))
        store.restore("bench")
        engine.dispose()

        http_restores(url, args.rounds)
        if args.backend == "postgres":
            import psycopg

            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute("DROP DATABASE IF EXISTS zbmc_bench_snapshots WITH (FORCE)")


if __name__ == "__main__":
    main()
