"""Network attachments and what the network agents read and report (docs/drivers.md).

An attachment says which host's `zbmc agent` enforces an instance's cap and on which interface.
Under ``ZBMC_DRIVER=agent`` a due bandwidth order of an attached instance is left to that agent:
it reads the cap to enforce here (the order's new value once it is due), puts it in the kernel,
and reports it back; only then does the order become ENABLED and the instance show the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, insert, select, update
from sqlalchemy.engine import Connection

from zbmc.billing import changes
from zbmc.billing import orders as order_states
from zbmc.db.tables import instances, network_attachments, offerings, orders
from zbmc.domain.lifecycle import RECYCLE
from zbmc.tenancy import NotFound

# What Linux accepts as an interface name (IFNAMSIZ 16 with the NUL; no '/', ':' or spaces).
_INTERFACE = re.compile(r"^[A-Za-z0-9_.@-]{1,15}$")
_HOST = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_DUE_STATES = (order_states.PROCESSING, order_states.WAIT_TO_ENABLE)


class AttachmentError(ValueError):
    """An attachment the operator asked for cannot be made; the message says why."""


@dataclass(frozen=True)
class Desired:
    """What one instance's interface should look like on its host."""

    instance_id: str
    interface: str
    out_mbps: int
    in_mbps: int | None  # None: inbound is not capped (the offering does not say cap_inbound)
    order_number: str | None  # the due bandwidth order this cap carries out, if any

    def as_dict(self) -> dict[str, Any]:
        return {
            "instanceId": self.instance_id,
            "interface": self.interface,
            "outMbps": self.out_mbps,
            "inMbps": self.in_mbps,
            "orderNumber": self.order_number,
        }


def left_to_agents() -> ColumnElement[bool]:
    """Orders the worker leaves to the agents under ``ZBMC_DRIVER=agent``: bandwidth changes
    of attached instances (a traffic package is billing, not a kernel setting)."""
    attached = exists().where(network_attachments.c.instance_id == orders.c.instance_id)
    return and_(orders.c.kind == order_states.BANDWIDTH, attached)


def attach(conn: Connection, instance_id: str, host: str, interface: str, now: int) -> None:
    """Attach (or move) an instance; one interface of a host serves one instance."""
    if not _HOST.match(host):
        raise AttachmentError(f"host {host!r}: use letters, digits and . _ : - (at most 128)")
    if not _INTERFACE.match(interface):
        raise AttachmentError(
            f"interface {interface!r} is not a Linux interface name (1-15 of A-Z a-z 0-9 _ . @ -)"
        )
    found = conn.execute(
        select(instances.c.instance_id).where(instances.c.instance_id == instance_id)
    ).first()
    if found is None:
        raise NotFound(f"instance {instance_id} does not exist")
    a = network_attachments.c
    # An instance released since (its row deleted) no longer holds its interface.
    conn.execute(
        delete(network_attachments).where(
            a.host == host,
            a.interface == interface,
            ~exists().where(instances.c.instance_id == a.instance_id),
        )
    )
    taken = conn.execute(
        select(a.instance_id).where(
            a.host == host, a.interface == interface, a.instance_id != instance_id
        )
    ).first()
    if taken is not None:
        raise AttachmentError(f"{host} {interface} already serves instance {taken.instance_id}")
    conn.execute(delete(network_attachments).where(a.instance_id == instance_id))
    conn.execute(
        insert(network_attachments).values(
            instance_id=instance_id, host=host, interface=interface, created_at=now
        )
    )


def detach(conn: Connection, instance_id: str) -> None:
    a = network_attachments.c
    if conn.execute(delete(network_attachments).where(a.instance_id == instance_id)).rowcount == 0:
        raise NotFound(f"instance {instance_id} has no network attachment")


def listing(conn: Connection, host: str | None = None) -> list[dict[str, Any]]:
    a = network_attachments.c
    query = select(a.instance_id, a.host, a.interface).order_by(a.host, a.interface)
    if host is not None:
        query = query.where(a.host == host)
    return [
        {"instanceId": r.instance_id, "host": r.host, "interface": r.interface}
        for r in conn.execute(query)
    ]


def desired(conn: Connection, host: str, now: int) -> list[Desired]:
    """The caps of every live instance attached to ``host``; a recycled instance has none."""
    a, i, o, off = network_attachments.c, instances.c, orders.c, offerings.c
    query = (
        select(
            a.instance_id,
            a.interface,
            i.bandwidth,
            o.order_number,
            o.to_value,
            o.state,
            o.effective_at,
            off.cap_inbound,
        )
        .select_from(
            network_attachments.join(instances, i.instance_id == a.instance_id)
            .outerjoin(orders, o.order_number == i.bw_order)
            .outerjoin(
                offerings,
                and_(off.zone_id == i.zone_id, off.instance_type_id == i.instance_type_id),
            )
        )
        .where(a.host == host, i.status != RECYCLE)
        .order_by(a.interface)
    )
    result = []
    for row in conn.execute(query):
        due = (
            row.order_number is not None
            and row.state in _DUE_STATES
            and row.effective_at <= now
            and row.to_value is not None
        )
        mbps = int(row.to_value) if due else int(row.bandwidth)
        result.append(
            Desired(
                instance_id=row.instance_id,
                interface=row.interface,
                out_mbps=mbps,
                in_mbps=mbps if row.cap_inbound else None,
                order_number=row.order_number if due else None,
            )
        )
    return result


def _due_order(conn: Connection, host: str, instance_id: str, order_number: str, now: int) -> Any:
    a, i, o = network_attachments.c, instances.c, orders.c
    query = (
        select(o.order_number, o.to_value)
        .select_from(
            orders.join(instances, i.instance_id == o.instance_id).join(
                network_attachments, a.instance_id == o.instance_id
            )
        )
        .where(
            o.order_number == order_number,
            o.instance_id == instance_id,
            o.kind == order_states.BANDWIDTH,
            o.state.in_(_DUE_STATES),
            o.effective_at <= now,
            i.bw_order == order_number,
            a.host == host,
        )
        .with_for_update(of=orders)
    )
    return conn.execute(query).first()


def confirm(conn: Connection, host: str, applied: list[dict[str, Any]], now: int) -> int:
    """Enable the orders whose new value ``host``'s kernel now has; return how many.

    A report naming an order that is no longer due (cancelled, already enabled, moved to another
    host) or a value other than the order's is ignored: resending a report is harmless."""
    enabled = 0
    for item in applied:
        order = _due_order(conn, host, item["instanceId"], item["orderNumber"], now)
        if order is None or int(order.to_value) != item["mbps"]:
            continue
        application = changes.application(
            item["instanceId"], order.order_number, order.to_value, now
        )
        changes.apply(conn, order_states.BANDWIDTH, [application])
        enabled += 1
    return enabled


def record_failures(conn: Connection, host: str, failed: list[dict[str, Any]], now: int) -> int:
    """The kernel refused: the order stays due (the agent retries), with the attempt recorded."""
    recorded = 0
    for item in failed:
        order = _due_order(conn, host, item["instanceId"], item["orderNumber"], now)
        if order is None:
            continue
        conn.execute(
            update(orders)
            .where(orders.c.order_number == order.order_number)
            .values(attempts=orders.c.attempts + 1, last_error=str(item["error"])[:2000])
        )
        recorded += 1
    return recorded
