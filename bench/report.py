"""Render a results file of bench/run.py as the Markdown tables of docs/performance.md.

.venv/bin/python bench/report.py bench/results/2026-11-22.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _cell(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render(data: dict[str, Any]) -> str:
    machine = data["machine"]
    wrk = machine["wrk"].split(" Copyright")[0]
    lines = [
        f"Run `{data['plan']['name']}` started {data['started']} ({data['wall_seconds']} s): "
        f"{machine['nproc']} x {machine['cpu']}, Python {machine['python']}, {wrk}; "
        f"load average at start {machine['load_at_start'][0]:.1f}, "
        f"at end {machine['load_at_end'][0]:.1f}.",
        "",
        "| target | scenario | instances | conns | req/s | p50 ms | p99 ms | × ceiling "
        "| server CPU ms/req | PostgreSQL CPU ms/req | non-2xx | load |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in data["measurements"]:
        lines.append(
            f"| {m['target']} | {m['scenario']} | {m['dataset']} | {m['connections']} "
            f"| {_cell(m['rps'])} | {_cell(m['p50_ms'], 2)} | {_cell(m['p99_ms'], 2)} "
            f"| {_cell(m['ratio'], 3)} | {_cell(m.get('cpu_ms_per_request'), 3)} "
            f"| {_cell(m.get('db_cpu_ms_per_request') if 'postgres' in m['target'] else None, 3)} "
            f"| {m['non2xx']} | {_cell(m['load_before'])} |"
        )
    lines += [
        "",
        "| backend | seeding (s) | worker --once | verdict |",
        "| --- | --- | --- | --- |",
    ]
    for backend, section in data["sections"].items():
        worker = section.get("worker", {})
        seeding = ", ".join(f"{k}: {v}" for k, v in section.get("seeding_seconds", {}).items())
        lines.append(
            f"| {backend} ({section.get('database', '')}) | {seeding} "
            f"| {worker.get('worker_once_seconds', '-')} s for {worker.get('due_downgrades', '-')}"
            f" due downgrades | {worker.get('verdict', '-')} |"
        )
    lines += ["", "| issue-4 target | measured | met |", "| --- | --- | --- |"]
    for t in data["targets"]:
        lines.append(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |")
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print(render(json.loads(Path(sys.argv[1]).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
