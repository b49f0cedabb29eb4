"""Provisioning an instance for a tenant from the admin CLI: already RUNNING or STOPPED, free
unless asked to charge (operators bill those customers elsewhere); addresses from the pools."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from zbmc.billing import orders
from zbmc.billing.renewals import charge_period
from zbmc.db.tables import instance_types, instances, offerings, tenants
from zbmc.domain import lifecycle
from zbmc.domain.changes import BY_TRAFFIC_PACKAGE, ENABLE, PREPAID, initial_package_gb
from zbmc.domain.periods import add_months
from zbmc.domain.sizes import tb_to_gb
from zbmc.errors import AddressPoolExhausted
from zbmc.store import addresses
from zbmc.store import instances as store
from zbmc.tenancy import require_tenant


class ProvisioningError(ValueError):
    pass


@dataclass(frozen=True)
class InstanceSpec:
    tenant_id: str
    zone_id: str
    instance_type_id: str
    instance_charge_type: str
    internet_charge_type: str
    bandwidth: int
    traffic_package_tb: Decimal | None = None  # None: the offering's default package
    no_traffic_package: bool = False  # a ByTrafficPackage instance without a package
    period: int = 1
    status: str = lifecycle.RUNNING
    name: str = "instance"
    hostname: str | None = None  # None: the same as the name
    image_id: str | None = None
    auto_renew: bool = True
    charge: bool = False  # take the first period's price from the balance
    tags: tuple[tuple[str, str], ...] = ()


def new_instance_id() -> str:
    return str(10**17 + secrets.randbelow(9 * 10**17))


def provision(conn: Connection, spec: InstanceSpec, now: int) -> str:
    require_tenant(conn, spec.tenant_id)
    offer = conn.execute(
        select(offerings, instance_types.c.maximum_bandwidth)
        .join(instance_types, instance_types.c.instance_type_id == offerings.c.instance_type_id)
        .where(
            offerings.c.zone_id == spec.zone_id,
            offerings.c.instance_type_id == spec.instance_type_id,
        )
    ).first()
    if offer is None:
        raise ProvisioningError(f"{spec.instance_type_id} is not offered in {spec.zone_id}")
    if spec.instance_charge_type not in offer.instance_charge_types:
        raise ProvisioningError(f"{spec.instance_charge_type} is not sold for this offering")
    if spec.internet_charge_type not in offer.internet_charge_types:
        raise ProvisioningError(f"{spec.internet_charge_type} is not sold for this offering")
    if not 1 <= spec.bandwidth <= offer.maximum_bandwidth_out:
        raise ProvisioningError(f"bandwidth must be 1..{offer.maximum_bandwidth_out} Mbps")
    if spec.status not in (lifecycle.RUNNING, lifecycle.STOPPED, lifecycle.CREATING):
        raise ProvisioningError("status must be RUNNING, STOPPED or CREATING")
    # CREATING: the worker's host driver creates it, like an instance of CreateInstances;
    # metering starts when it is RUNNING (zbmc.hosts)
    creating = spec.status == lifecycle.CREATING
    if spec.period < 1:
        raise ProvisioningError("period must be at least 1 month")
    package_gb: int | None = None
    by_package = spec.internet_charge_type == BY_TRAFFIC_PACKAGE
    if by_package and not spec.no_traffic_package:
        try:
            package_gb = (
                initial_package_gb(spec.instance_charge_type, offer.default_traffic_package_gb)
                if spec.traffic_package_tb is None
                else tb_to_gb(spec.traffic_package_tb)
            )
        except ValueError as exc:
            raise ProvisioningError(str(exc)) from None
        floor = initial_package_gb(spec.instance_charge_type, offer.default_traffic_package_gb)
        if not floor <= package_gb <= offer.maximum_traffic_package_gb:
            raise ProvisioningError("traffic package outside the offering's default..maximum")
    prepaid = spec.instance_charge_type == PREPAID
    instance_id = new_instance_id()
    owner = [instance_id]
    try:
        public, private, ipv6 = (
            addresses.allocate(conn, kind, spec.zone_id, owner)[0]
            for kind in (addresses.PUBLIC_IPV4, addresses.PRIVATE_IPV4, addresses.IPV6)
        )
    except AddressPoolExhausted as exc:
        raise ProvisioningError(f"{exc.message} (add a pool with `zbmc admin pool add`)") from None
    expires = add_months(now, spec.period) if prepaid else None
    conn.execute(
        insert(instances).values(
            instance_id=instance_id,
            tenant_id=spec.tenant_id,
            zone_id=spec.zone_id,
            instance_type_id=spec.instance_type_id,
            instance_name=spec.name,
            hostname=spec.hostname or spec.name,
            image_id=spec.image_id,
            instance_charge_type=spec.instance_charge_type,
            internet_charge_type=spec.internet_charge_type,
            status=spec.status,
            bandwidth=spec.bandwidth,
            traffic_package_gb=package_gb,
            period=spec.period if prepaid else None,
            auto_renew=spec.auto_renew if prepaid else False,
            create_time=now,
            period_start=now if prepaid else None,
            expired_time=expires,
            billing_anchor=now,
            # hourly metering: postpaid usage, and traffic above a package
            metered_until=(
                now if not creating and (not prepaid or package_gb is not None) else None
            ),
            traffic_cycle_start=now if not creating and package_gb is not None else None,
            host_op=lifecycle.OP_CREATE if creating else None,
            host_op_due=now if creating else None,
            bw_status=ENABLE,
            tp_status=ENABLE if by_package else None,
            primary_ip=public,
            private_ip=private,
            ipv6=ipv6,
            tags=[{"key": k, "value": v} for k, v in spec.tags],
        )
    )
    conn.execute(
        update(tenants)
        .where(tenants.c.tenant_id == spec.tenant_id)
        .values(instance_count=tenants.c.instance_count + 1)
    )
    if spec.charge and prepaid:
        row = store.load(conn, spec.tenant_id, instance_id, lock=False)
        if (
            charge_period(conn, row, now, expires or now, now, "first period", orders.CREATE)
            is None
        ):
            raise ProvisioningError("the balance does not cover the first period")
    return instance_id
