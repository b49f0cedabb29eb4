"""Driving a server with wrk and reading back one measurement."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pools import write_pool

LUA = Path(__file__).resolve().parent / "wrk" / "pool.lua"
THREADS = 1  # one wrk thread: on 2 cores the other core belongs to the server under test


@dataclass
class Measurement:
    target: str
    scenario: str
    dataset: str
    connections: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    socket_errors: int
    load_before: float
    ratio: float | None = None  # rps / ceiling rps at the same connection count
    # CPU time the server process (all its threads) used per completed request: unlike req/s it
    # hardly depends on what else the machine runs; 1000 / this is the req/s of one free core.
    cpu_ms_per_request: float | None = None
    # The same for the machine's PostgreSQL server (every ``postgres`` process): the database's
    # own work per request, on the same cores (0 on SQLite, whose work is the server's).
    db_cpu_ms_per_request: float | None = None
    # The same for a `zbmc worker` process beside the API process (None without one).
    worker_cpu_ms_per_request: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _per_request(seconds: float | None, requests: int) -> float | None:
    """CPU milliseconds per request (None when not measured or nothing was answered)."""
    return round(1000 * seconds / requests, 3) if seconds is not None and requests else None


def _stat(path: Path) -> tuple[str, float]:
    """A process's name and its user + system CPU seconds so far, from ``/proc/PID/stat``."""
    head, _, rest = path.read_text().rpartition(")")
    fields = rest.split()
    return head.partition("(")[2], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and of its live children (Linux /proc): the
    API processes of ``zbmc serve --workers N`` are children of the process started."""
    total = _stat(Path(f"/proc/{pid}/stat"))[1]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in children.read_text().split() if children.exists() else ():
        with contextlib.suppress(OSError):  # it may have ended meanwhile
            total += cpu_seconds(int(child))
    return total


def postgres_cpu_seconds() -> float:
    """User + system CPU time so far of every process named ``postgres`` (Linux /proc)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):  # it may have ended meanwhile
            name, seconds = _stat(stat)
            if name == "postgres":
                total += seconds
    return total


def wrk(
    host: str,
    pool: Sequence[Sequence[str]],
    connections: int,
    seconds: float,
    *,
    target: str,
    scenario: str,
    dataset: str,
    pid: int | None = None,
    worker_pid: int | None = None,
) -> Measurement:
    load_before = os.getloadavg()[0]
    cpu_before = cpu_seconds(pid) if pid else 0.0
    worker_before = cpu_seconds(worker_pid) if worker_pid else 0.0
    db_before = postgres_cpu_seconds()
    with tempfile.TemporaryDirectory(prefix="zbmc-bench-") as tmp:
        pool_file = write_pool(Path(tmp) / "pool.lua", pool)
        command = [
            "wrk",
            f"-t{THREADS}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            f"http://{host}/",
            "--",
            str(pool_file),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    cpu = cpu_seconds(pid) - cpu_before if pid else None
    worker_cpu = cpu_seconds(worker_pid) - worker_before if worker_pid else None
    db_cpu = postgres_cpu_seconds() - db_before
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stdout}{done.stderr}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON "))
    data = json.loads(line.removeprefix("BENCH_JSON "))
    elapsed = data["duration_us"] / 1e6
    return Measurement(
        target=target,
        scenario=scenario,
        dataset=dataset,
        connections=connections,
        requests=data["requests"],
        seconds=round(elapsed, 2),
        rps=round(data["requests"] / elapsed, 1),
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        non2xx=data["non2xx"],
        socket_errors=sum(
            data[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
        ),
        load_before=round(load_before, 2),
        cpu_ms_per_request=_per_request(cpu, data["requests"]),
        db_cpu_ms_per_request=_per_request(db_cpu, data["requests"]),
        worker_cpu_ms_per_request=_per_request(worker_cpu, data["requests"]),
    )
