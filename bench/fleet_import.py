"""Times `zbmc admin instance import` of a generated fleet (JSON lines and CSV) on SQLite or
PostgreSQL, as an operator runs it: a separate process, start-up included.

    .venv/bin/python bench/fleet_import.py [--instances 10000] [--backend sqlite|postgres]

The fleet mixes zones, charge types and traffic packages; one instance in seven brings its own
public address from outside every pool, the others get theirs from the demo pools.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

POSTGRES = os.environ.get(
    "ZBMC_BENCH_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)


def records(tenant: str, count: int, offset: int) -> list[dict[str, Any]]:
    result = []
    for i in range(count):
        record: dict[str, Any] = {
            "tenantId": tenant,
            "zoneId": ("SEL-A", "HKG-A")[i % 2],
            "instanceTypeId": "M6C",
            "instanceChargeType": "POSTPAID" if i % 3 == 0 else "PREPAID",
            "internetChargeType": "ByTrafficPackage" if i % 5 == 0 else "ByBandwidth",
            "bandwidthOutMbps": 100,
            "instanceName": f"fleet-{i:05d}",
        }
        if i % 7 == 0:
            n = offset + i // 7
            record["primaryPublicIpAddress"] = f"100.64.{n // 250}.{1 + n % 250}"
        result.append(record)
    return result


def admin(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "zbmc", "admin", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zbmc-import-"))
    drop = None
    if args.backend == "sqlite":
        url = f"sqlite:///{work / 'zbmc.sqlite3'}"
    else:
        import psycopg

        name = f"zbmc_bench_{uuid.uuid4().hex[:8]}"
        libpq = POSTGRES.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = POSTGRES.rsplit("/", 1)[0] + "/" + name
        drop = (libpq, name)
    env = {**os.environ, "ZBMC_DATABASE_URL": url}
    try:
        admin(env, "db", "upgrade")
        admin(env, "catalogue", "load", "--demo")
        tenant = json.loads(admin(env, "tenant", "create", "--name", "fleet", "--json"))["tenantId"]
        jsonl = work / "fleet.jsonl"
        jsonl.write_text("".join(json.dumps(r) + "\n" for r in records(tenant, args.instances, 0)))
        rows = records(tenant, args.instances, args.instances)
        with (work / "fleet.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}))
            writer.writeheader()
            writer.writerows(rows)
        print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores, {args.backend}")
        for path in (jsonl, work / "fleet.csv"):
            start = time.perf_counter()
            admin(env, "instance", "import", str(path))
            took = time.perf_counter() - start
            rate = args.instances / took
            print(f"{path.suffix:>7}  {args.instances} instances  {took:.2f} s  ({rate:.0f}/s)")
    finally:
        if drop is not None:
            import psycopg

            with psycopg.connect(drop[0], autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{drop[1]}" WITH (FORCE)')


if __name__ == "__main__":
    main()
