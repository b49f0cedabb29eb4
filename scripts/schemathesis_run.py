"""Run the schemathesis suite (tests/test_openapi.py) with a chosen budget.

The pytest run in CI uses a short budget (15 examples per action and generation mode). This
script raises it for a longer local search:

    .venv/bin/python scripts/schemathesis_run.py --examples 200 --backend postgres

Each example is one signed request to a fresh ``zbmc serve`` with a tenant owning instances of
several kinds; a failure prints the shrunk request as a curl command. Extra arguments go to pytest.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100, help="per action and mode")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--action", default=None, help="only this action (e.g. DescribeZones)")
    parser.add_argument(
        "--random", action="store_true", help="new random cases (default: the CI cases, replayed)"
    )
    args, pytest_args = parser.parse_known_args()
    selection = ["test_schemathesis"]
    if args.backend != "both":
        selection.append(args.backend)
    if args.action:
        selection.append(f"{args.action}-")
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(ROOT / "tests" / "test_openapi.py"),
        "-k",
        " and ".join(selection),
        *pytest_args,
    ]
    env = {**os.environ, "ZBMC_SCHEMATHESIS_EXAMPLES": str(args.examples)}
    if args.random:
        env["ZBMC_SCHEMATHESIS_RANDOM"] = "1"
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
