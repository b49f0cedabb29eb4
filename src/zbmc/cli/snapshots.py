"""``zbmc admin snapshot save|restore|list|delete`` and ``zbmc admin reset`` (zbmc.snapshots)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from zbmc.cli.admin import Runtime
from zbmc.cli.common import json_option, require_head
from zbmc.cli.output import emit
from zbmc.snapshots import SnapshotError, Snapshots


@contextmanager
def snapshots(ctx: click.Context) -> Iterator[Snapshots]:
    runtime = ctx.obj
    assert isinstance(runtime, Runtime)
    require_head(runtime.engine)
    try:
        yield Snapshots(runtime.engine, runtime.clock)
    except SnapshotError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def snapshot() -> None:
    """Named copies of the whole state (SQLite: files next to the database; PostgreSQL:
    schemas in it). Restores are all or nothing and bring the billing clock back."""


@snapshot.command("save")
@click.argument("name")
@json_option
@click.pass_context
def snapshot_save(ctx: click.Context, name: str, as_json: bool) -> None:
    """Save the state as NAME (replacing an older NAME)."""
    with snapshots(ctx) as store:
        emit(store.save(name).as_dict(), as_json)


@snapshot.command("restore")
@click.argument("name")
@json_option
@click.pass_context
def snapshot_restore(ctx: click.Context, name: str, as_json: bool) -> None:
    """Replace the whole state with snapshot NAME, in one transaction; refused (nothing
    changed) while a worker tick runs."""
    with snapshots(ctx) as store:
        emit(store.restore(name).as_dict(), as_json)


@snapshot.command("list")
@json_option
@click.pass_context
def snapshot_list(ctx: click.Context, as_json: bool) -> None:
    """Snapshots: name, when saved, the billing time they bring back, schema revision."""
    with snapshots(ctx) as store:
        emit([found.as_dict() for found in store.list()], as_json)


@snapshot.command("delete")
@click.argument("name")
@click.pass_context
def snapshot_delete(ctx: click.Context, name: str) -> None:
    """Delete snapshot NAME."""
    with snapshots(ctx) as store:
        store.delete(name)
    click.echo(f"deleted {name}")


@click.command()
@click.option("--demo", is_flag=True, help="Then set up the demo (as `zbmc serve --demo`).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_context
def reset(ctx: click.Context, demo: bool, yes: bool, as_json: bool) -> None:
    """Delete every tenant, instance, order, ledger entry, sample and the catalogue (the
    schema stays), in one transaction. JSON: {} or the demo's {tenantId, accessKeyId,
    accessKeyPassword}."""
    if not yes:
        click.confirm("Delete all data in this database?", abort=True)
    with snapshots(ctx) as store:
        emit(store.reset(demo), as_json)
