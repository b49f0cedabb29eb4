"""StartInstances and StopInstances: batch, all-or-nothing (spec Q-I4)."""

from __future__ import annotations

from sqlalchemy import select, update

from zbmc.context import Context
from zbmc.db.tables import instances
from zbmc.domain.lifecycle import START, STOP, power_transition
from zbmc.errors import InstanceNotFound
from zbmc.registry import action
from zbmc.services.bmc.shapes import EmptyResponse, InstanceIdsRequest


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
    targets: dict[str, str] = {}
    for instance_id in wanted:
        row = rows.get(instance_id)
        if row is None:
            raise InstanceNotFound(instance_id=instance_id)
        targets[instance_id] = power_transition(operation, instance_id, row.status)
    for instance_id, status in targets.items():
        ctx.conn.execute(
            update(instances).where(instances.c.instance_id == instance_id).values(status=status)
        )
    return EmptyResponse()


@action("StartInstances", request=InstanceIdsRequest, response=EmptyResponse, write=True)
def start_instances(ctx: Context, req: InstanceIdsRequest) -> EmptyResponse:
    """Power on STOPPED instances."""
    return _apply(ctx, req, START)


@action("StopInstances", request=InstanceIdsRequest, response=EmptyResponse, write=True)
def stop_instances(ctx: Context, req: InstanceIdsRequest) -> EmptyResponse:
    """Power off RUNNING instances."""
    return _apply(ctx, req, STOP)
