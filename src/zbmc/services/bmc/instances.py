"""DescribeInstances (with every filter of the spec and paging) and ModifyInstancesAttribute."""

from __future__ import annotations

import functools
import json
import operator
import re
import secrets
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import Field, PrivateAttr
from sqlalchemy import select, update

from zbmc.clock import iso
from zbmc.context import Context
from zbmc.db.direct import Tx
from zbmc.db.tables import instances
from zbmc.domain.changes import BY_TRAFFIC_PACKAGE, PREPAID
from zbmc.domain.sizes import gb_to_tb
from zbmc.errors import InstanceNameExceed, InstanceNotFound, InvalidParameter
from zbmc.registry import action
from zbmc.services.bmc import fragments
from zbmc.services.bmc.instance_types import InstanceType, instance_type_model
from zbmc.services.bmc.shapes import EmptyResponse
from zbmc.store import instance_pages as pages
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


def instance_fragment(
    row: Any,
    is_ha: bool,
    image_name: str | None,
    group_names: dict[str, str] | None,
    version: str,
) -> fragments.Fragment:
    """The bytes of ``to_wire(instance_info(...), version)`` as the pipeline's encoder writes
    them inside a page, without building the models (a page of 100 cost 7 ms of CPU through
    them: docs/performance.md): up to the ``instanceType`` value, and after it."""
    wan_key, lan_key = _NIC_KEYS
    key_key, value_key = _TAG_KEYS
    wan, lan = _nic_names(row.nic, is_ha)
    tags = {_TAGS_KEY: [{key_key: t["key"], value_key: t["value"]} for t in row.tags]}
    fields = _fields(row, None, is_ha, image_name, group_names, {wan_key: wan, lan_key: lan}, tags)
    head, type_key, tail = _wire_order(version)
    before = _ENCODE(dict(zip(head[1], head[0](fields), strict=True)))
    after = _ENCODE(dict(zip(tail[1], tail[0](fields), strict=True)))
    # '{..., "instanceTypeId": "M6C"}' + '{"ipxeUrl": ...}' around the type
    return f"{before[:-1]}, {type_key}: ".encode(), f", {after[1:]}".encode()


_Picker = tuple[Callable[[dict[str, Any]], tuple[Any, ...]], list[str]]


@functools.cache
def _wire_order(version: str) -> tuple[_Picker, str, _Picker]:
    """The field values before and after the instance type in wire order (picked in C) with
    their wire keys, and the instance type's key as encoded."""
    pairs = wire_keys(InstanceInfo, version)
    at = [name for name, _ in pairs].index("instance_type")

    def picker(part: tuple[tuple[str, str], ...]) -> _Picker:
        names = [name for name, _ in part]
        pick = operator.itemgetter(*names)
        return (pick if len(names) > 1 else lambda d: (pick(d),)), [key for _, key in part]

    return picker(pairs[:at]), _ENCODE(pairs[at][1]), picker(pairs[at + 1 :])


_NIC_KEYS = tuple(key for _, key in wire_keys(Nic, V2026))
_TAG_KEYS = tuple(key for _, key in wire_keys(Tag, V2026))
(_TAGS_KEY,) = (key for _, key in wire_keys(Tags, V2026))


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
    direct=True,
    reader=True,
)
def describe_instances(ctx: Context, req: DescribeInstancesRequest) -> DescribeInstancesResponse:
    """List this tenant's instances, filtered and paged (pageNum from 1, pageSize up to 1000).

    A page reads its keys, takes each instance's encoded answer from the process's cache
    (``fragments``) and reads the full rows of the others only."""
    if not 1 <= req.page_size <= MAX_PAGE_SIZE:
        raise InvalidParameter(detail=f"invalid parameter `pageSize`: must be 1..{MAX_PAGE_SIZE}")
    if req.page_num < 1:
        raise InvalidParameter(detail="invalid parameter `pageNum`: must be at least 1")
    tx = ctx.tx
    where = pages.filter_of(tx, ctx.tenant_id, req)
    offset = (req.page_num - 1) * req.page_size
    if req.tag_keys or req.tags:
        matching = [row for row in pages.tagged_keys(tx, where) if _tags_match(row, req)]
        total, keyed = len(matching), matching[offset : offset + req.page_size]
    else:
        keyed = pages.keys(tx, where, offset, req.page_size)
        total = keyed[0][-1] if keyed else pages.count(tx, where)
    version = ctx.version
    if not keyed:
        return DescribeInstancesPage.of(total, b"", version)
    # every key row is KEY and one more column (the total, or the tags)
    keys = [row[:-1] for row in keyed]
    cache = fragments.cache(ctx.settings.describe_cache_mb)
    found = cache.get(version, keys)
    missing = [key[0] for key, hit in zip(keys, found, strict=True) if hit is None]
    parts = [(key[2], key[3], hit) for key, hit in zip(keys, found, strict=True)]
    if missing:
        parts = _build(tx, cache, version, missing, parts)
    return DescribeInstancesPage.of(total, _spliced(tx, cache, version, parts), version)


_Part = tuple[str, int, fragments.Fragment | None]  # instance type id, its row_version, fragment


def _build(
    tx: Tx, cache: fragments.Fragments, version: str, missing: list[str], parts: list[_Part]
) -> list[_Part]:
    """``parts`` with the fragments of the ``missing`` instances built from their rows (and
    kept); on PostgreSQL a row may have changed since its key was read: the newer one shows."""
    built: dict[str, _Part] = {}
    new = []
    width = len(pages.KEY)
    for row in pages.rows(tx, missing):
        groups = {row.resource_group_id: row.group_name} if row.group_name else None
        fragment = instance_fragment(row, row.is_ha, row.image_name, groups, version)
        built[row.instance_id] = (row.instance_type_id, row.type_version, fragment)
        new.append((tuple(row[:width]), fragment))
    cache.put(version, new)
    ids = iter(missing)
    done = []
    for part in parts:
        found = part if part[2] is not None else built.get(next(ids))
        if found is not None:  # else released between the two reads (PostgreSQL)
            done.append(found)
    return done


def _spliced(tx: Tx, cache: fragments.Fragments, version: str, parts: list[_Part]) -> bytes:
    """The data set: each instance's object with its instanceType, separated as the encoder
    does. Every instance of a type shows the same object, encoded once and kept under the
    type's id and ``row_version``."""
    splices: dict[tuple[str, int], bytes | None] = {}
    for type_id, type_version, _ in parts:
        if (type_id, type_version) not in splices:
            splices[type_id, type_version] = cache.type_of((type_id, type_version, version))
    wanted = {type_id for (type_id, _), encoded in splices.items() if encoded is None}
    if wanted:  # new or changed types (on PostgreSQL maybe changed again since: the newer shows)
        for t in pages.types(tx, wanted):
            model = instance_type_model(t, with_images=False)
            encoded = _ENCODE(model.wire(version)).encode()
            cache.keep_type((t.instance_type_id, t.row_version, version), encoded)
            for type_id, type_version in splices:
                if type_id == t.instance_type_id:
                    splices[type_id, type_version] = encoded
    if None in splices.values():
        raise LookupError("an instance's type is not in the catalogue")
    pieces: list[Any] = []
    for type_id, type_version, fragment in parts:
        if fragment is not None:
            pieces += (b", ", fragment[0], splices[type_id, type_version], fragment[1])
    return b"".join(pieces[1:])


# The pipeline's encoder (zbmc.pipeline): the fragments must be encoded exactly as the body is.
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
# Stands for the data set in the envelope until ``finish`` puts the fragments there: only the
# envelope (request id, total count) is searched for it, never the instances' data.
_DATA_SET = secrets.token_hex(16)
_DATA_SET_ENCODED = _ENCODE(_DATA_SET)


class DescribeInstancesPage(DescribeInstancesResponse):
    """A DescribeInstancesResponse as the encoded instances of its data set, for one version;
    ``tests/test_describe_instances_wire.py`` checks it is byte for byte what the models give."""

    _wired: dict[str, Any] = PrivateAttr()
    _version: str = PrivateAttr()
    _data: bytes = PrivateAttr()

    @classmethod
    def of(cls, total: int, data: bytes, version: str) -> DescribeInstancesPage:
        """``data``: the data set's objects, encoded and separated as the encoder does."""
        page = cls.model_construct(total_count=total, data_set=[])
        keys = dict(wire_keys(DescribeInstancesResponse, version))
        page._wired = {keys["total_count"]: total, keys["data_set"]: [_DATA_SET] if data else []}
        page._version = version
        page._data = data
        return page

    def wire(self, version: str) -> dict[str, Any]:
        if version != self._version:
            raise ValueError(f"built for {self._version}, asked for {version}")
        return self._wired

    def finish(self, body: str) -> bytes:
        if not self._data:
            return body.encode()
        before, _, after = body.partition(_DATA_SET_ENCODED)
        return b"".join((before.encode(), self._data, after.encode()))


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
