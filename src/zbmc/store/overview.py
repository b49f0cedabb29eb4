"""Read models of the operator's console page (``GET /admin/v1/...``): tenants with their
instances, the catalogue, the worker's backlog and the latest events, as plain JSON data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from zbmc.billing import orders as order_states
from zbmc.clock import Clock, iso
from zbmc.db.tables import instance_types, instances, ledger, offerings, orders, zones
from zbmc.domain.pricing import from_cents
from zbmc.store import accounts

EVENTS = 30


def tenant_rows(conn: Connection) -> dict[str, Any]:
    counts: dict[str, int] = dict(
        conn.execute(
            select(instances.c.tenant_id, func.count()).group_by(instances.c.tenant_id)
        ).all()
    )
    rows = accounts.list_tenants(conn)
    for row in rows:
        row["balance"] = str(row["balance"])
        row["instances"] = int(counts.get(row["tenantId"], 0))
    return {"tenants": rows}


def catalogue(conn: Connection) -> dict[str, Any]:
    """Zones, instance types and what is sold where at which price."""
    sold = []
    for row in conn.execute(
        select(offerings).order_by(offerings.c.zone_id, offerings.c.instance_type_id)
    ):
        # prices are decimal strings in the catalogue's currency, as its file writes them
        sold.append(
            {
                k: v if isinstance(v, int | str | list | None) else str(v)
                for k, v in row._mapping.items()
            }
        )
    return {
        "zones": [
            dict(r._mapping)
            for r in conn.execute(
                select(zones.c.zone_id, zones.c.zone_name, zones.c.city_name).order_by(
                    zones.c.zone_id
                )
            )
        ],
        "instanceTypes": [
            dict(r._mapping)
            for r in conn.execute(
                select(
                    instance_types.c.instance_type_id,
                    instance_types.c.description,
                    instance_types.c.cpu_core_count,
                    instance_types.c.memory_size,
                    instance_types.c.maximum_bandwidth,
                    instance_types.c.is_ha,
                ).order_by(instance_types.c.instance_type_id)
            )
        ],
        "offerings": sold,
    }


def worker(conn: Connection, clock: Clock) -> dict[str, Any]:
    """The backlog the worker has not caught up with (the figures of /metrics)."""
    now = clock.now(conn)
    due_count, oldest_due = conn.execute(
        select(func.count(), func.min(orders.c.effective_at)).where(
            orders.c.state.in_((order_states.PROCESSING, order_states.WAIT_TO_ENABLE)),
            orders.c.effective_at <= now,
        )
    ).one()
    waiting = conn.execute(
        select(func.count()).where(
            orders.c.state == order_states.WAIT_TO_ENABLE, orders.c.effective_at > now
        )
    ).scalar_one()
    return {
        "now": iso(now),
        "dueOrders": int(due_count),
        "lagSeconds": 0 if oldest_due is None else max(0, now - int(oldest_due)),
        "scheduledOrders": int(waiting),
    }


def events(conn: Connection) -> dict[str, Any]:
    """The latest orders and ledger entries of every tenant, newest first."""
    found: list[dict[str, Any]] = []
    for row in conn.execute(
        select(orders).order_by(orders.c.created_at.desc(), orders.c.order_number).limit(EVENTS)
    ):
        order = accounts.order_dict(row)
        found.append(
            {
                "time": order["appliedAt"] or order["cancelledAt"] or order["createdAt"],
                "tenantId": order["tenantId"],
                "event": f"order {order['kind']} {order['fromValue']} -> {order['toValue']}",
                "state": order["state"],
                "amount": str(order["amount"]),
                "reference": order["orderNumber"],
            }
        )
    for row in conn.execute(select(ledger).order_by(ledger.c.entry_id.desc()).limit(EVENTS)):
        found.append(
            {
                "time": iso(row.created_at),
                "tenantId": row.tenant_id,
                "event": f"ledger {row.kind}: {row.description}",
                "state": "",
                "amount": str(from_cents(row.amount)),
                "reference": str(row.entry_id),
            }
        )
    found.sort(key=lambda event: event["time"] or "", reverse=True)
    return {"events": found[:EVENTS]}


def clock_state(conn: Connection, clock: Clock) -> dict[str, Any]:
    mode, offset = clock.state(conn)
    return {"mode": mode, "now": iso(clock.now(conn)), "offsetSeconds": offset}
