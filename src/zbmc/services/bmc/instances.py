"""DescribeInstances (with every filter of the spec and paging) and ModifyInstancesAttribute."""

from __future__ import annotations

import collections
import functools
import json
import operator
import re
import secrets
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import Field, PrivateAttr
from sqlalchemy import ColumnElement, Result, func, select, update
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
from zbmc.wire import V2026, RequiredStr, StrList, WireModel, wire_keys

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


def _nic_names(stored: dict[str, str] | None, ha: bool) -> tuple[str, str]:
    if stored is not None:
        return stored["wanName"], stored["lanName"]
    return ("bond0", "bond1") if ha else ("wan0", "lan0")


def _fields(
    row: Any,
    instance_type: Any,
    is_ha: bool,
    image_name: str | None,
    group_names: dict[str, str] | None,
    nic: Any,
    tags: Any,
) -> dict[str, Any]:
    """The fields of ``InstanceInfo`` for a stored row, by attribute name: the one place that
    says what DescribeInstances answers. ``instance_type``, ``nic`` and ``tags`` come built,
    as models (``instance_info``) or already in their wire form (``instance_wire``)."""
    by_package = row.internet_charge_type == BY_TRAFFIC_PACKAGE
    prepaid = row.instance_charge_type == PREPAID
    group_id = row.resource_group_id or DEFAULT_RESOURCE_GROUP[0]
    group_name = (
        DEFAULT_RESOURCE_GROUP[1]
        if group_id == DEFAULT_RESOURCE_GROUP[0]
        else (group_names or {}).get(group_id, group_id)
    )
    return {
        "instance_id": row.instance_id,
        "zone_id": row.zone_id,
        "instance_name": row.instance_name,
        "hostname": row.hostname,
        "instance_type_id": row.instance_type_id,
        "instance_type": instance_type,
        "image_id": row.image_id,
        "image_name": image_name,
        "ipxe_url": row.ipxe_url,
        "instance_charge_type": row.instance_charge_type,
        "bandwidth_out_mbps": row.bandwidth,
        "internet_charge_type": row.internet_charge_type,
        "period": row.period if prepaid else None,
        "primary_public_ip_address": row.primary_ip,
        "primary_public_ipv6_address": row.ipv6,
        "public_ip_addresses": [row.primary_ip] if row.primary_ip else [],
        "private_ip_addresses": [row.private_ip] if row.private_ip else [],
        "ipv6_addresses": [row.ipv6] if row.ipv6 else None,
        "subnet_ids": [row.subnet_id] if row.subnet_id else [],
        "create_time": iso(row.create_time),
        "expired_time": iso(row.expired_time) if prepaid else None,
        "resource_group_id": group_id,
        "resource_group_name": group_name,
        "instance_status": row.status,
        # never null for ByTrafficPackage (Terraform dereferences it): no package reads 0
        "traffic_package_size": gb_to_tb(row.traffic_package_gb or 0) if by_package else None,
        "raid_config": row.raid_config,
        "partitions": row.partitions,
        "nic": nic,
        "auto_renew": bool(row.auto_renew) if prepaid else False,
        "key_id": row.key_id,
        "tags": tags,
        "enable_gateway_mode": bool(row.enable_gateway_mode),
        "ipmi_enabled": True,
    }


def instance_info(
    row: Any,
    type_model: InstanceType,
    image_name: str | None,
    group_names: dict[str, str] | None = None,
) -> InstanceInfo:
    """The model of a stored instance (the wire contract; DescribeInstances sends the same
    bytes through ``instance_wire``)."""
    wan, lan = _nic_names(row.nic, type_model.is_ha)
    nic = Nic.model_construct(wan_name=wan, lan_name=lan)
    tags = Tags.model_construct(
        tags=[Tag.model_construct(key=t["key"], value=t["value"]) for t in row.tags]
    )
    fields = _fields(row, type_model, type_model.is_ha, image_name, group_names, nic, tags)
    # Built from stored rows of known types: skip re-validating thousands of fields per page.
    return InstanceInfo.model_construct(**fields)


def instance_wire(
    row: Any,
    type_wire: Any,
    is_ha: bool,
    image_name: str | None,
    group_names: dict[str, str] | None,
    version: str,
) -> dict[str, Any]:
    """``to_wire(instance_info(...), version)`` without building the models: a page of 100
    cost 7 ms of CPU through them (docs/performance.md). ``type_wire``: what stands for the
    instance type's wire form (``describe_instances`` passes a placeholder)."""
    wan_key, lan_key = _NIC_KEYS
    key_key, value_key = _TAG_KEYS
    wan, lan = _nic_names(row.nic, is_ha)
    tags = {_TAGS_KEY: [{key_key: t["key"], value_key: t["value"]} for t in row.tags]}
    fields = _fields(
        row, type_wire, is_ha, image_name, group_names, {wan_key: wan, lan_key: lan}, tags
    )
    pick, keys = _wire_order(version)
    return dict(zip(keys, pick(fields), strict=True))


@functools.cache
def _wire_order(version: str) -> tuple[Callable[[dict[str, Any]], tuple[Any, ...]], list[str]]:
    """The field values in wire order (picked in C) and their wire keys."""
    pairs = wire_keys(InstanceInfo, version)
    return operator.itemgetter(*(name for name, _ in pairs)), [key for _, key in pairs]


_NIC_KEYS = tuple(key for _, key in wire_keys(Nic, V2026))
_TAG_KEYS = tuple(key for _, key in wire_keys(Tag, V2026))
(_TAGS_KEY,) = (key for _, key in wire_keys(Tags, V2026))


def _tuples(result: Result[Any]) -> list[Any]:
    """The rows as named tuples: an attribute of a SQLAlchemy ``Row`` costs about 1 µs, 20 times
    a named tuple's, and a page reads some 45 of each of its rows."""
    make = _row_type(tuple(result.keys()))._make
    return [make(row) for row in result]


@functools.cache
def _row_type(names: tuple[str, ...]) -> Any:
    return collections.namedtuple("InstanceRow", names)


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


def _tags_match(row: Any, req: DescribeInstancesRequest) -> bool:
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
        matching = [row for row in _tuples(conn.execute(query)) if _tags_match(row, req)]
        total, rows = len(matching), matching[offset : offset + req.page_size]
    else:
        total = _count(conn, ctx.tenant_id, where)
        rows = (
            _tuples(conn.execute(query.limit(req.page_size).offset(offset)))
            if total > offset
            else []
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
    version = ctx.version
    # Every row of a type carries the same instanceType object: it is encoded once, and the
    # rows carry a placeholder string for it, unique to this answer (a random token), which
    # ``finish`` replaces in the encoded body. The encoding was the largest cost of a page.
    token = secrets.token_hex(8)
    placeholders = {type_id: f"\x00{token}:{type_id}\x00" for type_id in types}
    fragments = {
        _ENCODE(placeholder): _ENCODE(types[type_id].wire(version))
        for type_id, placeholder in placeholders.items()
    }
    data_set = [
        instance_wire(
            row,
            placeholders[row.instance_type_id],
            types[row.instance_type_id].is_ha,
            names.get(row.image_id or ""),
            groups,
            version,
        )
        for row in rows
    ]
    return DescribeInstancesPage.of(total, data_set, version, fragments)


# The pipeline's encoder (zbmc.pipeline): the fragments must be encoded exactly as the body is.
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode


class DescribeInstancesPage(DescribeInstancesResponse):
    """A DescribeInstancesResponse built in its wire form for one version (``instance_wire``);
    ``tests/test_describe_instances_wire.py`` checks it is byte for byte what the models give."""

    _wired: dict[str, Any] = PrivateAttr()
    _version: str = PrivateAttr()
    _fragments: dict[str, str] = PrivateAttr()

    @classmethod
    def of(
        cls,
        total: int,
        data_set: list[dict[str, Any]],
        version: str,
        fragments: dict[str, str],
    ) -> DescribeInstancesPage:
        page = cls.model_construct(total_count=total, data_set=[])
        keys = dict(wire_keys(DescribeInstancesResponse, version))
        page._wired = {keys["total_count"]: total, keys["data_set"]: data_set}
        page._version = version
        page._fragments = fragments
        return page

    def wire(self, version: str) -> dict[str, Any]:
        if version != self._version:
            raise ValueError(f"built for {self._version}, asked for {version}")
        return self._wired

    def finish(self, body: str) -> str:
        for placeholder, fragment in self._fragments.items():
            body = body.replace(placeholder, fragment)
        return body


def set_all(ctx: Context, instance_ids: list[str], **values: Any) -> None:
    """Set ``values`` on the tenant's instances, all or none: an unknown id is
    INVALID_INSTANCE_NOT_FOUND and nothing changes."""
    wanted = set(instance_ids)
    found = {
        row.instance_id
        for row in ctx.conn.execute(
            select(instances.c.instance_id)
            .where(instances.c.tenant_id == ctx.tenant_id, instances.c.instance_id.in_(wanted))
            .with_for_update()
        )
    }
    for instance_id in instance_ids:
        if instance_id not in found:
            raise InstanceNotFound(instance_id=instance_id)
    ctx.conn.execute(
        update(instances)
        .where(instances.c.tenant_id == ctx.tenant_id, instances.c.instance_id.in_(wanted))
        .values(**values)
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
    set_all(ctx, req.instance_ids, instance_name=req.instance_name)
    return EmptyResponse()
