"""How long `zbmc admin` commands take from the shell: the whole process, start-up included.

    .venv/bin/python bench/cli_startup.py [--runs 15] [--src OTHER/src]

Runs, alternately, `python -c pass`, the floor (importing click and SQLAlchemy, with the garbage
collector as usual and paused), `zbmc admin --help` and `zbmc admin instance create ...` (one
instance into a fresh SQLite database) as separate processes and prints the median wall time and
the median CPU time (user + system) of each; on a loaded machine the CPU time is the figure to
compare. ``--src`` points at another checkout's ``src`` (put first on PYTHONPATH) to compare it
in the same run: rows for both trees are measured interleaved, so load changes hit both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# What any command built on click and SQLAlchemy (SQLite dialect) pays before doing anything.
FLOOR = "import click, sqlalchemy, sqlalchemy.dialects.sqlite"
# The same with the cyclic GC paused during the imports, as zbmc.cli.lazy imports a command.
FLOOR_GC_PAUSED = f"import gc; gc.disable(); {FLOOR}; gc.freeze(); gc.enable()"


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of the process)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command} failed")
    return wall, usage.ru_utime + usage.ru_stime


def prepare(env: dict[str, str]) -> str:
    zbmc = [sys.executable, "-m", "zbmc", "admin"]
    subprocess.run([*zbmc, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([*zbmc, "catalogue", "load", "--demo"], env=env, check=True, capture_output=True)
    made = subprocess.run(
        [*zbmc, "tenant", "create", "--name", "bench", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return str(json.loads(made.stdout)["tenantId"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--src", action="append", default=[], help="another checkout's src")
    args = parser.parse_args()
    trees = {"this": None, **{src: src for src in args.src}}
    work = Path(tempfile.mkdtemp(prefix="zbmc-cli-"))
    commands: dict[tuple[str, str], list[tuple[float, float]]] = {}
    setups = {}
    for name, src in trees.items():
        # Bytecode caches are used as after `pip install` (pip compiles them; an editable install
        # writes them on first import): with PYTHONDONTWRITEBYTECODE every run would compile
        # zbmc's sources again (about 0.07 s here).
        env = {
            **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            "ZBMC_DATABASE_URL": f"sqlite:///{work / (str(abs(hash(name))) + '.db')}",
        }
        if src is not None:
            env["PYTHONPATH"] = src
        setups[name] = (env, prepare(env))
    for _ in range(args.runs):
        for name, (env, tenant) in setups.items():
            zbmc = [sys.executable, "-m", "zbmc", "admin"]
            create = [
                *zbmc, "instance", "create", "--tenant", tenant, "--zone", "SEL-A", "--type",
                "M6C", "--instance-charge-type", "PREPAID", "--internet-charge-type",
                "ByBandwidth", "--bandwidth", "100", "--json",
            ]  # fmt: skip
            for label, command in (
                ("python", [sys.executable, "-c", "pass"]),
                ("floor", [sys.executable, "-c", FLOOR]),
                ("floor, GC paused", [sys.executable, "-c", FLOOR_GC_PAUSED]),
                ("admin --help", [*zbmc, "--help"]),
                ("instance create", create),
            ):
                commands.setdefault((name, label), []).append(timed(command, env))
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores, {args.runs} runs each")
    for (name, label), runs in commands.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{name:>12}  {label:<16} wall median {wall:.3f} s  CPU median {cpu:.3f} s")


if __name__ == "__main__":
    main()
