"""Tags of the resource manager (zrm): the tenant's tag list and the tags its instances carry.

A tag is a key and a value ("" when it has none). The tenant's tags are rows of ``tags``
(CreateTags, and every tag a resource is given); which instance carries which is the JSON list
``instances.tags`` (``[{"key", "value"}, ...]``, one value per key, in the order they were
added), the list DescribeInstances reports and filters on. Tags given to instances by other
ways (the admin CLI, CreateInstances) are in the tenant's list too, with the instance's
creation time, until a zrm action records them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from zbmc.db.tables import instances, tags

Pair = tuple[str, str]  # (key, value)

# Limits zbmc sets where Zenlayer's pages name none (docs/behaviour.md).
MAX_TAGS_PER_RESOURCE = 50
MAX_TAGS_PER_TENANT = 5000


class Tagged(NamedTuple):
    """One instance of the tenant, as the resource manager sees it."""

    instance_id: str
    name: str
    zone_id: str
    resource_group_id: str | None
    create_time: int
    pairs: list[Pair]


_COLUMNS = (
    instances.c.instance_id,
    instances.c.instance_name,
    instances.c.zone_id,
    instances.c.resource_group_id,
    instances.c.create_time,
    instances.c.tags,
)


def _tagged(row: Any) -> Tagged:
    pairs = [(str(t["key"]), str(t["value"])) for t in row.tags or []]
    return Tagged(
        row.instance_id,
        row.instance_name,
        row.zone_id,
        row.resource_group_id,
        int(row.create_time),
        pairs,
    )


def instances_of(
    conn: Connection, tenant_id: str, ids: Iterable[str] | None = None, *, lock: bool = False
) -> dict[str, Tagged]:
    """The tenant's instances (only ``ids`` when given), by id; other tenants' are absent."""
    query = select(*_COLUMNS).where(instances.c.tenant_id == tenant_id)
    if ids is not None:
        query = query.where(instances.c.instance_id.in_(list(ids)))
    if lock:
        query = query.with_for_update()
    return {t.instance_id: t for t in map(_tagged, conn.execute(query.order_by(_COLUMNS[0])))}


def set_pairs(conn: Connection, instance_id: str, pairs: list[Pair]) -> None:
    conn.execute(
        update(instances)
        .where(instances.c.instance_id == instance_id)
        .values(tags=[{"key": k, "value": v} for k, v in pairs])
    )


def recorded(conn: Connection, tenant_id: str) -> dict[Pair, int]:
    """The tenant's tag rows: (key, value) -> creation time."""
    query = select(tags.c.tag_key, tags.c.tag_value, tags.c.created_at).where(
        tags.c.tenant_id == tenant_id
    )
    return {(k, v): int(at) for k, v, at in conn.execute(query)}


def every_tag(conn: Connection, tenant_id: str) -> tuple[dict[Pair, int], dict[Pair, int]]:
    """Every tag of the tenant with its creation time, and how many instances carry each."""
    created = recorded(conn, tenant_id)
    counts: dict[Pair, int] = {}
    for inst in instances_of(conn, tenant_id).values():
        for pair in inst.pairs:
            counts[pair] = counts.get(pair, 0) + 1
            created[pair] = min(created.get(pair, inst.create_time), inst.create_time)
    return created, counts


def record(conn: Connection, tenant_id: str, pairs: Iterable[Pair], now: int) -> None:
    """Add tags to the tenant's list; ones it has keep their creation time."""
    rows = [
        {"tenant_id": tenant_id, "tag_key": k, "tag_value": v, "created_at": now}
        for k, v in dict.fromkeys(pairs)
    ]
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(tags).on_conflict_do_nothing(), rows)


def forget(conn: Connection, tenant_id: str, pairs: Iterable[Pair]) -> None:
    for key, value in pairs:
        conn.execute(
            delete(tags).where(
                tags.c.tenant_id == tenant_id, tags.c.tag_key == key, tags.c.tag_value == value
            )
        )


def count(conn: Connection, tenant_id: str) -> int:
    return len(recorded(conn, tenant_id))


def matches(pairs: list[Pair], wanted: Iterable[Pair] | None, keys: Iterable[str] | None) -> bool:
    """The filter of the tag-aware searches: every wanted pair and every wanted key is there."""
    have = set(pairs)
    have_keys = {k for k, _ in pairs}
    return set(wanted or ()) <= have and set(keys or ()) <= have_keys
