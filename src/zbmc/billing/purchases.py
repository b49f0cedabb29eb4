"""A validated CreateInstances request carried out in the caller's one transaction: stock, money,
one order, addresses, the instance rows. Any refusal raises before the transaction commits, so a
refused request leaves nothing behind (no stock taken, no charge, no address, no instance)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from zbmc import errors
from zbmc.billing import ledger, orders
from zbmc.clock import iso
from zbmc.db.tables import instances, offerings, tenants
from zbmc.domain.changes import BY_TRAFFIC_PACKAGE, ENABLE, POSTPAID, PREPAID
from zbmc.domain.lifecycle import CREATING
from zbmc.domain.periods import add_months
from zbmc.domain.pricing import CreationQuote, from_cents
from zbmc.offers import Network, Offer
from zbmc.provisioning import new_instance_id
from zbmc.store import addresses

CREATE_OPERATION = "CREATE"  # instances.host_op: the worker brings the host up


@dataclass(frozen=True)
class Purchase:
    tenant_id: str
    offer: Offer
    prepaid: bool
    internet_charge_type: str
    period: int  # months; 0 for POSTPAID
    network: Network
    quote: CreationQuote  # one instance
    names: list[str]
    hostnames: list[str]
    image_id: str | None
    ipxe_url: str | None
    key_id: str | None
    resource_group_id: str | None
    raid_config: dict[str, Any] | None
    partitions: list[dict[str, Any]] | None
    nic: dict[str, str]
    tags: list[dict[str, str]]
    ipv6: bool
    gateway_mode: bool


@dataclass(frozen=True)
class Done:
    instance_ids: list[str]
    order_number: str


def _take_stock(conn: Connection, offer: Offer, amount: int) -> None:
    taken = conn.execute(
        update(offerings)
        .where(
            offerings.c.zone_id == offer.zone_id,
            offerings.c.instance_type_id == offer.model.instance_type_id,
            offerings.c.qty >= amount,
        )
        .values(qty=offerings.c.qty - amount)
    ).rowcount
    if not taken:
        qty = conn.execute(
            select(offerings.c.qty).where(
                offerings.c.zone_id == offer.zone_id,
                offerings.c.instance_type_id == offer.model.instance_type_id,
            )
        ).scalar_one()
        raise errors.SoldOut(
            instance_type_id=offer.model.instance_type_id,
            zone_id=offer.zone_id,
            qty=qty,
            amount=amount,
        )


def _pay(
    conn: Connection, p: Purchase, ids: list[str], number: str, now: int, expires: int | None
) -> int:
    """PREPAID: charge every instance's first period at once (all or nothing). POSTPAID: the
    balance must cover the first hour of every instance (nothing is charged now: metering starts
    when an instance reaches RUNNING)."""
    per_instance = p.quote.cents
    total = per_instance * len(ids)
    if not p.prepaid:
        balance = ledger.balance(conn, p.tenant_id) or 0
        if balance < total:
            raise errors.BalanceInsufficient(balance=from_cents(balance), amount=from_cents(total))
        return 0
    entries = [
        ledger.Entry(
            kind=ledger.CHARGE,
            amount=per_instance,
            description=f"first period of instance {instance_id} for {iso(now)} .. "
            f"{iso(expires or now)}",
            order_number=number,
            instance_id=instance_id,
            period_start=now,
            period_end=expires,
        )
        for instance_id in ids
    ]
    if ledger.try_charge_all(conn, p.tenant_id, entries, now) is None:
        balance = ledger.balance(conn, p.tenant_id) or 0
        raise errors.BalanceInsufficient(balance=from_cents(balance), amount=from_cents(total))
    return total


def purchase(conn: Connection, p: Purchase, now: int) -> Done:
    amount = len(p.names)
    _take_stock(conn, p.offer, amount)
    ids = [new_instance_id() for _ in range(amount)]
    number = orders.new_order_number()
    expires = add_months(now, p.period) if p.prepaid else None
    charged = _pay(conn, p, ids, number, now, expires)
    zone = p.offer.zone_id
    public = addresses.allocate(conn, addresses.PUBLIC_IPV4, zone, ids)
    private = addresses.allocate(conn, addresses.PRIVATE_IPV4, zone, ids)
    ipv6 = addresses.allocate(conn, addresses.IPV6, zone, ids) if p.ipv6 else [None] * amount
    by_package = p.internet_charge_type == BY_TRAFFIC_PACKAGE
    package = p.network.package_gb
    metered = p.prepaid and package is not None  # overage of a prepaid package, from now
    conn.execute(
        insert(instances),
        [
            {
                "instance_id": instance_id,
                "tenant_id": p.tenant_id,
                "zone_id": zone,
                "instance_type_id": p.offer.model.instance_type_id,
                "instance_name": p.names[i],
                "hostname": p.hostnames[i],
                "image_id": p.image_id,
                "instance_charge_type": PREPAID if p.prepaid else POSTPAID,
                "internet_charge_type": p.internet_charge_type,
                "status": CREATING,
                "bandwidth": p.network.bandwidth,
                "traffic_package_gb": package,
                "period": p.period if p.prepaid else None,
                "auto_renew": p.prepaid,  # spec Q-I3
                "create_time": now,
                "period_start": now if p.prepaid else None,
                "expired_time": expires,
                "billing_anchor": now,
                # POSTPAID metering starts when the worker brings the instance to RUNNING
                "metered_until": now if metered else None,
                "traffic_cycle_start": now if metered else None,
                "bw_status": ENABLE,
                "tp_status": ENABLE if by_package else None,
                "primary_ip": public[i],
                "private_ip": private[i],
                "ipv6": ipv6[i],
                "resource_group_id": p.resource_group_id,
                "tags": p.tags,
                "ipxe_url": p.ipxe_url,
                "key_id": p.key_id,
                "subnet_id": None,
                "raid_config": p.raid_config,
                "partitions": p.partitions,
                "nic": p.nic,
                "enable_gateway_mode": p.gateway_mode,
                "host_op": CREATE_OPERATION,
                "host_op_due": now,
                "host_op_attempts": 0,
            }
            for i, instance_id in enumerate(ids)
        ],
    )
    conn.execute(
        update(tenants)
        .where(tenants.c.tenant_id == p.tenant_id)
        .values(instance_count=tenants.c.instance_count + amount)
    )
    orders.create(
        conn,
        order_number=number,
        tenant_id=p.tenant_id,
        instance_id=ids[0],
        kind=orders.CREATE,
        from_value=now if p.prepaid else None,
        to_value=expires,
        amount=charged,
        state=orders.ENABLED,
        now=now,
        effective_at=now,
    )
    return Done(ids, number)
