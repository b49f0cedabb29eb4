"""ModifyInstancesResourceGroup: move instances to another resource group of the tenant."""

from __future__ import annotations

from zbmc.context import Context
from zbmc.registry import action
from zbmc.services.bmc.instances import set_all
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
    set_all(ctx, req.instance_ids, resource_group_id=stored)
    return EmptyResponse()
