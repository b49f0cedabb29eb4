"""The servers' management side: DescribeInstancesMonitorHealth (both versions), and for
2026-02-01 only DescribeInstanceIpmiUrl and ResetInstanceIpmiPassword (spec README §8).

No source documents the values (docs/behaviour.md): zbmc has no sensors, so it reports what it
knows, the hardware of a server that exists as NORMAL and that of one being created, failed to
be created or recycled as UNKNOWN, and no temperatures (null)."""

from __future__ import annotations

from pydantic import Field
from sqlalchemy import select

from zbmc import errors
from zbmc.context import Context
from zbmc.db.tables import instances
from zbmc.domain import creation, lifecycle
from zbmc.registry import action
from zbmc.services.bmc.shapes import EmptyResponse, InstanceIdRequest, InstanceIdsRequest
from zbmc.store import instances as store
from zbmc.wire import V2026, RequiredStr, WireModel

NORMAL, UNKNOWN = "NORMAL", "UNKNOWN"
# No hardware to report on (yet, or any more).
_NO_HARDWARE = frozenset(
    {lifecycle.PENDING, lifecycle.CREATING, lifecycle.CREATE_FAILED, lifecycle.RECYCLE}
)


class InstanceHealth(WireModel):
    instance_id: str
    cpu_status: str
    disk_status: str
    ipmi_ping: str
    ipmi_status: str
    memory_status: str
    psu_status: str
    wan_port_status: str
    fan_status: str
    server_brand: str | None = None
    server_model: str | None = None
    cpu_temp: float | None = None
    cpu0_temp: float | None = None
    cpu1_temp: float | None = None
    cpu2_temp: float | None = None
    inlet_temp: float | None = None
    temp_unit: str | None = None


class DescribeInstancesMonitorHealthResponse(WireModel):
    monitor_health_list: list[InstanceHealth] = Field(default_factory=list)


def _health(instance_id: str, status: str, instance_type_id: str) -> InstanceHealth:
    state = UNKNOWN if status in _NO_HARDWARE else NORMAL
    # a powered-off server's BMC still answers; its network port carries nothing
    port = NORMAL if status in (lifecycle.RUNNING, lifecycle.BOOTING) else UNKNOWN
    return InstanceHealth(
        instance_id=instance_id,
        cpu_status=state,
        disk_status=state,
        ipmi_ping=state,
        ipmi_status=state,
        memory_status=state,
        psu_status=state,
        wan_port_status=port if state == NORMAL else UNKNOWN,
        fan_status=state,
        server_model=instance_type_id,
    )


@action(
    "DescribeInstancesMonitorHealth",
    request=InstanceIdsRequest,
    response=DescribeInstancesMonitorHealthResponse,
    write=False,
)
def describe_instances_monitor_health(
    ctx: Context, req: InstanceIdsRequest
) -> DescribeInstancesMonitorHealthResponse:
    """The hardware status of instances (CPU, disks, memory, PSU, fans, WAN port, IPMI); an
    unknown id fails the whole request."""
    wanted = list(dict.fromkeys(req.instance_ids))
    rows = {
        row.instance_id: row
        for row in ctx.conn.execute(
            select(instances.c.instance_id, instances.c.status, instances.c.instance_type_id).where(
                instances.c.tenant_id == ctx.tenant_id, instances.c.instance_id.in_(wanted)
            )
        )
    }
    for instance_id in wanted:
        if instance_id not in rows:
            raise errors.InstanceNotFound(instance_id=instance_id)
    return DescribeInstancesMonitorHealthResponse(
        monitor_health_list=[_health(i, rows[i].status, rows[i].instance_type_id) for i in wanted]
    )


def _check_managed(instance_id: str, status: str) -> None:
    """The IPMI console exists once the server does, until it is recycled."""
    if status == lifecycle.RECYCLE:
        raise errors.InstanceRecycled(instance_id=instance_id)
    if status in (lifecycle.PENDING, lifecycle.CREATING):
        raise errors.InstanceCreating(instance_id=instance_id)
    if status == lifecycle.CREATE_FAILED:
        raise errors.InstanceStatusDenied(instance_id=instance_id, status=status)


class DescribeInstanceIpmiUrlResponse(WireModel):
    url: str | None = None


@action(
    "DescribeInstanceIpmiUrl",
    request=InstanceIdRequest,
    response=DescribeInstanceIpmiUrlResponse,
    write=False,
    versions=(V2026,),
)
def describe_instance_ipmi_url(
    ctx: Context, req: InstanceIdRequest
) -> DescribeInstanceIpmiUrlResponse:
    """The address of the instance's IPMI console (``ZBMC_IPMI_URL``, a template)."""
    row = store.load(ctx.tx, ctx.tenant_id, req.instance_id, lock=False)
    _check_managed(req.instance_id, row.status)
    url = ctx.settings.ipmi_url.format(instanceId=row.instance_id, zoneId=row.zone_id)
    return DescribeInstanceIpmiUrlResponse(url=url)


class ResetInstanceIpmiPasswordRequest(WireModel):
    instance_id: RequiredStr
    password: RequiredStr


@action(
    "ResetInstanceIpmiPassword",
    request=ResetInstanceIpmiPasswordRequest,
    response=EmptyResponse,
    write=True,
    versions=(V2026,),
)
def reset_instance_ipmi_password(
    ctx: Context, req: ResetInstanceIpmiPasswordRequest
) -> EmptyResponse:
    """Set the IPMI console's login password (the instance password rules, spec Q-I11). zbmc
    keeps no passwords: the request is checked and accepted."""
    row = store.load(ctx.tx, ctx.tenant_id, req.instance_id, lock=True)
    creation.check_password(req.password)
    _check_managed(req.instance_id, row.status)
    return EmptyResponse()
