"""Traffic ingestion of N samples (default 10 000) through both doors an operator has.

    .venv/bin/python bench/ingest.py                      # both backends, 10 000 samples
    .venv/bin/python bench/ingest.py --backend sqlite --rounds 5
    .venv/bin/python bench/ingest.py --a PYTHONPATH=/tmp/old/src   # A/B, alternating rounds

Each round ingests a fresh batch of N new samples (100 instances, 5-minute samples) twice: once
through ``POST /admin/v1/traffic`` of a running ``zbmc serve`` and once through ``zbmc admin
traffic ingest FILE --json``, then sends the HTTP batch again (all duplicates). It prints the
wall time of the HTTP request and of the CLI process, and the CLI's time for a command that
stores nothing (``zbmc admin traffic ingest`` of an empty file: Python start-up, imports, engine)
so the ingestion itself can be read off as the difference; and, for a third batch, the wall time
of the command itself in a process that imported its modules first (``TIMED_COMMAND``). It also
prints the CPU time of the server process during the HTTP request and of the CLI process
(figures that hold up better than wall time on a loaded machine; PostgreSQL's own backend is not
counted). The store is checked after every round: each sample id exactly once. With
``--a``/``--b`` (environment of one side, as in bench/ab.py) the two sides alternate A B B A ...
and the medians are printed per side.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import seed
import servers
from load import cpu_seconds
from sqlalchemy import func, select

from zbmc.db.engine import create_db_engine
from zbmc.db.tables import traffic_samples

TOKEN = "bench-admin-token"


def samples(instance_ids: list[str], count: int, start: int, tag: str) -> list[dict[str, Any]]:
    out = []
    for k in range(count):
        instance = instance_ids[k % len(instance_ids)]
        out.append(
            {
                "sampleId": f"{tag}-{k}",
                "instanceId": instance,
                "time": start + (k // len(instance_ids)) * 300,
                "intervalSeconds": 300,
                "inBytes": 1000 + k,
                "outBytes": 2000 + k,
            }
        )
    return out


def post(host: str, body: bytes) -> tuple[float, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://{host}/admin/v1/traffic",
        data=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as answer:
        data = json.loads(answer.read())
    return time.perf_counter() - started, data


# Runs `zbmc admin ARGS` in a process that imports the command's modules first, then prints to
# stderr the wall seconds from the command's start to its exit: connecting, the schema check,
# reading and checking the file, storing, committing; Python's start-up and imports left out.
TIMED_COMMAND = """
import sys, time
from zbmc.cli.main import main
import zbmc.cli.admin, zbmc.store.traffic
import sqlalchemy.dialects.sqlite, sqlalchemy.dialects.postgresql
started = time.perf_counter()
try:
    main(sys.argv[1:])
except SystemExit as exc:
    print(time.perf_counter() - started, file=sys.stderr)
    raise
"""


def cli_command(url: str, path: Path, env: dict[str, str]) -> float:
    """Wall seconds of the ingest command itself, after the imports (TIMED_COMMAND)."""
    full = {**os.environ, "ZBMC_DATABASE_URL": url, "ZBMC_LOG_LEVEL": "warning", **env}
    args = ["admin", "traffic", "ingest", str(path), "--json"]
    done = subprocess.run(
        [sys.executable, "-c", TIMED_COMMAND, *args],
        env=full,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stderr.strip().splitlines()[-1])


def cli(url: str, path: Path, env: dict[str, str]) -> tuple[float, float, dict[str, Any]]:
    """Wall and CPU seconds of the command, and its answer."""
    full = {**os.environ, "ZBMC_DATABASE_URL": url, "ZBMC_LOG_LEVEL": "warning", **env}
    command = [sys.executable, "-m", "zbmc", "admin", "traffic", "ingest", str(path), "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=full, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, json.loads(done.stdout)


class Side:
    def __init__(self, name: str, backend: str, work: Path, env: dict[str, str]) -> None:
        self.name = name
        self.env = env
        self._db = servers.database(backend, work)
        self.url = self._db.__enter__()
        servers.zbmc(self.url, "admin", "db", "upgrade")
        servers.zbmc(self.url, "admin", "catalogue", "load", "--demo")
        tenant = servers.zbmc_json(self.url, "admin", "tenant", "create", "--name", "ingest")
        self.engine = create_db_engine(self.url)
        now = int(time.time())
        self.instances = seed.postpaid_instances(self.engine, tenant["tenantId"], now, 100)
        logs = work / f"{name}-{backend}"
        logs.mkdir()
        self.server = servers.zbmc_serve(logs, self.url, extra={"ZBMC_ADMIN_TOKEN": TOKEN, **env})
        self.work = logs
        self.start = now - 40 * 86400  # whatever the retention, the rows are stored
        self.results: dict[str, list[float]] = {
            name: []
            for name in (
                *("http", "resend", "cli", "empty", "command"),
                *("http_cpu", "cli_cpu", "empty_cpu"),
            )
        }

    def stored(self) -> tuple[int, int]:
        with self.engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(traffic_samples)).scalar_one()
            distinct = conn.execute(
                select(func.count(traffic_samples.c.sample_id.distinct()))
            ).scalar_one()
        return int(count), int(distinct)

    def round(self, count: int) -> None:
        before, _ = self.stored()
        tag = secrets.token_hex(4)
        batch = samples(self.instances, count, self.start, f"h{tag}")
        body = json.dumps({"samples": batch}).encode()
        cpu = cpu_seconds(self.server.process.pid)
        seconds, answer = post(self.server.host, body)
        self.results["http_cpu"].append(cpu_seconds(self.server.process.pid) - cpu)
        assert answer == {"accepted": count, "duplicates": 0}, answer
        self.results["http"].append(seconds)
        seconds, answer = post(self.server.host, body)
        assert answer == {"accepted": 0, "duplicates": count}, answer
        self.results["resend"].append(seconds)
        path = self.work / f"{tag}.jsonl"
        lines = samples(self.instances, count, self.start, f"c{tag}")
        path.write_text("".join(json.dumps(s) + "\n" for s in lines))
        seconds, cpu, answer = cli(self.url, path, self.env)
        assert answer == {"accepted": count, "duplicates": 0}, answer
        self.results["cli"].append(seconds)
        self.results["cli_cpu"].append(cpu)
        path = self.work / f"{tag}-command.jsonl"
        lines = samples(self.instances, count, self.start, f"d{tag}")
        path.write_text("".join(json.dumps(s) + "\n" for s in lines))
        self.results["command"].append(cli_command(self.url, path, self.env))
        empty = self.work / "empty.json"
        empty.write_text("[]")
        seconds, cpu, _ = cli(self.url, empty, self.env)
        self.results["empty"].append(seconds)
        self.results["empty_cpu"].append(cpu)
        after, distinct = self.stored()
        assert after == distinct == before + 3 * count, (before, after, distinct)

    def close(self) -> None:
        self.server.stop()
        self.engine.dispose()
        self._db.__exit__(None, None, None)


def _env(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--a", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--b", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    compare = bool(args.a or args.b)
    print(f"load average {os.getloadavg()[0]:.2f}", flush=True)
    for backend in backends:
        work = Path(tempfile.mkdtemp(prefix="zbmc-ingest-"))
        sides = [Side("A", backend, work, _env(args.a))]
        if compare:
            sides.append(Side("B", backend, work, _env(args.b)))
        try:
            for n in range(args.rounds):
                for side in sides if n % 2 == 0 else sides[::-1]:
                    side.round(args.samples)
                    r = {k: v[-1] for k, v in side.results.items()}
                    print(
                        f"{backend} {side.name}: http {r['http']:.3f} s (server CPU"
                        f" {r['http_cpu']:.3f} s), resend {r['resend']:.3f} s, cli"
                        f" {r['cli']:.3f} s (CPU {r['cli_cpu']:.3f} s; empty {r['empty']:.3f} s,"
                        f" CPU {r['empty_cpu']:.3f} s), cli command after imports"
                        f" {r['command']:.3f} s",
                        flush=True,
                    )
            for side in sides:
                med = {k: statistics.median(v) for k, v in side.results.items()}
                print(
                    f"{backend} {side.name} median of {args.rounds}: http {med['http']:.3f} s"
                    f" (server CPU {med['http_cpu']:.3f} s), resend {med['resend']:.3f} s,"
                    f" cli {med['cli']:.3f} s, cli without start-up"
                    f" {med['cli'] - med['empty']:.3f} s (CPU"
                    f" {med['cli_cpu'] - med['empty_cpu']:.3f} s), cli command after imports"
                    f" {med['command']:.3f} s"
                )
        finally:
            for side in sides:
                side.close()
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
