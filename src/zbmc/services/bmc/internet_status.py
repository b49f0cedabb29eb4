"""DescribeInstanceInternetStatus: current and pending bandwidth and traffic package."""

from __future__ import annotations

from zbmc.context import Context
from zbmc.domain.changes import BY_TRAFFIC_PACKAGE
from zbmc.domain.sizes import gb_to_tb
from zbmc.registry import action
from zbmc.services.bmc.shapes import InstanceIdRequest
from zbmc.store import instances as store
from zbmc.wire import WireModel


class DescribeInstanceInternetStatusResponse(WireModel):
    instance_id: str
    instance_name: str
    internet_max_bandwidth_out: int
    modified_internet_max_bandwidth_out: int | None
    modified_bandwidth_status: str
    traffic_package_size: float | None
    modified_traffic_package_size: float | None
    modified_traffic_package_status: str | None


@action(
    "DescribeInstanceInternetStatus",
    request=InstanceIdRequest,
    response=DescribeInstanceInternetStatusResponse,
    write=False,
    direct=True,
)
def describe_instance_internet_status(
    ctx: Context, req: InstanceIdRequest
) -> DescribeInstanceInternetStatusResponse:
    """Bandwidth and traffic package now, and what a change in progress or waiting will set."""
    row = store.load(ctx.tx, ctx.tenant_id, req.instance_id, lock=False)
    by_package = row.internet_charge_type == BY_TRAFFIC_PACKAGE
    return DescribeInstanceInternetStatusResponse(
        instance_id=row.instance_id,
        instance_name=row.instance_name,
        internet_max_bandwidth_out=row.bandwidth,
        modified_internet_max_bandwidth_out=row.bw_pending,
        modified_bandwidth_status=row.bw_status,
        traffic_package_size=gb_to_tb(row.traffic_package_gb or 0) if by_package else None,
        modified_traffic_package_size=gb_to_tb(row.tp_pending_gb) if by_package else None,
        modified_traffic_package_status=row.tp_status if by_package else None,
    )
