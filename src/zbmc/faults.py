"""Fault injection for tests (spec Q-I10: never by default): an operator makes the next CREATE or
INSTALL of a tenant's instances, or of one instance, end in CREATE_FAILED / INSTALL_FAILED. The
worker consumes a fault when it fires (zbmc.hosts); one fault fails one operation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from zbmc.clock import iso
from zbmc.db.tables import faults, instances
from zbmc.domain.lifecycle import OP_CREATE, OP_INSTALL
from zbmc.tenancy import NotFound, require_tenant

OPERATIONS = (OP_CREATE, OP_INSTALL)


def add(
    conn: Connection, now: int, operation: str, tenant_id: str | None, instance_id: str | None
) -> dict[str, Any]:
    if operation not in OPERATIONS:
        raise ValueError(f"operation must be one of {', '.join(OPERATIONS)}, not {operation!r}")
    if (tenant_id is None) == (instance_id is None):
        raise ValueError("give exactly one of a tenant and an instance")
    if tenant_id is not None:
        require_tenant(conn, tenant_id)
    else:
        owner = conn.execute(
            select(instances.c.tenant_id).where(instances.c.instance_id == instance_id)
        ).first()
        if owner is None:
            raise NotFound(f"no instance {instance_id}")
    fault_id = conn.execute(
        insert(faults)
        .values(tenant_id=tenant_id, instance_id=instance_id, operation=operation, created_at=now)
        .returning(faults.c.fault_id)
    ).scalar_one()
    return _shape(int(fault_id), tenant_id, instance_id, operation, now)


def list_all(conn: Connection) -> list[dict[str, Any]]:
    return [
        _shape(row.fault_id, row.tenant_id, row.instance_id, row.operation, row.created_at)
        for row in conn.execute(select(faults).order_by(faults.c.fault_id))
    ]


def clear(conn: Connection, fault_id: int | None = None) -> int:
    """Remove one fault, or all of them; returns how many were removed."""
    statement = delete(faults)
    if fault_id is not None:
        statement = statement.where(faults.c.fault_id == fault_id)
    return int(conn.execute(statement).rowcount)


def _shape(
    fault_id: int, tenant_id: str | None, instance_id: str | None, operation: str, created: int
) -> dict[str, Any]:
    return {
        "faultId": int(fault_id),
        "tenantId": tenant_id,
        "instanceId": instance_id,
        "operation": operation,
        "createdAt": iso(created),
    }
