"""DescribeInstances (with every filter of the spec and paging) and ModifyInstancesAttribute."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import Field
from sqlalchemy import ColumnElement, Row, func, select, update
from sqlalchemy.engine import Connection

from zbmc.clock import iso
from zbmc.context import Context
from zbmc.db.tables import images, instance_types, instances, tenants, zones
from zbmc.domain.changes import BY_TRAFFIC_PACKAGE, PREPAID
from zbmc.domain.sizes import gb_to_tb
from zbmc.errors import (
    ImageNotFound,
    InstanceNameExceed,
    InstanceNotFound,
    InstanceTypeNotFound,
    InvalidParameter,
    ZoneNotFound,
)
from zbmc.registry import action
from zbmc.services.bmc.instance_types import InstanceType, instance_type_model
from zbmc.services.bmc.shapes import EmptyResponse
from zbmc.store import resource_groups
from zbmc.wire import RequiredStr, StrList, WireModel

DEFAULT_RESOURCE_GROUP = (resource_groups.DEFAULT_ID, resource_groups.DEFAULT_NAME)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9.\-_]{1,64}$")
MAX_PAGE_SIZE = 1000


class Tag(WireModel):
    key: str
    value: str


class Tags(WireModel):
    tags: list[Tag] = Field(default_factory=list)


class Nic(WireModel):
    wan_name: str
    lan_name: str


class InstanceInfo(WireModel):
    v2026_only: ClassVar[frozenset[str]] = frozenset(
        {"primary_public_ipv6_address", "ipmi_enabled"}
    )

    instance_id: str
    zone_id: str
    instance_name: str
    hostname: str
    instance_type_id: str
    instance_type: InstanceType
    image_id: str | None
    image_name: str | None
    ipxe_url: str | None
    instance_charge_type: str
    bandwidth_out_mbps: int
    internet_charge_type: str
    period: int | None
    primary_public_ip_address: str | None
    primary_public_ipv6_address: str | None = Field(alias="primaryPublicIPv6Address")
    public_ip_addresses: list[str]
    private_ip_addresses: list[str]
    ipv6_addresses: list[str] | None
    subnet_ids: list[str]
    create_time: str | None
    expired_time: str | None
    resource_group_id: str
    resource_group_name: str
    instance_status: str
    traffic_package_size: float | None
    raid_config: dict[str, Any] | None
    partitions: list[dict[str, Any]] | None
    nic: Nic
    auto_renew: bool
    key_id: str | None
    tags: Tags
    enable_gateway_mode: bool
    ipmi_enabled: bool


class DescribeInstancesRequest(WireModel):
    instance_ids: StrList | None = None
    zone_id: str | None = None
    resource_group_id: str | None = None
    instance_type_id: str | None = None
    internet_charge_type: str | None = None
    image_id: str | None = None
    subnet_id: str | None = None
    instance_status: str | None = None
    instance_name: str | None = None
    hostname: str | None = None
    public_ip_addresses: StrList | None = None
    private_ip_addresses: StrList | None = None
    page_num: int = 1
    page_size: int = 20
    tag_keys: list[str] | None = Field(default=None, max_length=20)
    tags: list[Tag] | None = Field(default=None, max_length=20)


class DescribeInstancesResponse(WireModel):
    total_count: int
    data_set: list[InstanceInfo] = Field(default_factory=list)


def _nic(stored: dict[str, str] | None, ha: bool) -> Nic:
    if stored is not None:
        return Nic.model_construct(wan_name=stored["wanName"], lan_name=stored["lanName"])
    return Nic.model_construct(
        wan_name="bond0" if ha else "wan0", lan_name="bond1" if ha else "lan0"
    )


def instance_info(
    row: Row[Any],
    type_model: InstanceType,
    image_name: str | None,
    group_names: dict[str, str] | None = None,
) -> InstanceInfo:
    by_package = row.internet_charge_type == BY_TRAFFIC_PACKAGE
    prepaid = row.instance_charge_type == PREPAID
    group_id = row.resource_group_id or DEFAULT_RESOURCE_GROUP[0]
    group_name = (
        DEFAULT_RESOURCE_GROUP[1]
        if group_id == DEFAULT_RESOURCE_GROUP[0]
        else (group_names or {}).get(group_id, group_id)
    )
    # Built from stored rows of known types: skip re-validating thousands of fields per page.
    return InstanceInfo.model_construct(
        instance_id=row.instance_id,
        zone_id=row.zone_id,
        instance_name=row.instance_name,
        hostname=row.hostname,
        instance_type_id=row.instance_type_id,
        instance_type=type_model,
        image_id=row.image_id,
        image_name=image_name,
        ipxe_url=row.ipxe_url,
        instance_charge_type=row.instance_charge_type,
        bandwidth_out_mbps=row.bandwidth,
        internet_charge_type=row.internet_charge_type,
        period=row.period if prepaid else None,
        primary_public_ip_address=row.primary_ip,
        primary_public_ipv6_address=row.ipv6,
        public_ip_addresses=[row.primary_ip] if row.primary_ip else [],
        private_ip_addresses=[row.private_ip] if row.private_ip else [],
        ipv6_addresses=[row.ipv6] if row.ipv6 else None,
        subnet_ids=[row.subnet_id] if row.subnet_id else [],
        create_time=iso(row.create_time),
        expired_time=iso(row.expired_time) if prepaid else None,
        resource_group_id=group_id,
        resource_group_name=group_name,
        instance_status=row.status,
        traffic_package_size=gb_to_tb(row.traffic_package_gb) if by_package else None,
        raid_config=row.raid_config,
        partitions=row.partitions,
        nic=_nic(row.nic, type_model.is_ha),
        auto_renew=bool(row.auto_renew) if prepaid else False,
        key_id=row.key_id,
        tags=Tags.model_construct(
            tags=[Tag.model_construct(key=t["key"], value=t["value"]) for t in row.tags]
        ),
        enable_gateway_mode=bool(row.enable_gateway_mode),
        ipmi_enabled=True,
    )


def _exists(conn: Connection, column: Any, value: str) -> bool:
    return conn.execute(select(column).where(column == value).limit(1)).first() is not None


def _text_match(column: Any, pattern: str) -> ColumnElement[bool]:
    # spec Q-I5: a trailing * is a case-sensitive prefix match, anything else is exact
    if pattern.endswith("*"):
        prefix = pattern[:-1]
        return func.substr(column, 1, len(prefix)) == prefix
    return column == pattern  # type: ignore[no-any-return]


def _conditions(conn: Connection, tenant_id: str, req: DescribeInstancesRequest) -> list[Any]:
    c = instances.c
    where: list[Any] = [c.tenant_id == tenant_id]
    if req.zone_id is not None:
        if not _exists(conn, zones.c.zone_id, req.zone_id):
            raise ZoneNotFound(zone_id=req.zone_id)
        where.append(c.zone_id == req.zone_id)
    if req.instance_type_id is not None:
        if not _exists(conn, instance_types.c.instance_type_id, req.instance_type_id):
            raise InstanceTypeNotFound(instance_type_id=req.instance_type_id)
        where.append(c.instance_type_id == req.instance_type_id)
    if req.image_id is not None:
        if not _exists(conn, images.c.image_id, req.image_id):
            raise ImageNotFound(image_id=req.image_id)
        where.append(c.image_id == req.image_id)
    if req.instance_ids is not None:
        where.append(c.instance_id.in_(req.instance_ids))
    if req.resource_group_id is not None:
        where.append(func.coalesce(c.resource_group_id, "default") == req.resource_group_id)
    if req.subnet_id is not None:
        where.append(c.subnet_id == req.subnet_id)
    for value, column in (
        (req.internet_charge_type, c.internet_charge_type),
        (req.instance_status, c.status),
    ):
        if value is not None:
            where.append(column == value)
    if req.instance_name is not None:
        where.append(_text_match(c.instance_name, req.instance_name))
    if req.hostname is not None:
        where.append(_text_match(c.hostname, req.hostname))
    if req.public_ip_addresses is not None:
        where.append(c.primary_ip.in_(req.public_ip_addresses))
    if req.private_ip_addresses is not None:
        where.append(c.private_ip.in_(req.private_ip_addresses))
    return where


def _count(conn: Connection, tenant_id: str, where: list[Any]) -> int:
    if len(where) == 1:  # only the tenant condition: the maintained count, not a scan
        count = conn.execute(
            select(tenants.c.instance_count).where(tenants.c.tenant_id == tenant_id)
        ).scalar_one()
        return int(count)
    return int(conn.execute(select(func.count()).select_from(instances).where(*where)).scalar_one())


def _tags_match(row: Row[Any], req: DescribeInstancesRequest) -> bool:
    pairs = {(t["key"], t["value"]) for t in row.tags}
    keys = {key for key, _ in pairs}
    if req.tag_keys and not set(req.tag_keys) <= keys:
        return False
    return not req.tags or all((t.key, t.value) in pairs for t in req.tags)


@action(
    "DescribeInstances",
    request=DescribeInstancesRequest,
    response=DescribeInstancesResponse,
    write=False,
)
def describe_instances(ctx: Context, req: DescribeInstancesRequest) -> DescribeInstancesResponse:
    """List this tenant's instances, filtered and paged (pageNum from 1, pageSize up to 1000)."""
    if not 1 <= req.page_size <= MAX_PAGE_SIZE:
        raise InvalidParameter(detail=f"invalid parameter `pageSize`: must be 1..{MAX_PAGE_SIZE}")
    if req.page_num < 1:
        raise InvalidParameter(detail="invalid parameter `pageNum`: must be at least 1")
    conn = ctx.conn
    where = _conditions(conn, ctx.tenant_id, req)
    offset = (req.page_num - 1) * req.page_size
    query = select(instances).where(*where).order_by(instances.c.instance_id)
    if req.tag_keys or req.tags:
        matching = [row for row in conn.execute(query) if _tags_match(row, req)]
        total, rows = len(matching), matching[offset : offset + req.page_size]
    else:
        total = _count(conn, ctx.tenant_id, where)
        rows = (
            list(conn.execute(query.limit(req.page_size).offset(offset))) if total > offset else []
        )
    type_ids = {row.instance_type_id for row in rows}
    types = (
        {
            t.instance_type_id: instance_type_model(t, with_images=False)
            for t in conn.execute(
                select(instance_types).where(instance_types.c.instance_type_id.in_(type_ids))
            )
        }
        if rows
        else {}
    )
    image_ids = {row.image_id for row in rows if row.image_id}
    names: dict[str, str] = {
        row.image_id: row.image_name
        for row in conn.execute(
            select(images.c.image_id, images.c.image_name).where(images.c.image_id.in_(image_ids))
        )
    }
    groups = resource_groups.names(conn, (row.resource_group_id for row in rows))
    return DescribeInstancesResponse(
        total_count=total,
        data_set=[
            instance_info(row, types[row.instance_type_id], names.get(row.image_id or ""), groups)
            for row in rows
        ],
    )


class ModifyInstancesAttributeRequest(WireModel):
    instance_ids: StrList
    instance_name: RequiredStr


@action(
    "ModifyInstancesAttribute",
    request=ModifyInstancesAttributeRequest,
    response=EmptyResponse,
    write=True,
)
def modify_instances_attribute(ctx: Context, req: ModifyInstancesAttributeRequest) -> EmptyResponse:
    """Rename instances; if any id is unknown nothing is renamed."""
    if not NAME_PATTERN.match(req.instance_name):
        raise InstanceNameExceed()
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
        .values(instance_name=req.instance_name)
    )
    return EmptyResponse()
