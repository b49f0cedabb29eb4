"""Time one worker catch-up (``Worker.catch_up``, what ``zbmc worker --once`` runs) over N
seeded due downgrades, in-process, on a fresh SQLite file or PostgreSQL database.

    .venv/bin/python bench/worker_catchup.py 100000 postgres
    .venv/bin/python bench/worker_catchup.py 100000 sqlite

Each seeded instance is PREPAID ByBandwidth, its month ended a minute ago, with a downgrade
200 -> 100 Mbps waiting for that moment (bench/seed.py: due_downgrades), so the catch-up applies
N orders and renews N periods.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from decimal import Decimal

sys.path.insert(0, os.path.dirname(__file__))

import psycopg
from seed import due_downgrades

from zbmc import catalogue
from zbmc.clock import Clock
from zbmc.db.engine import create_db_engine, unit_of_work
from zbmc.db.migrate import upgrade
from zbmc.drivers import NoopDriver
from zbmc.tenancy import create_tenant
from zbmc.worker import Worker

ADMIN = os.environ.get("ZBMC_BENCH_POSTGRES_URL", "postgresql://root@127.0.0.1:5432/test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int)
    parser.add_argument("backend", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    name = f"zbmc_bench_{secrets.token_hex(4)}"
    if args.backend == "postgres":
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='zbmc-bench-')}/zbmc.sqlite3"
    engine = create_db_engine(url)
    try:
        upgrade(engine)
        clock = Clock()
        with unit_of_work(engine) as conn:
            catalogue.load(conn, catalogue.demo())
            key = create_tenant(conn, "bench", Decimal("100000000"), clock.now(conn))
            now = clock.now(conn)
        due_downgrades(engine, key.tenant_id, now, args.count)
        worker = Worker(engine, clock, NoopDriver())
        started = time.perf_counter()
        report = worker.catch_up()
        elapsed = time.perf_counter() - started
        print(f"{args.backend}: {args.count} due downgrades: {report.as_dict()} in {elapsed:.1f} s")
    finally:
        engine.dispose()
        if args.backend == "postgres":
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
