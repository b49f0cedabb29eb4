"""``zbmc admin fault``: inject failures of the next creation or reinstall (zbmc.faults)."""

from __future__ import annotations

import click

from zbmc import faults
from zbmc.cli.admin import transaction
from zbmc.cli.common import json_option
from zbmc.cli.output import emit


@click.group()
def fault() -> None:
    """Fault injection for tests: make the next CREATE / INSTALL fail."""


@fault.command("add")
@click.option("--tenant", "tenant_id", default=None, help="Every instance of this tenant.")
@click.option("--instance", "instance_id", default=None, help="This instance only.")
@click.option(
    "--operation",
    type=click.Choice(list(faults.OPERATIONS)),
    required=True,
    help="CREATE ends in CREATE_FAILED, INSTALL (ReinstallInstance) in INSTALL_FAILED.",
)
@json_option
@click.pass_context
def fault_add(
    ctx: click.Context,
    tenant_id: str | None,
    instance_id: str | None,
    operation: str,
    as_json: bool,
) -> None:
    """Make the next OPERATION of a tenant's instances (or of one instance) fail. JSON:
    {faultId, tenantId, instanceId, operation, createdAt}."""
    with transaction(ctx) as (conn, now):
        emit(faults.add(conn, now, operation, tenant_id, instance_id), as_json)


@fault.command("list")
@json_option
@click.pass_context
def fault_list(ctx: click.Context, as_json: bool) -> None:
    """Faults not yet consumed, oldest first."""
    with transaction(ctx) as (conn, _now):
        emit(faults.list_all(conn), as_json)


@fault.command("clear")
@click.option("--id", "fault_id", type=int, default=None, help="Only this fault.")
@json_option
@click.pass_context
def fault_clear(ctx: click.Context, fault_id: int | None, as_json: bool) -> None:
    """Remove pending faults (all, or one). JSON: {cleared}."""
    with transaction(ctx) as (conn, _now):
        emit({"cleared": faults.clear(conn, fault_id)}, as_json)
