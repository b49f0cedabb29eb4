"""The tags' side: CreateTags, DeleteTags, DescribeTags, TagBindResources and
TagUnbindResources. A tag is a key and a value of the caller's tag list (zbmc.store.tags)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from zbmc.context import Context
from zbmc.errors import InvalidParameter, ResourceCanNotBound, TagNotFound, TagResourceNotFound
from zbmc.registry import action
from zbmc.services.bmc.shapes import EmptyResponse
from zbmc.services.zrm.shapes import (
    SERVICE,
    TagKeys,
    TagList,
    ZrmTag,
    created_date,
    page,
    pairs_of,
)
from zbmc.store import tags as store
from zbmc.wire import StrList, WireModel

SORTS = ("ascend", "descend")
# CreateTags' page: "A maximum of 20 tags can be created at a time."
CreateTagList = Annotated[list[ZrmTag], Field(min_length=1, max_length=20)]


class CreateTagsRequest(WireModel):
    tags: CreateTagList


@action(
    "CreateTags", request=CreateTagsRequest, response=EmptyResponse, write=True, service=SERVICE
)
def create_tags(ctx: Context, req: CreateTagsRequest) -> EmptyResponse:
    """Add tags to the caller's tag list (ones it has already are left as they are)."""
    pairs = pairs_of(req.tags)
    if len(set(pairs)) != len(pairs):
        raise InvalidParameter(detail="invalid parameter `tags`: a tag is repeated")
    have = store.recorded(ctx.conn, ctx.tenant_id)
    if len(have.keys() | set(pairs)) > store.MAX_TAGS_PER_TENANT:
        raise InvalidParameter(detail=f"an account has at most {store.MAX_TAGS_PER_TENANT} tags")
    store.record(ctx.conn, ctx.tenant_id, pairs, ctx.now)
    return EmptyResponse()


class DeleteTagsRequest(WireModel):
    tags: Annotated[list[ZrmTag], Field(min_length=1, max_length=100)]


@action(
    "DeleteTags", request=DeleteTagsRequest, response=EmptyResponse, write=True, service=SERVICE
)
def delete_tags(ctx: Context, req: DeleteTagsRequest) -> EmptyResponse:
    """Delete tags from the caller's list and take them off every resource carrying them;
    unknown tags are ignored."""
    gone = set(pairs_of(req.tags))
    conn = ctx.conn
    for inst in store.instances_of(conn, ctx.tenant_id, lock=True).values():
        kept = [pair for pair in inst.pairs if pair not in gone]
        if len(kept) != len(inst.pairs):
            store.set_pairs(conn, inst.instance_id, kept)
    store.forget(conn, ctx.tenant_id, gone)
    return EmptyResponse()


class DescribeTagsRequest(WireModel):
    page_num: int | None = None
    page_size: int | None = None
    key_sort: str | None = None
    created_date_sort: str | None = None
    tag_keys: TagKeys | None = None
    tags: TagList | None = None


class TagInfo(WireModel):
    key: str
    value: str
    bind_resource_count: int
    created_date: str


class DescribeTagsResponse(WireModel):
    total_count: int
    data_set: list[TagInfo] = Field(default_factory=list)


@action(
    "DescribeTags",
    request=DescribeTagsRequest,
    response=DescribeTagsResponse,
    write=False,
    service=SERVICE,
)
def describe_tags(ctx: Context, req: DescribeTagsRequest) -> DescribeTagsResponse:
    """The caller's tags with how many resources carry each; filtered by keys (any of) and tags
    (any of); newest first unless keySort / createdDateSort (ascend, descend) say otherwise."""
    for name, value in (("keySort", req.key_sort), ("createdDateSort", req.created_date_sort)):
        if value is not None and value not in SORTS:
            raise InvalidParameter(detail=f"invalid parameter `{name}`: ascend or descend")
    created, counts = store.every_tag(ctx.conn, ctx.tenant_id)
    keys = set(req.tag_keys) if req.tag_keys is not None else None
    wanted = set(pairs_of(req.tags)) if req.tags is not None else None
    found = [
        pair
        for pair in created
        if (keys is None or pair[0] in keys) and (wanted is None or pair in wanted)
    ]
    # Stable sorts, least significant first: the pair, the creation time, then the key.
    found.sort()
    found.sort(key=lambda pair: created[pair], reverse=req.created_date_sort != "ascend")
    if req.key_sort is not None:
        found.sort(key=lambda pair: pair[0], reverse=req.key_sort == "descend")
    items = [
        TagInfo(
            key=key,
            value=value,
            bind_resource_count=counts.get((key, value), 0),
            created_date=created_date(created[(key, value)]),
        )
        for key, value in page(found, req.page_num, req.page_size)
    ]
    return DescribeTagsResponse(total_count=len(found), data_set=items)


class TagResourcesRequest(WireModel):
    tag: ZrmTag
    resource_uuids: Annotated[StrList, Field(min_length=1)]


@action(
    "TagBindResources",
    request=TagResourcesRequest,
    response=EmptyResponse,
    write=True,
    service=SERVICE,
)
def tag_bind_resources(ctx: Context, req: TagResourcesRequest) -> EmptyResponse:
    """Give resources a tag of the caller's list. A resource carrying the tag's key with another
    value cannot be bound (a key once per resource); all or nothing."""
    key, value = pair = req.tag.pair
    conn = ctx.conn
    if pair not in store.recorded(conn, ctx.tenant_id):
        raise TagNotFound(key=key, value=value)
    found = store.instances_of(conn, ctx.tenant_id, req.resource_uuids, lock=True)
    changed = []
    for resource_id in req.resource_uuids:
        inst = found.get(resource_id)
        if inst is None:
            raise TagResourceNotFound(resource_id=resource_id)
        current = dict(inst.pairs)
        if key in current and current[key] != value:
            raise ResourceCanNotBound(resource_id=resource_id, key=key)
        if key not in current:
            if len(current) >= store.MAX_TAGS_PER_RESOURCE:
                limit = store.MAX_TAGS_PER_RESOURCE
                raise InvalidParameter(detail=f"a resource carries at most {limit} tags")
            changed.append(inst)
    for inst in {i.instance_id: i for i in changed}.values():
        store.set_pairs(conn, inst.instance_id, [*inst.pairs, pair])
    return EmptyResponse()


@action(
    "TagUnbindResources",
    request=TagResourcesRequest,
    response=EmptyResponse,
    write=True,
    service=SERVICE,
)
def tag_unbind_resources(ctx: Context, req: TagResourcesRequest) -> EmptyResponse:
    """Take a tag off resources (ones not carrying it are left as they are); all or nothing."""
    pair = req.tag.pair
    conn = ctx.conn
    if pair not in store.recorded(conn, ctx.tenant_id) and not any(
        pair in inst.pairs for inst in store.instances_of(conn, ctx.tenant_id).values()
    ):
        raise TagNotFound(key=pair[0], value=pair[1])
    found = store.instances_of(conn, ctx.tenant_id, req.resource_uuids, lock=True)
    for resource_id in req.resource_uuids:
        if resource_id not in found:
            raise TagResourceNotFound(resource_id=resource_id)
    for inst in found.values():
        if pair in inst.pairs:
            store.set_pairs(conn, inst.instance_id, [p for p in inst.pairs if p != pair])
    return EmptyResponse()
