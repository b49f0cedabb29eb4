"""TerminateInstance and ReleaseInstances (spec instances.md §11, §13, README C2/Q8)."""

from __future__ import annotations

from sqlalchemy import select

from zbmc.billing import terminations
from zbmc.context import Context
from zbmc.db.tables import instances
from zbmc.domain import lifecycle
from zbmc.errors import InstanceNotFound
from zbmc.registry import action
from zbmc.services.bmc.shapes import EmptyResponse, InstanceIdRequest, InstanceIdsRequest
from zbmc.store import instances as store


@action("TerminateInstance", request=InstanceIdRequest, response=EmptyResponse, write=True)
def terminate_instance(ctx: Context, req: InstanceIdRequest) -> EmptyResponse:
    """POSTPAID: billing stops and the instance goes to the recycle bin (RECYCLE), released
    after 24 h. PREPAID: the subscription ends (autoRenew false), the instance runs until its
    period ends. A failed creation is released at once and a prepaid one refunded in full."""
    row = store.load(ctx.tx, ctx.tenant_id, req.instance_id, lock=True)
    verb = lifecycle.terminate_action(row.instance_charge_type)
    move = lifecycle.decide(verb, req.instance_id, row.status)
    if move.effect == lifecycle.RECYCLED:
        terminations.recycle(ctx.conn, row, ctx.now)
    elif move.effect == lifecycle.UNSUBSCRIBED:
        terminations.unsubscribe(ctx.conn, req.instance_id)
    elif move.effect == lifecycle.REFUNDED_DELETED:
        terminations.refund_creation(ctx.conn, row, ctx.now)
        terminations.release(ctx.conn, row, ctx.now)
    return EmptyResponse()


@action("ReleaseInstances", request=InstanceIdsRequest, response=EmptyResponse, write=True)
def release_instances(ctx: Context, req: InstanceIdsRequest) -> EmptyResponse:
    """Delete recycled instances for good: addresses freed, stock returned; orders and ledger
    entries stay. If any id is unknown or not recycled, nothing is released."""
    wanted = list(dict.fromkeys(req.instance_ids))
    rows = {
        row.instance_id: row
        for row in ctx.conn.execute(
            select(
                instances.c.instance_id,
                instances.c.tenant_id,
                instances.c.zone_id,
                instances.c.instance_type_id,
                instances.c.status,
            )
            .where(instances.c.tenant_id == ctx.tenant_id, instances.c.instance_id.in_(wanted))
            .with_for_update()
        )
    }
    for instance_id in wanted:
        row = rows.get(instance_id)
        if row is None:
            raise InstanceNotFound(instance_id=instance_id)
        lifecycle.decide(lifecycle.RELEASE, instance_id, row.status)
    for instance_id in wanted:
        terminations.release(ctx.conn, rows[instance_id], ctx.now)
    return EmptyResponse()
