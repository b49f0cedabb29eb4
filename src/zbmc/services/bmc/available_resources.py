"""DescribeAvailableResources: what is sold where, with the free bandwidth and default traffic
package that the seed rules depend on."""

from __future__ import annotations

from pydantic import Field
from sqlalchemy import select

from zbmc.context import Context
from zbmc.db.tables import instance_types, offerings, zones
from zbmc.domain.changes import POSTPAID, PREPAID
from zbmc.domain.sizes import gb_to_tb
from zbmc.errors import InstanceTypeNotFound, InvalidParameter, ZoneNotFound
from zbmc.registry import action
from zbmc.wire import RequiredStr, WireModel

SELL, SELL_SHORTAGE, SOLD_OUT = "SELL", "SELL_SHORTAGE", "SOLD_OUT"


def sell_status(qty: int) -> str:
    if qty > 10:
        return SELL
    return SELL_SHORTAGE if qty > 0 else SOLD_OUT


class DescribeAvailableResourcesRequest(WireModel):
    instance_charge_type: RequiredStr
    zone_id: str | None = None
    instance_type_id: str | None = None
    sell_status: str | None = None


class AvailableResource(WireModel):
    zone_id: str
    sell_status: str
    internet_charge_types: list[str]
    instance_type_id: str
    maximum_bandwidth_out: int
    default_bandwidth_out: int
    default_traffic_package_size: float | None
    qty: int


class DescribeAvailableResourcesResponse(WireModel):
    available_resources: list[AvailableResource] = Field(default_factory=list)


@action(
    "DescribeAvailableResources",
    request=DescribeAvailableResourcesRequest,
    response=DescribeAvailableResourcesResponse,
    write=False,
)
def describe_available_resources(
    ctx: Context, req: DescribeAvailableResourcesRequest
) -> DescribeAvailableResourcesResponse:
    """Sellable instance types per zone, their network defaults and stock."""
    if req.instance_charge_type not in (PREPAID, POSTPAID):
        raise InvalidParameter(
            detail="invalid parameter `instanceChargeType`: must be PREPAID or POSTPAID"
        )
    if req.sell_status is not None and req.sell_status not in (SELL, SELL_SHORTAGE, SOLD_OUT):
        raise InvalidParameter(
            detail="invalid parameter `sellStatus`: must be SELL, SELL_SHORTAGE or SOLD_OUT"
        )
    conn = ctx.conn
    if (
        req.zone_id is not None
        and conn.execute(select(zones.c.zone_id).where(zones.c.zone_id == req.zone_id)).first()
        is None
    ):
        raise ZoneNotFound(zone_id=req.zone_id)
    if (
        req.instance_type_id is not None
        and conn.execute(
            select(instance_types.c.instance_type_id).where(
                instance_types.c.instance_type_id == req.instance_type_id
            )
        ).first()
        is None
    ):
        raise InstanceTypeNotFound(instance_type_id=req.instance_type_id)
    query = select(offerings).order_by(offerings.c.zone_id, offerings.c.instance_type_id)
    if req.zone_id is not None:
        query = query.where(offerings.c.zone_id == req.zone_id)
    if req.instance_type_id is not None:
        query = query.where(offerings.c.instance_type_id == req.instance_type_id)
    resources = []
    for row in conn.execute(query):
        status = sell_status(row.qty)
        if req.instance_charge_type not in row.instance_charge_types:
            continue
        if req.sell_status is not None and status != req.sell_status:
            continue
        resources.append(
            AvailableResource(
                zone_id=row.zone_id,
                sell_status=status,
                internet_charge_types=list(row.internet_charge_types),
                instance_type_id=row.instance_type_id,
                maximum_bandwidth_out=row.maximum_bandwidth_out,
                default_bandwidth_out=row.default_bandwidth_out,
                default_traffic_package_size=gb_to_tb(row.default_traffic_package_gb),
                qty=row.qty,
            )
        )
    return DescribeAvailableResourcesResponse(available_resources=resources)
