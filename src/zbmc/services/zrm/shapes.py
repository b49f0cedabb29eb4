"""What the zrm actions share: the Tag shape, its limits, paging and the time format."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from zbmc.errors import InvalidParameter
from zbmc.store.tags import Pair
from zbmc.wire import WireModel

SERVICE = "zrm"
MAX_PAGE_SIZE = 1000
# Zenlayer's zrm Tag: key 1-64 characters, value optional, up to 64 (a missing value is "").
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
TagValue = Annotated[str, StringConstraints(max_length=64)]
TagKeys = Annotated[list[TagKey], Field(max_length=100)]


class ZrmTag(WireModel):
    key: TagKey
    value: TagValue | None = None

    @property
    def pair(self) -> Pair:
        return (self.key, self.value or "")


TagList = Annotated[list[ZrmTag], Field(max_length=100)]


def pairs_of(tag_list: list[ZrmTag] | None) -> list[Pair]:
    return [tag.pair for tag in tag_list or []]


def created_date(ts: int) -> str:
    """The zrm pages' time format: ``2025-10-14 15:57:24`` (UTC)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def page(items: list[Any], page_num: int | None, page_size: int | None) -> list[Any]:
    number = 1 if page_num is None else page_num
    size = 20 if page_size is None else page_size
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidParameter(detail=f"invalid parameter `pageSize`: must be 1..{MAX_PAGE_SIZE}")
    if number < 1:
        raise InvalidParameter(detail="invalid parameter `pageNum`: must be at least 1")
    return items[(number - 1) * size : number * size]


def distinct_keys(pairs: list[Pair], where: str) -> None:
    """One value per key: a resource carries a key once."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise InvalidParameter(detail=f"invalid parameter `{where}`: key `{key}` is repeated")
        seen.add(key)
