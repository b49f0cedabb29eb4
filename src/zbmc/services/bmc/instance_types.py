"""DescribeInstanceTypes, and the InstanceType shape shared with DescribeInstances."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from sqlalchemy import select

from zbmc.context import Context
from zbmc.db.tables import images, instance_types
from zbmc.errors import ImageNotFound, InvalidParameter
from zbmc.registry import action
from zbmc.wire import StrList, WireModel


class Disk(WireModel):
    disk_size: int
    disk_count: int


class InstanceDiskInfo(WireModel):
    total_disk_size: int
    disk_description: str
    disks: list[Disk]


class InstanceType(WireModel):
    v2026_only: ClassVar[frozenset[str]] = frozenset({"vpu_vendor", "vpu_card", "vpu_count"})

    instance_type_id: str
    description: str
    cpu_core_count: int
    cpu_detail: str
    cpu_cores: int
    cpu_threads: int
    base_frequency: str
    memory_size: int
    maximum_bandwidth: int
    support_raids: list[int]
    support_subnet: bool
    is_ha: bool = Field(alias="isHA")
    disk_info: InstanceDiskInfo
    image_ids: list[str] | None = None
    vpu_vendor: str | None = None
    vpu_card: str | None = None
    vpu_count: int | None = None


class InstanceTypeNoImages(InstanceType):
    """InstanceInfo.instanceType carries no imageIds key (spec §7)."""

    omitted: ClassVar[frozenset[str]] = frozenset({"image_ids"})


def instance_type_model(row: Any, *, with_images: bool = True) -> InstanceType:
    cls = InstanceType if with_images else InstanceTypeNoImages
    return cls(
        instance_type_id=row.instance_type_id,
        description=row.description,
        cpu_core_count=row.cpu_core_count,
        cpu_detail=row.cpu_detail,
        cpu_cores=row.cpu_cores,
        cpu_threads=row.cpu_threads,
        base_frequency=row.base_frequency,
        memory_size=row.memory_size,
        maximum_bandwidth=row.maximum_bandwidth,
        support_raids=list(row.support_raids),
        support_subnet=row.support_subnet,
        is_ha=row.is_ha,
        disk_info=InstanceDiskInfo(
            total_disk_size=row.total_disk_size,
            disk_description=row.disk_description,
            disks=[Disk(disk_size=d["diskSize"], disk_count=d["diskCount"]) for d in row.disks],
        ),
        image_ids=list(row.image_ids) if with_images else None,
        vpu_vendor=row.vpu_vendor,
        vpu_card=row.vpu_card,
        vpu_count=row.vpu_count,
    )


class DescribeInstanceTypesRequest(WireModel):
    image_id: str | None = None
    instance_type_ids: StrList | None = None
    minimum_cpu_core_count: int | None = None
    maximum_cpu_core_count: int | None = None
    minimum_memory_size: int | None = None
    maximum_memory_size: int | None = None
    minimum_bandwidth: int | None = None
    support_raids: list[int] | None = None
    support_subnet: bool | None = None
    minimum_disk_size: int | None = None
    maximum_disk_size: int | None = None
    is_ha: bool | None = Field(default=None, alias="isHA")


class DescribeInstanceTypesResponse(WireModel):
    instance_types: list[InstanceType] = Field(default_factory=list)


_INT32_MAX = 2**31 - 1
_RANGES = (
    ("minimum_cpu_core_count", "cpu_core_count", ">="),
    ("maximum_cpu_core_count", "cpu_core_count", "<="),
    ("minimum_memory_size", "memory_size", ">="),
    ("maximum_memory_size", "memory_size", "<="),
    ("minimum_bandwidth", "maximum_bandwidth", ">="),
    ("minimum_disk_size", "total_disk_size", ">="),
    ("maximum_disk_size", "total_disk_size", "<="),
)


@action(
    "DescribeInstanceTypes",
    request=DescribeInstanceTypesRequest,
    response=DescribeInstanceTypesResponse,
    write=False,
)
def describe_instance_types(
    ctx: Context, req: DescribeInstanceTypesRequest
) -> DescribeInstanceTypesResponse:
    """Hardware specifications of the instance types, filtered."""
    query = select(instance_types).order_by(instance_types.c.instance_type_id)
    for field, column_name, op in _RANGES:
        bound = getattr(req, field)
        if bound is None:
            continue
        # The columns are 32-bit on PostgreSQL: a larger bound would fail in the query (a 500).
        if not 0 < bound <= _INT32_MAX:
            name = DescribeInstanceTypesRequest.model_fields[field].alias or field
            raise InvalidParameter(detail=f"invalid parameter `{name}`: must be 1..{_INT32_MAX}")
        column = instance_types.c[column_name]
        query = query.where(column >= bound if op == ">=" else column <= bound)
    if req.instance_type_ids is not None:
        query = query.where(instance_types.c.instance_type_id.in_(req.instance_type_ids))
    if req.support_subnet is not None:
        query = query.where(instance_types.c.support_subnet == req.support_subnet)
    if req.is_ha is not None:
        query = query.where(instance_types.c.is_ha == req.is_ha)
    if req.image_id is not None:
        known = ctx.conn.execute(select(images.c.image_id).where(images.c.image_id == req.image_id))
        if known.first() is None:
            raise ImageNotFound(image_id=req.image_id)
    rows = [
        row
        for row in ctx.conn.execute(query)
        if (req.image_id is None or req.image_id in row.image_ids)
        and (req.support_raids is None or set(req.support_raids) <= set(row.support_raids))
    ]
    return DescribeInstanceTypesResponse(instance_types=[instance_type_model(r) for r in rows])
