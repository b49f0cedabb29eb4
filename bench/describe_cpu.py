"""CPU per DescribeInstances page of 100, in process (no HTTP, no wrk): deterministic enough to
compare two versions of the code on a busy machine.

    .venv/bin/python bench/describe_cpu.py                       # this checkout, SQLite
    .venv/bin/python bench/describe_cpu.py --backend postgres --a PYTHONPATH=/work/main/src
    .venv/bin/python bench/describe_cpu.py --instances 1000000 --sweep   # memory at 1M

Each side runs in a child process of its own (``--a``/``--b`` set its environment, e.g.
``PYTHONPATH`` of another checkout), on a database of its own seeded with ``--instances``
instances; the children take turns (A B B A ...), each timing ``--pages`` calls of
``Pipeline.handle`` (pages 1..10 of 100 in a cycle, signed like the SDK) with
``time.process_time``. ``--sweep`` first asks for every page of the tenant once (at most
``--sweep-pages``) and prints how much the process's resident memory grew meanwhile (what a
describe cache holds for that many instances; compare with ``--b ZBMC_DESCRIBE_CACHE_MB=0``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import children
import seed
import servers

VERSION = "2026-02-01"
HOST = "127.0.0.1:8080"


def _rss_mb() -> float:
    """The resident memory now (the peak, ru_maxrss, is the seeding's)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def _profiler() -> Any:
    """cProfile, which imports the standard ``profile`` module: bench/profile.py shadows it."""
    here = Path(__file__).resolve().parent
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.modules.pop("profile", None)
    try:
        import cProfile
    finally:
        sys.path[:] = saved
    return cProfile.Profile()


def _child(args: argparse.Namespace) -> int:
    from zbmc.auth import Credentials
    from zbmc.clock import Clock
    from zbmc.db.engine import create_db_engine
    from zbmc.pipeline import Call, Pipeline, new_request_id
    from zbmc.settings import load_settings
    from zbmc.signature import ALGORITHM, SIGNED_HEADERS, sign

    url = args.url
    servers.zbmc(url, "admin", "db", "upgrade")
    servers.zbmc(url, "admin", "catalogue", "load", "--demo")
    tenant = servers.zbmc_json(url, "admin", "tenant", "create", "--name", "cpu")
    engine = create_db_engine(url)
    seed.bulk_instances(engine, tenant["tenantId"], int(time.time()), 0, args.instances)
    settings = load_settings({**os.environ, "ZBMC_DATABASE_URL": url})
    pipeline = Pipeline(engine, settings, Clock())
    key_id, secret = tenant["accessKeyId"], tenant["accessKeyPassword"]

    def call(page: int) -> Call:
        body = json.dumps({"pageSize": 100, "pageNum": page}, separators=(",", ":")).encode()
        stamp = str(int(time.time()))
        signature = sign(secret, "application/json", HOST, stamp, body)
        authorization = (
            f"{ALGORITHM} Credential={key_id}, SignedHeaders={SIGNED_HEADERS}, "
            f"Signature={signature}"
        )
        return Call(
            new_request_id(),
            "bmc",
            "DescribeInstances",
            VERSION,
            Credentials(authorization, stamp, "application/json", HOST, body),
        )

    def page(n: int) -> None:
        outcome = pipeline.handle(call(n))
        if outcome.status != 200:
            raise RuntimeError(outcome.body[:300])

    if args.sweep:
        page(1)
        before = _rss_mb()
        started = time.perf_counter()
        for n in range(1, min(args.sweep_pages, -(-args.instances // 100)) + 1):
            page(n)
        seconds = time.perf_counter() - started
        gc.collect()
        grown = _rss_mb() - before
        print(json.dumps({"sweep_seconds": seconds, "sweep_rss_growth_mb": grown}))
    for n in range(1, 11):  # warm-up
        page(n)
    calls = [call(1 + n % 10) for n in range(args.pages)]
    profile = _profiler() if args.profile else None
    started = time.process_time()
    if profile is not None:
        profile.enable()
    for c in calls:
        outcome = pipeline.handle(c)
        assert outcome.status == 200
    cpu = time.process_time() - started
    if profile is not None:
        profile.disable()
        children.print_profile(profile, 30)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"cpu_ms_per_page": 1000 * cpu / args.pages, "max_rss_mb": rss}))
    pipeline.close()
    engine.dispose()
    return 0


def main() -> int:
    parser = children.parser(__doc__)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--pages", type=int, default=400)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--sweep-pages", type=int, default=1_000_000_000)
    args = parser.parse_args()
    if args.child:
        return _child(args)

    def command(url: str) -> list[str]:
        line = [sys.executable, __file__, "--child", "--url", url]
        line += ["--instances", str(args.instances), "--pages", str(args.pages)]
        line += ["--sweep", "--sweep-pages", str(args.sweep_pages)] if args.sweep else []
        return line + (["--profile"] if args.profile else [])

    def measured(name: str, lines: list[dict[str, Any]]) -> float:
        figure = float(lines[-1]["cpu_ms_per_page"])
        extra = " ".join(f"{k} {v:.1f}" for line in lines for k, v in line.items())
        print(f"{name}  {figure:7.3f} ms CPU/page  ({extra})", flush=True)
        return figure

    return children.compare(args, command, measured, "ms CPU/page", 3)


if __name__ == "__main__":
    raise SystemExit(main())
