"""StartInstances, StopInstances and RebootInstances: batch, all-or-nothing (spec Q-I4). Each
moves its instances into BOOTING or STOPPING and leaves the rest to the worker's host driver."""

from __future__ import annotations

from sqlalchemy import select, update

from zbmc.context import Context
from zbmc.db.tables import instances
from zbmc.domain.lifecycle import REBOOT, START, STOP, Move, decide
from zbmc.errors import InstanceNotFound
from zbmc.registry import action
from zbmc.services.bmc.shapes import EmptyResponse, InstanceIdsRequest


def schedule(ctx: Context, instance_id: str, move: Move) -> None:
    """Enter the move's status and hand its host operation to the worker (zbmc.hosts)."""
    ctx.conn.execute(
        update(instances)
        .where(instances.c.instance_id == instance_id)
        .values(
            status=move.status,
            host_op=move.host_op,
            host_op_due=ctx.now,
            host_op_attempts=0,
            host_op_error=None,
        )
    )


def _apply(ctx: Context, req: InstanceIdsRequest, operation: str) -> EmptyResponse:
    wanted = list(dict.fromkeys(req.instance_ids))
    rows = {
        row.instance_id: row
        for row in ctx.conn.execute(
            select(instances.c.instance_id, instances.c.status)
            .where(instances.c.tenant_id == ctx.tenant_id, instances.c.instance_id.in_(wanted))
            .with_for_update()
        )
    }
    moves: dict[str, Move] = {}
    for instance_id in wanted:
        row = rows.get(instance_id)
        if row is None:
            raise InstanceNotFound(instance_id=instance_id)
        moves[instance_id] = decide(operation, instance_id, row.status)
    for instance_id, move in moves.items():
        schedule(ctx, instance_id, move)
    return EmptyResponse()


@action("StartInstances", request=InstanceIdsRequest, response=EmptyResponse, write=True)
def start_instances(ctx: Context, req: InstanceIdsRequest) -> EmptyResponse:
    """Power on STOPPED instances (BOOTING, then RUNNING)."""
    return _apply(ctx, req, START)


@action("StopInstances", request=InstanceIdsRequest, response=EmptyResponse, write=True)
def stop_instances(ctx: Context, req: InstanceIdsRequest) -> EmptyResponse:
    """Power off RUNNING instances (STOPPING, then STOPPED)."""
    return _apply(ctx, req, STOP)


@action("RebootInstances", request=InstanceIdsRequest, response=EmptyResponse, write=True)
def reboot_instances(ctx: Context, req: InstanceIdsRequest) -> EmptyResponse:
    """Restart RUNNING or STOPPED instances (BOOTING, then RUNNING)."""
    return _apply(ctx, req, REBOOT)
