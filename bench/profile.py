"""Where one ``zbmc serve`` process spends its time under load: py-spy samples it while wrk
drives one scenario, then the samples are summed per function (own time and inclusive time).

    .venv/bin/python bench/profile.py modify      # ModifyInstanceBandwidth on SQLite, 1k
    .venv/bin/python bench/profile.py describe --backend postgres --instances 100000
    .venv/bin/python bench/profile.py worker --instances 5000   # `zbmc worker --once`

Needs py-spy (pip install py-spy) and permission to ptrace (root in the container is enough).
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pools
import seed
import servers
from load import THREADS, wrk

from zbmc.db.engine import create_db_engine

VERSION = "2026-02-01"


def summarise(raw: Path, top: int) -> str:
    """Collapsed stacks (``a;b;c count``) -> the functions with most own and inclusive samples."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f.split(" (")[0] + " (" + _short(f) + ")" for f in stack.split(";")]
        if frames and frames[0].startswith("process"):
            frames = frames[1:]
        if not frames:
            continue
        # py-spy leaves out idle samples (a thread waiting in the event loop or sleeping)
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples (all threads)", "", "own time:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines += ["", "inclusive time:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top * 2)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    where = frame.split(" (", 1)[1].rstrip(")") if " (" in frame else ""
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in where:
            return where.split(marker, 1)[1]
    return where


def profile_worker(url: str, workdir: Path, top: int) -> str:
    raw = workdir / "worker-profile.txt"
    started = time.perf_counter()
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("py-spy")),
            "record",
            "--format",
            "raw",
            "--rate",
            "250",
            "--output",
            str(raw),
            "--",
            sys.executable,
            "-m",
            "zbmc",
            "worker",
            "--once",
            "--json",
        ],
        env={**os.environ, "ZBMC_DATABASE_URL": url, "ZBMC_LOG_LEVEL": "warning"},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker under py-spy failed: {done.stdout}{done.stderr}")
    seconds = time.perf_counter() - started
    report = done.stdout.strip().replace("\n", " ")
    return f"zbmc worker --once: {seconds:.1f} s, {report}\n" + summarise(raw, top)


def profile_load(
    args: argparse.Namespace, url: str, workdir: Path, key: tuple[str, str], pool: list[str]
) -> str:
    server = servers.zbmc_serve(workdir, url)
    try:
        host = server.host
        if args.scenario == "modify":
            requests = pools.modify_bandwidth(host, key, dict.fromkeys(pool, 100), THREADS, VERSION)
        elif args.scenario == "status":
            requests = pools.internet_status(host, key, pool, THREADS, VERSION)
        else:
            requests = pools.describe_instances(host, key, 10, THREADS, VERSION)
        raw = workdir / "profile.txt"
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(server.process.pid),
                "--format",
                "raw",
                "--rate",
                "250",
                "--nonblocking",
                "--duration",
                str(args.seconds),
                "--output",
                str(raw),
                *(["--gil"] if args.gil else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        m = wrk(
            host,
            requests,
            args.connections,
            args.seconds,
            target="zbmc",
            scenario=args.scenario,
            dataset=str(args.instances),
        )
        _, err = spy.communicate(timeout=args.seconds + 60)
        if spy.returncode != 0:
            raise RuntimeError(f"py-spy failed: {err.decode()}")
    finally:
        server.stop()
    header = (
        f"{args.scenario} on {args.backend}, {args.instances} instances, "
        f"c={args.connections}: {m.rps} req/s, p50 {m.p50_ms} ms, p99 {m.p99_ms} ms, "
        f"non-2xx {m.non2xx}"
    )
    return header + "\n" + summarise(raw, args.top)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=("modify", "status", "describe", "worker"))
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--instances", type=int, default=1000)
    # modify: a pool holds pools.WRITES_PER_POOL (40 000) signed writes; a run that sends more
    # sends some twice, the replay guard refuses them and every batch holding one runs again
    # call by call (20 s at 3 700 req/s: 34 117 non-2xx, a profile of the refusals)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--gil", action="store_true", help="only samples of the thread holding the GIL (CPU)"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the summary here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zbmc-profile-") as tmp:
        workdir = Path(tmp)
        with servers.database(args.backend, workdir) as url:
            servers.zbmc(url, "admin", "db", "upgrade")
            servers.zbmc(url, "admin", "catalogue", "load", "--demo")
            tenant = servers.zbmc_json(
                url, "admin", "tenant", "create", "--name", "profile", "--balance", "100000000"
            )
            key = (tenant["accessKeyId"], tenant["accessKeyPassword"])
            engine = create_db_engine(url)
            now = int(time.time())
            pool_size = min(1000, args.instances)
            pool = seed.postpaid_instances(engine, tenant["tenantId"], now, pool_size)
            seed.bulk_instances(engine, tenant["tenantId"], now, pool_size, args.instances)
            if args.scenario == "worker":
                seed.due_downgrades(engine, tenant["tenantId"], now, args.instances)
                engine.dispose()
                summary = profile_worker(url, workdir, args.top)
                print(summary)
                if args.out:
                    args.out.write_text(summary + "\n")
                return 0
            engine.dispose()
            summary = profile_load(args, url, workdir, key, pool)
    print(summary)
    if args.out:
        args.out.write_text(summary + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
