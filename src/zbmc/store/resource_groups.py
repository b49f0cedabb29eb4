"""Resource groups of a tenant. Every tenant has the default group (id ``default``, not stored;
instances in it keep ``resource_group_id`` NULL); operators add more with
``zbmc admin resource-group add``."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from zbmc import errors
from zbmc.db.tables import resource_groups

DEFAULT_ID, DEFAULT_NAME = "default", "Default Resource Group"


def add(conn: Connection, tenant_id: str, name: str, now: int) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise ValueError("a resource group name has 1 to 200 characters")
    group_id = "rg-" + secrets.token_hex(6)
    conn.execute(
        insert(resource_groups).values(
            resource_group_id=group_id, tenant_id=tenant_id, name=name, created_at=now
        )
    )
    return group_id


def list_groups(conn: Connection, tenant_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(resource_groups)
        .where(resource_groups.c.tenant_id == tenant_id)
        .order_by(resource_groups.c.created_at, resource_groups.c.resource_group_id)
    )
    return [{"resourceGroupId": DEFAULT_ID, "name": DEFAULT_NAME}] + [
        {"resourceGroupId": r.resource_group_id, "name": r.name} for r in rows
    ]


def resolve(conn: Connection, tenant_id: str, group_id: str | None) -> str | None:
    """The value to store for ``group_id`` (None for the default group), or 404."""
    if group_id is None or group_id == DEFAULT_ID:
        return None
    found = conn.execute(
        select(resource_groups.c.resource_group_id).where(
            resource_groups.c.resource_group_id == group_id,
            resource_groups.c.tenant_id == tenant_id,
        )
    ).first()
    if found is None:
        raise errors.ResourceGroupNotFound(resource_group_id=group_id)
    return group_id


def names(conn: Connection, group_ids: Iterable[str | None]) -> dict[str, str]:
    """Names of the given stored group ids (the default group needs no lookup)."""
    wanted = {g for g in group_ids if g is not None and g != DEFAULT_ID}
    if not wanted:
        return {}
    return {
        r.resource_group_id: r.name
        for r in conn.execute(
            select(resource_groups.c.resource_group_id, resource_groups.c.name).where(
                resource_groups.c.resource_group_id.in_(wanted)
            )
        )
    }
