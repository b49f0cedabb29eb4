"""``zbmc admin network``: which host and interface carry each instance's traffic."""

from __future__ import annotations

import click

from zbmc.cli.admin import transaction
from zbmc.cli.common import json_option
from zbmc.cli.output import emit
from zbmc.store import attachments


@click.group()
def network() -> None:
    """Network attachments: the host whose `zbmc agent` caps an instance, and its interface."""


@network.command("attach")
@click.argument("instance_id")
@click.option("--host", required=True, help="The agent's host name (`zbmc agent --host`).")
@click.option(
    "--interface", required=True, help="The interface on that host carrying only this instance."
)
@json_option
@click.pass_context
def attach(ctx: click.Context, instance_id: str, host: str, interface: str, as_json: bool) -> None:
    """Attach INSTANCE_ID (or move it) to HOST's INTERFACE. JSON: {instanceId, host, interface}."""
    with transaction(ctx) as (conn, now):
        try:
            attachments.attach(conn, instance_id, host, interface, now)
        except attachments.AttachmentError as exc:
            raise click.ClickException(str(exc)) from None
    emit({"instanceId": instance_id, "host": host, "interface": interface}, as_json)


@network.command("detach")
@click.argument("instance_id")
@click.pass_context
def detach(ctx: click.Context, instance_id: str) -> None:
    """Detach INSTANCE_ID: its agent removes its cap and counters at the next pass."""
    with transaction(ctx) as (conn, _now):
        attachments.detach(conn, instance_id)
    click.echo(f"detached {instance_id}")


@network.command("list")
@click.option("--host", default=None, help="Only this host's attachments.")
@json_option
@click.pass_context
def listing(ctx: click.Context, host: str | None, as_json: bool) -> None:
    """Attachments, by host and interface."""
    with transaction(ctx) as (conn, _now):
        emit(attachments.listing(conn, host), as_json)
