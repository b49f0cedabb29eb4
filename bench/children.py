"""Child processes that measure one side each of an in-process A/B (bench/describe_cpu.py,
bench/modify_cpu.py): each round runs every side once, in alternating order (A B B A ...), on a
database of its own, and hands back the JSON lines the child printed."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
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


def sides(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    """``--a``/``--b`` NAME=VALUE lists: the environment of each side (B only if given)."""
    out = {"A": _env(args.a)}
    if args.b is not None:
        out["B"] = _env(args.b)
    return out


def alternating(
    backend: str,
    environments: dict[str, dict[str, str]],
    rounds: int,
    command: Callable[[str], list[str]],
    *,
    show_stderr: bool = False,
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(side, the child's JSON lines) per run; ``command(url)`` is the child's command line."""
    work = Path(tempfile.mkdtemp(prefix="zbmc-children-"))
    names = list(environments)
    for n in range(rounds):
        for name in names if n % 2 == 0 else names[::-1]:
            with servers.database(backend, work) as url:
                env = {**os.environ, "ZBMC_LOG_LEVEL": "warning", **environments[name]}
                done = subprocess.run(
                    command(url), env=env, capture_output=True, text=True, check=False
                )
                if done.returncode != 0:
                    raise SystemExit(f"{name} failed: {done.stdout}{done.stderr}")
                if show_stderr:
                    print(done.stderr)
                yield name, [json.loads(line) for line in done.stdout.splitlines() if line]


def print_profile(profile: Any, top: int) -> None:
    """A child's cProfile, the ``top`` functions by own time, to stderr (the parent shows it)."""
    import pstats
    import sys

    pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(top)
