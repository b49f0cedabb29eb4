"""The resources' side of tagging: ModifyResourceTags (what Terraform calls to change an
instance's tags), DescribeResourceTags, DescribeResourceByTags, DescribeResourceTypes and
DescribeResources. A resource is one of the caller's BMC instances; its ``resourceUuid`` /
``resourceId`` is the instance id."""

from __future__ import annotations

from pydantic import Field
from sqlalchemy import select

from zbmc.clock import iso
from zbmc.context import Context
from zbmc.db.tables import resource_groups
from zbmc.errors import InvalidParameter, TagResourceNotFound
from zbmc.registry import action
from zbmc.services.bmc.instances import DEFAULT_RESOURCE_GROUP
from zbmc.services.bmc.shapes import EmptyResponse
from zbmc.services.zrm.shapes import (
    SERVICE,
    TagKeys,
    TagList,
    created_date,
    distinct_keys,
    page,
    pairs_of,
)
from zbmc.store import tags as store
from zbmc.wire import RequiredStr, StrList, WireModel

# How zbmc's one resource type is named (Zenlayer's own list is not published; docs/behaviour.md).
RESOURCE_TYPE, RESOURCE_TYPE_NAME, RESOURCE_SERVICE = (
    "BMC_INSTANCE",
    "Bare Metal Instance",
    "Bare Metal",
)


class ModifyResourceTagsRequest(WireModel):
    resource_uuid: RequiredStr
    replace_tags: TagList | None = None
    delete_tag_keys: TagKeys | None = None


@action(
    "ModifyResourceTags",
    request=ModifyResourceTagsRequest,
    response=EmptyResponse,
    write=True,
    service=SERVICE,
)
def modify_resource_tags(ctx: Context, req: ModifyResourceTagsRequest) -> EmptyResponse:
    """Give a resource tags (a key it carries takes the new value) and take keys off it."""
    replace = pairs_of(req.replace_tags)
    distinct_keys(replace, "replaceTags")
    removed = set(req.delete_tag_keys or ())
    both = removed & {key for key, _ in replace}
    if both:
        detail = f"key `{sorted(both)[0]}` is both in replaceTags and deleteTagKeys"
        raise InvalidParameter(detail=f"invalid parameter: {detail}")
    conn = ctx.conn
    found = store.instances_of(conn, ctx.tenant_id, [req.resource_uuid], lock=True)
    if req.resource_uuid not in found:
        raise TagResourceNotFound(resource_id=req.resource_uuid)
    current = dict(found[req.resource_uuid].pairs)
    for key in removed:
        current.pop(key, None)
    current.update(replace)
    if len(current) > store.MAX_TAGS_PER_RESOURCE:
        limit = store.MAX_TAGS_PER_RESOURCE
        raise InvalidParameter(detail=f"a resource carries at most {limit} tags")
    store.record(conn, ctx.tenant_id, replace, ctx.now)
    store.set_pairs(conn, req.resource_uuid, list(current.items()))
    return EmptyResponse()


class DescribeResourceTagsRequest(WireModel):
    resource_uuid: RequiredStr


class ResourceTag(WireModel):
    key: str
    value: str
    created_date: str


class TagListResponse(WireModel):
    total_count: int
    data_set: list[ResourceTag] = Field(default_factory=list)


@action(
    "DescribeResourceTags",
    request=DescribeResourceTagsRequest,
    response=TagListResponse,
    write=False,
    service=SERVICE,
)
def describe_resource_tags(ctx: Context, req: DescribeResourceTagsRequest) -> TagListResponse:
    """The tags one resource carries (none for an id the caller has no resource under)."""
    found = store.instances_of(ctx.conn, ctx.tenant_id, [req.resource_uuid])
    if req.resource_uuid not in found:
        return TagListResponse(total_count=0)
    inst = found[req.resource_uuid]
    created = store.recorded(ctx.conn, ctx.tenant_id)
    items = [
        ResourceTag(
            key=k, value=v, created_date=created_date(created.get((k, v), inst.create_time))
        )
        for k, v in inst.pairs
    ]
    return TagListResponse(total_count=len(items), data_set=items)


class DescribeResourceByTagsRequest(WireModel):
    tags: TagList | None = None
    tag_keys: TagKeys | None = None


class ResourceInfo(WireModel):
    resource_type: str
    resource_uuid: str


class ResourceInfoResponse(WireModel):
    total_count: int
    data_set: list[ResourceInfo] = Field(default_factory=list)


@action(
    "DescribeResourceByTags",
    request=DescribeResourceByTagsRequest,
    response=ResourceInfoResponse,
    write=False,
    service=SERVICE,
)
def describe_resource_by_tags(
    ctx: Context, req: DescribeResourceByTagsRequest
) -> ResourceInfoResponse:
    """The resources carrying every given tag and every given key (any tag when none given)."""
    wanted = pairs_of(req.tags)
    items = [
        ResourceInfo(resource_type=RESOURCE_TYPE, resource_uuid=inst.instance_id)
        for inst in store.instances_of(ctx.conn, ctx.tenant_id).values()
        if inst.pairs and store.matches(inst.pairs, wanted, req.tag_keys)
    ]
    return ResourceInfoResponse(total_count=len(items), data_set=items)


class DescribeResourceTypesRequest(WireModel):
    services: StrList | None = None
    resource_types: StrList | None = None


class ResourceTypeInfo(WireModel):
    resource_type: str
    name: str
    service: str


class ResourceTypesResponse(WireModel):
    total_count: int
    data_set: list[ResourceTypeInfo] = Field(default_factory=list)


@action(
    "DescribeResourceTypes",
    request=DescribeResourceTypesRequest,
    response=ResourceTypesResponse,
    write=False,
    service=SERVICE,
)
def describe_resource_types(
    ctx: Context, req: DescribeResourceTypesRequest
) -> ResourceTypesResponse:
    """The resource types that can carry tags here: BMC instances (filters: exact, any of)."""
    del ctx
    kept = (req.services is None or RESOURCE_SERVICE in req.services) and (
        req.resource_types is None or RESOURCE_TYPE in req.resource_types
    )
    items = (
        [
            ResourceTypeInfo(
                resource_type=RESOURCE_TYPE, name=RESOURCE_TYPE_NAME, service=RESOURCE_SERVICE
            )
        ]
        if kept
        else []
    )
    return ResourceTypesResponse(total_count=len(items), data_set=items)


class DescribeResourcesRequest(WireModel):
    page_num: int | None = None
    page_size: int | None = None
    resource_ids: StrList | None = None
    resource_name: str | None = None
    resource_group_id: str | None = None
    tags: TagList | None = None
    tag_keys: TagKeys | None = None


class ResourceSearchInfo(WireModel):
    resource_id: str
    name: str
    resource_type: str
    create_time: str | None
    resource_group_id: str
    resource_group_name: str
    location: str
    service: str


class ResourcesResponse(WireModel):
    total_count: int
    data_set: list[ResourceSearchInfo] = Field(default_factory=list)


@action(
    "DescribeResources",
    request=DescribeResourcesRequest,
    response=ResourcesResponse,
    write=False,
    service=SERVICE,
)
def describe_resources(ctx: Context, req: DescribeResourcesRequest) -> ResourcesResponse:
    """Search the caller's resources by id (any of), name (case-insensitive part of it), resource
    group, tags and tag keys (all of them); paged like DescribeInstances."""
    conn = ctx.conn
    wanted = pairs_of(req.tags)
    name = (req.resource_name or "").casefold()
    matching = [
        inst
        for inst in store.instances_of(conn, ctx.tenant_id, req.resource_ids).values()
        if name in inst.name.casefold()
        and (
            req.resource_group_id is None
            or (inst.resource_group_id or DEFAULT_RESOURCE_GROUP[0]) == req.resource_group_id
        )
        and store.matches(inst.pairs, wanted, req.tag_keys)
    ]
    shown = page(matching, req.page_num, req.page_size)
    query = select(resource_groups.c.resource_group_id, resource_groups.c.name).where(
        resource_groups.c.tenant_id == ctx.tenant_id
    )
    groups: dict[str, str] = {row.resource_group_id: row.name for row in conn.execute(query)}
    groups[DEFAULT_RESOURCE_GROUP[0]] = DEFAULT_RESOURCE_GROUP[1]
    items = []
    for inst in shown:
        group = inst.resource_group_id or DEFAULT_RESOURCE_GROUP[0]
        items.append(
            ResourceSearchInfo(
                resource_id=inst.instance_id,
                name=inst.name,
                resource_type=RESOURCE_TYPE,
                create_time=iso(inst.create_time),
                resource_group_id=group,
                resource_group_name=groups.get(group, group),
                location=inst.zone_id,
                service=RESOURCE_SERVICE,
            )
        )
    return ResourcesResponse(total_count=len(matching), data_set=items)
