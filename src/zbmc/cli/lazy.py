"""A click group whose subcommands are imported when they run (or when help lists them).

`zbmc admin instance create` must not pay for importing the server, the agent, snapshots or
fault injection (docs/performance.md, "`zbmc admin` start-up"): each subcommand is named here by
``module:attribute`` and imported by the first lookup.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Mapping
from typing import Any

import click


class LazyGroup(click.Group):
    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = target.partition(":")
        command = getattr(_import(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        self.add_command(command, cmd_name)  # imported once
        del self.lazy[cmd_name]
        return command


def _import(module: str) -> Any:
    """Import ``module`` with the cyclic garbage collector paused, then freeze what exists: an
    import allocates hundreds of thousands of objects that live as long as the process, and
    collections would scan them again and again for nothing (about 8 % of a short command's
    instructions, docs/performance.md). Frozen objects are never collected; at this point they
    are modules, classes and their tables, which are never garbage."""
    if not gc.isenabled():
        return importlib.import_module(module)
    gc.disable()
    try:
        return importlib.import_module(module)
    finally:
        gc.freeze()
        gc.enable()
