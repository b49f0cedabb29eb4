"""Child processes that measure one side each of an in-process A/B (bench/describe_cpu.py,
bench/modify_cpu.py): each round runs every side once, in alternating order (A B B A ...), on a
database of its own; the medians of each side end the output."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import servers
from ab import _env


def parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every such script has: the sides, the backend, rounds, profiling, and the
    child's own."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0] if doc else None)
    parser.add_argument("--a", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--b", action="append", default=None, metavar="NAME=VALUE")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--profile", action="store_true", help="cProfile one side, to stderr")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    return parser


def compare(
    args: argparse.Namespace,
    command: Callable[[str], list[str]],
    measured: Callable[[str, list[dict[str, Any]]], float],
    unit: str,
    digits: int,
) -> int:
    """Run the child (``command(url)`` is its command line) ``args.rounds`` times per side,
    alternating, each on a database of its own; ``measured(side, the child's JSON lines)``
    prints a run's line and returns its figure; then the median of each side."""
    environments = {"A": _env(args.a)}
    if args.b is not None:
        environments["B"] = _env(args.b)
    results: dict[str, list[float]] = {name: [] for name in environments}
    print(f"{args.backend}, load average {os.getloadavg()[0]:.2f}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="zbmc-children-"))
    names = list(environments)
    for n in range(args.rounds):
        for name in names if n % 2 == 0 else names[::-1]:
            with servers.database(args.backend, work) as url:
                env = {**os.environ, "ZBMC_LOG_LEVEL": "warning", **environments[name]}
                done = subprocess.run(
                    command(url), env=env, capture_output=True, text=True, check=False
                )
            if done.returncode != 0:
                raise SystemExit(f"{name} failed: {done.stdout}{done.stderr}")
            if args.profile or getattr(args, "profile_worker", False):
                print(done.stderr)
            lines = [json.loads(line) for line in done.stdout.splitlines() if line]
            results[name].append(measured(name, lines))
    print(f"load average {os.getloadavg()[0]:.2f}")
    for name, figures in results.items():
        print(f"{name} median: {statistics.median(figures):.{digits}f} {unit}")
    return 0


def print_profile(profile: Any, top: int) -> None:
    """A child's cProfile, the ``top`` functions by own time, to stderr (the parent shows it)."""
    import pstats
    import sys

    pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(top)
