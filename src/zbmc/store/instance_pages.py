"""The queries of DescribeInstances, precompiled (``zbmc.db.direct``): one statement per shape
of filter (which filters a request has, and whether its name patterns are prefixes), built and
compiled the first time that shape is asked for.

A page is read in two steps: its keys (each instance's id and ``row_version`` and what its
answer takes from other tables: its type's id and ``row_version``, the image's name, the resource
group's name), then the full rows of the instances whose encoded answer is not cached
(``zbmc.services.bmc.fragments``)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import Integer, bindparam, func, literal_column, select

from zbmc.db.direct import InlineInt, InList, Statement, Tx
from zbmc.db.tables import images, instance_types, instances, resource_groups, tenants, zones
from zbmc.errors import ImageNotFound, InstanceTypeNotFound, ZoneNotFound

c = instances.c

# Equality filters: request attribute -> column.
_EQUAL = {
    "zone_id": c.zone_id,
    "instance_type_id": c.instance_type_id,
    "image_id": c.image_id,
    "subnet_id": c.subnet_id,
    "internet_charge_type": c.internet_charge_type,
    "instance_status": c.status,
}
# List filters: request attribute -> column.
_LISTS = {
    "instance_ids": c.instance_id,
    "public_ip_addresses": c.primary_ip,
    "private_ip_addresses": c.private_ip,
}
# Name patterns (spec Q-I5): a trailing * is a case-sensitive prefix match, else exact.
_PATTERNS = {"instance_name": c.instance_name, "hostname": c.hostname}
# Filters naming something that must exist (else its NOT_FOUND error).
_MUST_EXIST = (
    ("zone_id", zones.c.zone_id, ZoneNotFound),
    ("instance_type_id", instance_types.c.instance_type_id, InstanceTypeNotFound),
    ("image_id", images.c.image_id, ImageNotFound),
)
_EXISTS = {
    name: Statement(select(column).where(column == bindparam("value")).limit(1))
    for name, column, _ in _MUST_EXIST
}


class Filter(NamedTuple):
    """A request's filters: ``shape`` picks the statements, ``params`` fills them."""

    shape: tuple[str, ...]
    params: dict[str, Any]


def filter_of(tx: Tx, tenant_id: str, request: Any) -> Filter:
    """The filter of a DescribeInstancesRequest (attribute access), after checking that the zone,
    instance type and image it names exist."""
    for name, _, error in _MUST_EXIST:
        value = getattr(request, name)
        if value is not None and tx.first(_EXISTS[name], {"value": value}) is None:
            raise error(**{name: value})
    shape: list[str] = []
    params: dict[str, Any] = {"tenant_id": tenant_id}
    for name in (*_EQUAL, *_LISTS, "resource_group_id"):
        value = getattr(request, name)
        if value is not None:
            shape.append(name)
            params[name] = value
    for name in _PATTERNS:
        pattern = getattr(request, name)
        if pattern is not None:
            if pattern.endswith("*"):
                shape.append(f"{name}*")
                params[name] = pattern[:-1]
                params[f"{name}_length"] = len(pattern) - 1
            else:
                shape.append(name)
                params[name] = pattern
    return Filter(tuple(shape), params)


def _conditions(shape: tuple[str, ...]) -> list[Any]:
    where: list[Any] = [c.tenant_id == bindparam("tenant_id")]
    for name in shape:
        if name in _EQUAL:
            where.append(_EQUAL[name] == bindparam(name))
        elif name in _LISTS:
            where.append(InList(_LISTS[name], name))
        elif name == "resource_group_id":
            group = func.coalesce(c.resource_group_id, literal_column("'default'"))
            where.append(group == bindparam(name))
        elif name.endswith("*"):
            field = name[:-1]
            length = bindparam(f"{field}_length", type_=Integer)
            start: Any = literal_column("1")  # inline: a bound literal breaks precompiling
            where.append(func.substr(_PATTERNS[field], start, length) == bindparam(field))
        else:
            where.append(_PATTERNS[name] == bindparam(name))
    return where


_TENANT_COUNT = select(tenants.c.instance_count).where(
    tenants.c.tenant_id == bindparam("tenant_id")
)


@functools.cache
def _count(shape: tuple[str, ...]) -> Statement:
    if not shape:  # only the tenant condition: the maintained count, not a scan
        return Statement(_TENANT_COUNT)
    query = select(func.count().label("count")).select_from(instances)
    return Statement(query.where(*_conditions(shape)))


def count(tx: Tx, where: Filter) -> int:
    return int(tx.tuples(_count(where.shape), where.params)[0][0])


# What an instance's answer takes from other tables (in every key and every full row).
_JOINED = (
    instances.join(instance_types, instance_types.c.instance_type_id == c.instance_type_id)
    .outerjoin(images, images.c.image_id == c.image_id)
    .outerjoin(resource_groups, resource_groups.c.resource_group_id == c.resource_group_id)
)
# An instance's key: what its answer is made of (``zbmc.services.bmc.fragments``).
KEY = (
    c.instance_id,
    c.row_version,
    c.instance_type_id,
    instance_types.c.row_version.label("type_version"),
    images.c.image_name,
    resource_groups.c.name.label("group_name"),
)


@functools.cache
def _keys(shape: tuple[str, ...], tagged: bool) -> Statement:
    conditions = _conditions(shape)
    if tagged:
        query = select(*KEY, c.tags).select_from(_JOINED).where(*conditions)
        return Statement(query.order_by(c.instance_id))
    # The offset skips entries of the tenant's index only, and the joins run for the page's
    # rows (on SQLite, page 10 of 100 cost 474 µs, then 215 µs). The total rides along.
    page = (
        select(c.instance_id.label("page_id"))
        .where(*conditions)
        .order_by(c.instance_id)
        .limit(InlineInt("limit"))  # known to PostgreSQL's plan (``InlineInt``)
        .offset(InlineInt("offset"))
        .subquery("page")
    )
    total = _count(shape).clause.scalar_subquery().correlate(None)  # type: ignore[attr-defined]
    query = select(*KEY, total.label("total")).select_from(
        page.join(_JOINED, c.instance_id == page.c.page_id)
    )
    return Statement(query.order_by(c.instance_id))


def keys(tx: Tx, where: Filter, offset: int, limit: int) -> list[tuple[Any, ...]]:
    """The page's keys (``KEY``), each followed by the filter's total count, in page order (no
    rows past the end: ``count``)."""
    statement = _keys(where.shape, False).inline(offset=offset, limit=limit)
    return tx.tuples(statement, {**where.params, "offset": offset, "limit": limit})


def tagged_keys(tx: Tx, where: Filter) -> list[Any]:
    """Every key the filter selects (``KEY``), each followed by the instance's ``tags`` (tag
    filters are applied by the caller), in page order."""
    return tx.rows(_keys(where.shape, True), where.params)


# Every column an answer shows (``services.bmc.instances._fields``) besides its key's: the
# row_version trigger fires for an UPDATE of any of them (migration 0011).
SHOWN = (
    "zone_id",
    "instance_name",
    "hostname",
    "image_id",
    "ipxe_url",
    "instance_charge_type",
    "bandwidth",
    "internet_charge_type",
    "period",
    "primary_ip",
    "ipv6",
    "private_ip",
    "subnet_id",
    "create_time",
    "expired_time",
    "resource_group_id",
    "status",
    "traffic_package_gb",
    "raid_config",
    "partitions",
    "nic",
    "auto_renew",
    "key_id",
    "tags",
    "enable_gateway_mode",
)
_ROWS = Statement(
    select(*KEY, instance_types.c.is_ha, *(c[name] for name in SHOWN))
    .select_from(_JOINED)
    .where(InList(c.instance_id, "instance_ids"))
)
_TYPES = Statement(
    select(instance_types).where(InList(instance_types.c.instance_type_id, "type_ids"))
)


def rows(tx: Tx, instance_ids: Iterable[str]) -> list[Any]:
    """The full rows of these instances: ``KEY``, ``is_ha``, then every column shown."""
    return tx.rows(_ROWS, {"instance_ids": list(instance_ids)})


def types(tx: Tx, type_ids: Iterable[str]) -> list[Any]:
    return tx.rows(_TYPES, {"type_ids": list(type_ids)})
