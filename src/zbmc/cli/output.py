"""Printing command results: readable tables by default, JSON with ``--json``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import click


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, default=_plain, ensure_ascii=False, indent=2))


def emit_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
    if not rows:
        click.echo("(none)")
        return
    names = list(columns or rows[0].keys())
    cells = [[_cell(row.get(name)) for name in names] for row in rows]
    widths = [max(len(name), *(len(r[i]) for r in cells)) for i, name in enumerate(names)]
    click.echo("  ".join(name.ljust(w) for name, w in zip(names, widths, strict=True)).rstrip())
    click.echo("  ".join("-" * w for w in widths))
    for r in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def emit(data: Mapping[str, Any] | Sequence[Mapping[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json(data)
    elif isinstance(data, Mapping):
        width = max((len(k) for k in data), default=0)
        for key, value in data.items():
            click.echo(f"{key.ljust(width)}  {_cell(value)}")
    else:
        emit_table(data)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)
