"""``zbmc admin pool`` and ``zbmc admin resource-group``: address pools and resource groups."""

from __future__ import annotations

from pathlib import Path

import click

from zbmc.cli.admin import transaction
from zbmc.cli.common import json_option
from zbmc.cli.output import emit


@click.group()
def pool() -> None:
    """Address pools that CreateInstances hands addresses out from."""


@pool.command("add")
@click.argument("kind", type=click.Choice(["PUBLIC_IPV4", "PRIVATE_IPV4", "IPV6"]))
@click.argument("cidr")
@click.option("--zone", "zone_id", default=None, help="Only for this zone (default: every zone).")
@click.option("--id", "pool_id", default=None, help="Pool id (default: generated).")
@json_option
@click.pass_context
def pool_add(
    ctx: click.Context,
    kind: str,
    cidr: str,
    zone_id: str | None,
    pool_id: str | None,
    as_json: bool,
) -> None:
    """Add a pool of KIND (PUBLIC_IPV4, PRIVATE_IPV4, IPV6) covering CIDR. JSON: {poolId}."""
    from zbmc.store import addresses

    with transaction(ctx) as (conn, _now):
        emit({"poolId": addresses.add_pool(conn, kind, cidr, zone_id, pool_id)}, as_json)


@pool.command("list")
@json_option
@click.pass_context
def pool_list(ctx: click.Context, as_json: bool) -> None:
    """Pools with their size, addresses held and addresses available."""
    from zbmc.store import addresses

    with transaction(ctx) as (conn, _now):
        emit(addresses.list_pools(conn), as_json)


@click.group("resource-group")
def resource_group() -> None:
    """Resource groups of a tenant (every tenant also has the default group)."""


@resource_group.command("add")
@click.argument("tenant_id")
@click.argument("name")
@json_option
@click.pass_context
def resource_group_add(ctx: click.Context, tenant_id: str, name: str, as_json: bool) -> None:
    """Add a resource group NAME for TENANT_ID. JSON: {resourceGroupId, name}."""
    from zbmc.store import resource_groups
    from zbmc.tenancy import require_tenant

    with transaction(ctx) as (conn, now):
        require_tenant(conn, tenant_id)
        group_id = resource_groups.add(conn, tenant_id, name, now)
        emit({"resourceGroupId": group_id, "name": name.strip()}, as_json)


@resource_group.command("list")
@click.argument("tenant_id")
@json_option
@click.pass_context
def resource_group_list(ctx: click.Context, tenant_id: str, as_json: bool) -> None:
    """The tenant's resource groups, the default one first."""
    from zbmc.store import resource_groups
    from zbmc.tenancy import require_tenant

    with transaction(ctx) as (conn, _now):
        require_tenant(conn, tenant_id)
        emit(resource_groups.list_groups(conn, tenant_id), as_json)


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["jsonl", "csv"]),
    default=None,
    help="Default: from the file name (.csv is CSV, anything else JSON lines).",
)
@json_option
@click.pass_context
def instance_import(ctx: click.Context, file: Path, file_format: str | None, as_json: bool) -> None:
    """Import an existing fleet from FILE (JSON lines or CSV; docs/operations.md), all in one
    transaction: every line is imported or none, and the first bad line is named.
    JSON: {imported, instanceIds}."""
    from zbmc import fleet

    csv_format = file_format == "csv" or (file_format is None and file.suffix.lower() == ".csv")
    text = file.read_text(encoding="utf-8")
    with transaction(ctx) as (conn, now):
        ids = fleet.import_fleet(conn, text, csv_format=csv_format, now=now)
    if as_json:
        emit({"imported": len(ids), "instanceIds": ids}, as_json)
    else:
        click.echo(f"imported {len(ids)} instances")
