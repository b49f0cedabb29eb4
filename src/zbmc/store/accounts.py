"""Read models for operators: orders, ledger entries and balances of a tenant, as plain dicts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.engine import Connection

from zbmc.clock import iso
from zbmc.db.tables import ledger, orders, tenants
from zbmc.domain.pricing import from_cents
from zbmc.tenancy import NotFound, require_tenant


def order_dict(row: Row[Any]) -> dict[str, Any]:
    return {
        "orderNumber": row.order_number,
        "tenantId": row.tenant_id,
        "instanceId": row.instance_id,
        "kind": row.kind,
        "fromValue": row.from_value,
        "toValue": row.to_value,
        "amount": from_cents(row.amount),
        "state": row.state,
        "createdAt": iso(row.created_at),
        "effectiveAt": iso(row.effective_at),
        "appliedAt": iso(row.applied_at),
        "cancelledAt": iso(row.cancelled_at),
    }


def list_orders(
    conn: Connection, tenant_id: str, instance_id: str | None = None
) -> list[dict[str, Any]]:
    require_tenant(conn, tenant_id)
    query = select(orders).where(orders.c.tenant_id == tenant_id)
    if instance_id is not None:
        # Through the tenant's orders: applied orders have no index by instance
        # (zbmc.db.tables), and this listing is for operators, not the request path.
        query = query.where(orders.c.instance_id == instance_id)
    return [
        order_dict(r)
        for r in conn.execute(query.order_by(orders.c.created_at, orders.c.order_number))
    ]


def get_order(conn: Connection, order_number: str) -> dict[str, Any]:
    row = conn.execute(select(orders).where(orders.c.order_number == order_number)).first()
    if row is None:
        raise NotFound(f"order {order_number!r} does not exist")
    return order_dict(row)


def list_ledger(conn: Connection, tenant_id: str) -> list[dict[str, Any]]:
    require_tenant(conn, tenant_id)
    rows = conn.execute(
        select(ledger).where(ledger.c.tenant_id == tenant_id).order_by(ledger.c.entry_id)
    )
    return [
        {
            "entryId": r.entry_id,
            "time": iso(r.created_at),
            "kind": r.kind,
            "amount": from_cents(r.amount),
            "balanceAfter": from_cents(r.balance_after),
            "orderNumber": r.order_number,
            "instanceId": r.instance_id,
            "description": r.description,
            "periodStart": iso(r.period_start),
            "periodEnd": iso(r.period_end),
        }
        for r in rows
    ]


def balance_report(conn: Connection, tenant_id: str) -> dict[str, Any]:
    row = conn.execute(select(tenants).where(tenants.c.tenant_id == tenant_id)).first()
    if row is None:
        raise NotFound(f"tenant {tenant_id!r} does not exist")
    ledger_sum = conn.execute(
        select(func.coalesce(func.sum(ledger.c.amount), 0)).where(ledger.c.tenant_id == tenant_id)
    ).scalar_one()
    return {
        "tenantId": tenant_id,
        "balance": from_cents(row.balance),
        "currency": row.currency,
        "ledgerSum": from_cents(int(ledger_sum)),
    }


def list_tenants(conn: Connection) -> list[dict[str, Any]]:
    return [
        {
            "tenantId": r.tenant_id,
            "name": r.name,
            "balance": from_cents(r.balance),
            "currency": r.currency,
            "createdAt": iso(r.created_at),
        }
        for r in conn.execute(select(tenants).order_by(tenants.c.created_at, tenants.c.tenant_id))
    ]
