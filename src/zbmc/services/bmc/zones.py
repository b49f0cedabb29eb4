"""DescribeZones."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from sqlalchemy import select

from zbmc.context import Context
from zbmc.db.tables import zones
from zbmc.registry import action
from zbmc.wire import WireModel


class DescribeZonesRequest(WireModel):
    accept_language: str | None = None
    is_cloud_router_available: bool | None = None


class Zone(WireModel):
    v2026_only: ClassVar[frozenset[str]] = frozenset({"is_byoip_enabled"})

    zone_id: str
    zone_name: str
    city_name: str
    area_name: str
    is_cloud_router_available: bool
    is_byoip_enabled: bool


class DescribeZonesResponse(WireModel):
    zone_set: list[Zone] = Field(default_factory=list)


@action("DescribeZones", request=DescribeZonesRequest, response=DescribeZonesResponse, write=False)
def describe_zones(ctx: Context, req: DescribeZonesRequest) -> DescribeZonesResponse:
    """List the zones where bare metal is offered."""
    query = select(zones).order_by(zones.c.zone_id)
    if req.is_cloud_router_available is not None:
        query = query.where(zones.c.is_cloud_router_available == req.is_cloud_router_available)
    return DescribeZonesResponse(
        zone_set=[
            Zone(
                zone_id=row.zone_id,
                zone_name=row.zone_name,
                city_name=row.city_name,
                area_name=row.area_name,
                is_cloud_router_available=row.is_cloud_router_available,
                is_byoip_enabled=row.is_byoip_enabled,
            )
            for row in ctx.conn.execute(query)
        ]
    )
