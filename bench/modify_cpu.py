"""CPU per signed ModifyInstanceBandwidth in ``Pipeline.handle_batch``, in process (no HTTP, no
wrk): the request path's database, authentication, handler and response work, deterministic
enough to compare two versions of the code on a busy machine.

    .venv/bin/python bench/modify_cpu.py                                  # this checkout, SQLite
    .venv/bin/python bench/modify_cpu.py --a PYTHONPATH=/work/main/src    # A/B against main
    .venv/bin/python bench/modify_cpu.py --profile                        # cProfile, to stderr

Each side runs in a child process of its own (``--a``/``--b`` set its environment), on a
database of its own with ``--pool`` POSTPAID instances; the children take turns (A B B A ...).
A child sends passes over the pool in batches of ``--batch`` calls (what group commit shares
at 16 connections), every instance to the other of 100/200 Mbps, and times them with
``time.process_time``; between passes, untimed, the worker finishes the changes (as the worker
thread or process of ``zbmc serve`` does).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import children
import seed
import servers
from describe_cpu import _profiler

VERSION = "2026-02-01"
HOST = "127.0.0.1:8080"


class _Side:
    """A database with a tenant and its POSTPAID pool, the pipeline and a worker on it."""

    def __init__(self, args: argparse.Namespace) -> None:
        from zbmc.clock import Clock
        from zbmc.db.engine import create_db_engine
        from zbmc.drivers import make_driver
        from zbmc.pipeline import Pipeline
        from zbmc.settings import load_settings
        from zbmc.worker import Worker

        url = args.url
        servers.zbmc(url, "admin", "db", "upgrade")
        servers.zbmc(url, "admin", "catalogue", "load", "--demo")
        tenant = servers.zbmc_json(
            url, "admin", "tenant", "create", "--name", "cpu", "--balance", "100000000"
        )
        self.engine = create_db_engine(url)
        self.pool = seed.postpaid_instances(
            self.engine, tenant["tenantId"], int(time.time()), args.pool
        )
        settings = load_settings({**os.environ, "ZBMC_DATABASE_URL": url})
        clock = Clock()
        self.pipeline = Pipeline(self.engine, settings, clock)
        self.worker = Worker(self.engine, clock, make_driver("noop"))
        self.key = (tenant["accessKeyId"], tenant["accessKeyPassword"])
        self.batch = args.batch
        self.stamp = int(time.time())

    def call(self, instance: str, mbps: int, at: int) -> Any:
        from zbmc.auth import Credentials
        from zbmc.pipeline import Call, new_request_id
        from zbmc.signature import ALGORITHM, SIGNED_HEADERS, sign

        payload = {"instanceId": instance, "bandwidthOutMbps": mbps}
        body = json.dumps(payload, separators=(",", ":")).encode()
        text = str(at)
        signature = sign(self.key[1], "application/json", HOST, text, body)
        authorization = (
            f"{ALGORITHM} Credential={self.key[0]}, SignedHeaders={SIGNED_HEADERS}, "
            f"Signature={signature}"
        )
        headers = {
            b"x-zc-action": b"ModifyInstanceBandwidth",
            b"authorization": authorization.encode(),
        }
        return Call(
            new_request_id(),
            "bmc",
            "ModifyInstanceBandwidth",
            VERSION,
            Credentials(authorization, text, "application/json", HOST, body, headers),
        )

    def passes(self, count: int, first: int) -> list[list[list[Any]]]:
        """``count`` passes over the pool (each flips every instance), in batches; a new
        timestamp per pass, so no signed write repeats."""
        out = []
        for n in range(count):
            mbps = 200 if (first + n) % 2 == 0 else 100
            calls = [self.call(i, mbps, self.stamp - 200 + first + n) for i in self.pool]
            out.append([calls[k : k + self.batch] for k in range(0, len(calls), self.batch)])
        return out

    def run(self, batches: list[list[Any]]) -> float:
        started = time.process_time()
        for batch in batches:
            for outcome in self.pipeline.handle_batch(batch):
                if outcome.status != 200:
                    raise RuntimeError(outcome.body[:300])
        return time.process_time() - started


def _child(args: argparse.Namespace) -> int:
    side = _Side(args)
    for batches in side.passes(2, 0):  # warm-up
        side.run(batches)
        side.worker.catch_up()
    timed = side.passes(args.passes, 2)
    profile = _profiler() if args.profile or args.profile_worker else None
    cpu = worker_cpu = 0.0
    for batches in timed:
        if profile is not None and args.profile:
            profile.enable()
        cpu += side.run(batches)
        if profile is not None and args.profile:
            profile.disable()
        started = time.process_time()
        if profile is not None and args.profile_worker:
            profile.enable()
        side.worker.catch_up()
        if profile is not None and args.profile_worker:
            profile.disable()
        worker_cpu += time.process_time() - started
    if profile is not None:
        children.print_profile(profile, 40)
    calls = args.passes * len(side.pool)
    figures = {"cpu_us_per_call": 1e6 * cpu / calls, "worker_us_per_call": 1e6 * worker_cpu / calls}
    print(json.dumps(figures))
    side.pipeline.close()
    side.engine.dispose()
    return 0


def main() -> int:
    parser = children.parser(__doc__)
    parser.add_argument("--pool", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--passes", type=int, default=6)
    parser.add_argument("--profile-worker", action="store_true", help="also cProfile the worker")
    args = parser.parse_args()
    if args.child:
        return _child(args)

    def command(url: str) -> list[str]:
        line = [sys.executable, __file__, "--child", "--url", url, "--pool", str(args.pool)]
        line += ["--batch", str(args.batch), "--passes", str(args.passes)]
        line += ["--profile"] if args.profile else []
        return line + (["--profile-worker"] if args.profile_worker else [])

    def measured(name: str, lines: list[dict[str, Any]]) -> float:
        figures = lines[-1]
        print(
            f"{name}  {figures['cpu_us_per_call']:7.1f} µs CPU/call"
            f"  (worker {figures['worker_us_per_call']:.1f} µs per change, untimed)",
            flush=True,
        )
        return float(figures["cpu_us_per_call"])

    return children.compare(args, command, measured, "µs CPU/call", 1)


if __name__ == "__main__":
    raise SystemExit(main())
