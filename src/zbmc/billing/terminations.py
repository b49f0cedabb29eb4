"""The end of an instance: TerminateInstance (the recycle bin, or the end of a subscription),
the refund of a creation that failed, and the release that gives back what it held.

Release frees the instance's addresses, returns its server to the stock of its offering,
withdraws downgrades still waiting for a period that will not come, and deletes the instance
row; its orders and ledger entries stay (the books never lose a line).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from zbmc.billing import ledger, metering
from zbmc.billing import orders as order_states
from zbmc.db.tables import addresses, faults, instances, offerings, orders, tenants
from zbmc.db.tables import ledger as ledger_rows
from zbmc.domain.lifecycle import RECYCLE
from zbmc.store import instances as store


def withdraw_downgrades(conn: Connection, instance_id: str, now: int) -> None:
    """An instance's downgrades waiting for the next cycle are cancelled at ``now`` (it is
    released), as CancelInstanceBandwidthDowngrade cancels one. An instance names its pending
    order of each kind (``bw_order``, ``tp_order``; a waiting downgrade is one), so they are
    found by the primary key, before the instance row goes."""
    pending = conn.execute(
        select(instances.c.bw_order, instances.c.tp_order).where(
            instances.c.instance_id == instance_id
        )
    ).first()
    numbers = [number for number in pending or () if number is not None]
    if numbers:
        conn.execute(
            update(orders)
            .where(
                orders.c.order_number.in_(numbers),
                orders.c.state == order_states.WAIT_TO_ENABLE,
            )
            .values(state=order_states.CANCELLED, cancelled_at=now)
        )


def recycle(conn: Connection, row: Any, now: int) -> int:
    """POSTPAID TerminateInstance: billing stops now (the started hour is billed in full), the
    instance moves to RECYCLE and any host operation in progress is abandoned. ``row`` is a
    full load (zbmc.store.instances.load). Returns the ledger entries written."""
    entries = metering.close(conn, row, now)
    store.set_values(
        conn,
        row.instance_id,
        status=RECYCLE,
        recycled_at=now,
        metered_until=None,
        **store.NO_HOST_OP,
    )
    return entries


def unsubscribe(conn: Connection, instance_id: str) -> None:
    """PREPAID TerminateInstance (spec README C2/Q8): the subscription is not renewed; the
    instance keeps running until its period ends, then the worker moves it to RECYCLE."""
    store.set_values(conn, instance_id, auto_renew=False)


def refund_creation(conn: Connection, row: Any, now: int) -> int:
    """A creation that failed is refunded in full: everything charged for the instance (the
    sum of its ledger amounts) goes back. Returns the cents refunded."""
    paid = -int(
        conn.execute(
            select(func.coalesce(func.sum(ledger_rows.c.amount), 0)).where(
                ledger_rows.c.tenant_id == row.tenant_id,
                ledger_rows.c.instance_id == row.instance_id,
            )
        ).scalar_one()
    )
    if paid > 0:
        ledger.credit(
            conn,
            row.tenant_id,
            ledger.Entry(
                kind=ledger.REFUND,
                amount=paid,
                description=f"refund of instance {row.instance_id}: its creation failed",
                instance_id=row.instance_id,
            ),
            now,
        )
    return max(paid, 0)


def release(conn: Connection, row: Any, now: int) -> None:
    """Delete the instance for good, giving back what it held (module docstring). ``row`` has
    instance_id, tenant_id, zone_id and instance_type_id."""
    instance_id = row.instance_id
    conn.execute(
        update(addresses).where(addresses.c.instance_id == instance_id).values(instance_id=None)
    )
    conn.execute(
        update(offerings)
        .where(
            offerings.c.zone_id == row.zone_id,
            offerings.c.instance_type_id == row.instance_type_id,
        )
        .values(qty=offerings.c.qty + 1)
    )
    withdraw_downgrades(conn, instance_id, now)
    conn.execute(delete(faults).where(faults.c.instance_id == instance_id))
    conn.execute(delete(instances).where(instances.c.instance_id == instance_id))
    conn.execute(
        update(tenants)
        .where(tenants.c.tenant_id == row.tenant_id)
        .values(instance_count=tenants.c.instance_count - 1)
    )
