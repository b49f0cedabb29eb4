"""ModifyInstancesResourceGroup: move instances to another resource group of the tenant."""

from __future__ import annotations

from sqlalchemy import select, update

from zbmc.context import Context
from zbmc.db.tables import instances
from zbmc.errors import InstanceNotFound
from zbmc.registry import action
from zbmc.services.bmc.shapes import EmptyResponse
from zbmc.store import resource_groups
from zbmc.wire import RequiredStr, StrList, WireModel


class ModifyInstancesResourceGroupRequest(WireModel):
    instance_ids: StrList
    resource_group_id: RequiredStr


@action(
    "ModifyInstancesResourceGroup",
    request=ModifyInstancesResourceGroupRequest,
    response=EmptyResponse,
    write=True,
)
def modify_instances_resource_group(
    ctx: Context, req: ModifyInstancesResourceGroupRequest
) -> EmptyResponse:
    """Move instances to a resource group; if any id or the group is unknown nothing moves."""
    stored = resource_groups.resolve(ctx.conn, ctx.tenant_id, req.resource_group_id)
    wanted = set(req.instance_ids)
    found = {
        row.instance_id
        for row in ctx.conn.execute(
            select(instances.c.instance_id)
            .where(instances.c.tenant_id == ctx.tenant_id, instances.c.instance_id.in_(wanted))
            .with_for_update()
        )
    }
    for instance_id in req.instance_ids:
        if instance_id not in found:
            raise InstanceNotFound(instance_id=instance_id)
    ctx.conn.execute(
        update(instances)
        .where(instances.c.tenant_id == ctx.tenant_id, instances.c.instance_id.in_(wanted))
        .values(resource_group_id=stored)
    )
    return EmptyResponse()
