"""A/B comparison of two zbmc servers under the Modify load of bench/run.py.

    .venv/bin/python bench/ab.py --b ZBMC_GROUP_COMMIT=0
    .venv/bin/python bench/ab.py --a PYTHONPATH=/tmp/old-checkout/src --rounds 10
    .venv/bin/python bench/ab.py --backend postgres --a PYTHONPATH=/tmp/old-checkout/src

Both servers run at the same time (each idle while the other is measured), each on its own
database with the same pool of POSTPAID instances; the rounds alternate A, B, B, A, ... so that
the drift of this shared machine (tens of per cent within minutes) falls on both. ``--a`` and
``--b`` set environment variables of one server (``PYTHONPATH`` runs another checkout's code).
Prints every round and the medians of req/s, server CPU ms per request and p99.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pools
import seed
import servers
from load import Measurement, wrk
from run import VERSION, _bandwidths
from sqlalchemy import Engine

from zbmc.db.engine import create_db_engine


@dataclass
class Side:
    name: str
    server: servers.Server
    engine: Engine
    pool: list[str]
    key: tuple[str, str]


def _env(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"expected NAME=VALUE, got {pair!r}")
        out[name] = value
    return out


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--a", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--b", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--scenario", choices=("modify", "describe"), default="modify")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--pool", type=int, default=1000, help="POSTPAID instances changed")
    parser.add_argument(
        "--instances",
        type=int,
        default=0,
        help="the tenant's instances in all, as bench/run.py's datasets (1000000 for its 1M):"
        " prepaid ones seeded beside the pool",
    )
    parser.add_argument(
        "--pages",
        type=int,
        default=None,
        help="describe: the first N pages of 100 (default: every page of the pool); bench/run.py"
        " asks for the first 10",
    )
    parser.add_argument(
        "--tick", type=float, default=servers.WORKER_INTERVAL, help="worker interval (s)"
    )
    parser.add_argument(
        "--worker-process",
        action="store_true",
        help="each side's worker as a `zbmc worker` process beside its API process (as"
        " bench/run.py runs it) instead of a thread of it; for one side: --b"
        " BENCH_WORKER_PROCESS=1",
    )
    return parser.parse_args()


def main() -> int:
    args = _arguments()
    work = Path(tempfile.mkdtemp(prefix="zbmc-ab-"))
    sides: list[Side] = []
    databases = contextlib.ExitStack()
    for name, env in (("A", _env(args.a)), ("B", _env(args.b))):
        url = databases.enter_context(servers.database(args.backend, work))
        # Each side's own code prepares its database (its migrations may differ).
        servers.zbmc(url, "admin", "db", "upgrade", extra_env=env)
        servers.zbmc(url, "admin", "catalogue", "load", "--demo", extra_env=env)
        tenant = servers.zbmc_json(
            url,
            "admin",
            "tenant",
            "create",
            "--name",
            "ab",
            "--balance",
            "100000000",
            extra_env=env,
        )
        engine = create_db_engine(url)
        now = int(time.time())
        pool = seed.postpaid_instances(engine, tenant["tenantId"], now, args.pool)
        if args.instances > args.pool:
            seed.bulk_instances(engine, tenant["tenantId"], now, args.pool, args.instances)
        logs = work / name
        logs.mkdir()
        process = args.worker_process or env.pop("BENCH_WORKER_PROCESS", "") == "1"
        server = servers.zbmc_serve(logs, url, args.tick, env, worker_process=process)
        key = (tenant["accessKeyId"], tenant["accessKeyPassword"])
        sides.append(Side(name, server, engine, pool, key))
    results: dict[str, list[Measurement]] = {"A": [], "B": []}

    def load(side: Side, seconds: float) -> Measurement:
        if args.scenario == "describe":  # pageSize 100 over the pool's instances
            pages = args.pages or max(1, args.pool // 100)
            requests = pools.describe_instances(side.server.host, side.key, pages, 1, VERSION)
        else:
            current = _bandwidths(side.engine, side.pool)
            requests = pools.modify_bandwidth(side.server.host, side.key, current, 1, VERSION)
        return wrk(
            side.server.host,
            requests,
            args.connections,
            seconds,
            target=side.name,
            scenario=args.scenario,
            dataset=str(args.pool),
            pid=side.server.process.pid,
            worker_pid=side.server.worker.pid if side.server.worker is not None else None,
        )

    print(f"{args.backend}, load average {os.getloadavg()[0]:.2f}", flush=True)
    try:
        for side in sides:
            load(side, 2)  # warm-up
        for n in range(args.rounds):
            for side in sides if n % 2 == 0 else sides[::-1]:
                m = load(side, args.seconds)
                results[side.name].append(m)
                print(
                    f"{side.name}  {m.rps:8.1f} req/s  p50 {m.p50_ms:6.1f} ms"
                    f"  p99 {m.p99_ms:6.1f} ms"
                    f"  cpu {m.cpu_ms_per_request} ms/req  db cpu {m.db_cpu_ms_per_request} ms/req"
                    f"  worker cpu {m.worker_cpu_ms_per_request} ms/req"
                    f"  non-2xx {m.non2xx}",
                    flush=True,
                )
    finally:
        for side in sides:
            side.server.stop()
            side.engine.dispose()
        databases.close()
    print(f"load average {os.getloadavg()[0]:.2f}")
    for name, ms in results.items():
        print(
            f"{name} median: {statistics.median(m.rps for m in ms):.1f} req/s,"
            f" cpu {statistics.median(m.cpu_ms_per_request or 0 for m in ms):.3f} ms/req,"
            f" db cpu {statistics.median(m.db_cpu_ms_per_request or 0 for m in ms):.3f} ms/req,"
            f" p50 {statistics.median(m.p50_ms for m in ms):.1f} ms,"
            f" p99 {statistics.median(m.p99_ms for m in ms):.1f} ms,"
            f" non-2xx {sum(m.non2xx for m in ms)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
