"""Importing an operator's existing fleet (``zbmc admin instance import FILE``): JSON lines or CSV,
one instance per line, all in one transaction, all or nothing, the failing line named.

Built for size (10 000 instances in a few seconds on SQLite, bench/fleet_import.py): the
catalogue, tenants and resource groups are read once, every line is checked in Python, addresses
are claimed or allocated per (kind, zone) in bulk, and the rows go in with one executemany.
Imported instances are the operator's: they take no stock and are not charged (as
``zbmc admin instance create`` without ``--charge``); POSTPAID metering starts at the import.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from zbmc.clock import parse_iso
from zbmc.db.tables import (
    address_pools,
    addresses,
    images,
    instance_types,
    instances,
    offerings,
    resource_groups,
    tenants,
)
from zbmc.domain.changes import BY_TRAFFIC_PACKAGE, ENABLE, POSTPAID, PREPAID, initial_package_gb
from zbmc.domain.creation import HOSTNAME_CHARS, MAX_NAME, NAME_CHARS
from zbmc.domain.lifecycle import RUNNING, STOPPED
from zbmc.domain.periods import add_months
from zbmc.domain.sizes import tb_to_gb
from zbmc.errors import AddressPoolExhausted
from zbmc.provisioning import new_instance_id
from zbmc.store import addresses as pools

FIELDS = (
    "tenantId",
    "zoneId",
    "instanceTypeId",
    "instanceChargeType",
    "internetChargeType",
    "bandwidthOutMbps",
    "trafficPackageSize",
    "period",
    "expiredTime",
    "autoRenew",
    "status",
    "instanceId",
    "instanceName",
    "hostname",
    "imageId",
    "createTime",
    "resourceGroupId",
    "primaryPublicIpAddress",
    "privateIpAddress",
    "ipv6Address",
    "tags",
)
REQUIRED = ("tenantId", "zoneId", "instanceTypeId", "instanceChargeType", "internetChargeType")
_ADDRESS_FIELDS = (
    ("primaryPublicIpAddress", "primary_ip", pools.PUBLIC_IPV4),
    ("privateIpAddress", "private_ip", pools.PRIVATE_IPV4),
    ("ipv6Address", "ipv6", pools.IPV6),
)


class ImportError_(ValueError):
    """A line of the file is wrong; the message names it."""


def read(text: str, *, csv_format: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for every non-empty line (CSV: after the header)."""
    if csv_format:
        reader = csv.DictReader(io.StringIO(text))
        unknown = set(reader.fieldnames or ()) - set(FIELDS)
        if unknown:
            raise ImportError_(f"line 1: unknown columns {sorted(unknown)}")
        for record in reader:
            yield reader.line_num, {k: v for k, v in record.items() if v not in ("", None)}
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportError_(f"line {number}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise ImportError_(f"line {number}: expected a JSON object")
        unknown = set(record) - set(FIELDS)
        if unknown:
            raise ImportError_(f"line {number}: unknown keys {sorted(unknown)}")
        yield number, {k: v for k, v in record.items() if v is not None}


@dataclass
class _Catalogue:
    offers: dict[tuple[str, str], Any]
    types: dict[str, Any]
    images: set[str]
    tenants: set[str]
    groups: dict[str, str]  # resource group id -> tenant id
    networks: list[tuple[Any, str, str]]  # (network, pool id, kind)

    @classmethod
    def load(cls, conn: Connection) -> _Catalogue:
        return cls(
            offers={(r.zone_id, r.instance_type_id): r for r in conn.execute(select(offerings))},
            types={r.instance_type_id: r for r in conn.execute(select(instance_types))},
            images={r.image_id for r in conn.execute(select(images.c.image_id))},
            tenants={r.tenant_id for r in conn.execute(select(tenants.c.tenant_id))},
            groups={
                r.resource_group_id: r.tenant_id
                for r in conn.execute(
                    select(resource_groups.c.resource_group_id, resource_groups.c.tenant_id)
                )
            },
            networks=[
                (ipaddress.ip_network(r.cidr), r.pool_id, r.kind)
                for r in conn.execute(select(address_pools))
            ],
        )


def _text(record: dict[str, Any], key: str, default: str | None = None) -> str | None:
    value = record.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _int(record: dict[str, Any], key: str, default: int) -> int:
    value = record.get(key, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer")
    return value


def _bool(record: dict[str, Any], key: str, default: bool) -> bool:
    value = record.get(key, default)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false")
    return value


def _tags(value: Any) -> list[dict[str, str]]:
    if value is None:
        return []
    if isinstance(value, str):  # CSV: key=value;key=value
        pairs = [part.partition("=") for part in value.split(";") if part]
        if any(not (k and sep and v) for k, sep, v in pairs):
            raise ValueError("tags must be key=value;key=value")
        return [{"key": k, "value": v} for k, _, v in pairs]
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return [{"key": str(k), "value": v} for k, v in value.items()]
    raise ValueError("tags must be an object of strings")


def _network(
    offer: Any, charge: str | None, internet: str | None, record: dict[str, Any]
) -> tuple[int, int | None]:
    bandwidth = _int(record, "bandwidthOutMbps", 1)
    if not 1 <= bandwidth <= offer.maximum_bandwidth_out:
        raise ValueError(f"bandwidthOutMbps must be 1..{offer.maximum_bandwidth_out}")
    package: int | None = None
    if internet == BY_TRAFFIC_PACKAGE:
        size = record.get("trafficPackageSize")
        try:
            # without a size: the free package (PREPAID), none bought (POSTPAID: docs/billing.md)
            package = (
                initial_package_gb(charge or PREPAID, offer.default_traffic_package_gb)
                if size is None
                else tb_to_gb(Decimal(str(size)))
            )
        except (InvalidOperation, ValueError):
            raise ValueError(f"trafficPackageSize {size!r} is not a multiple of 0.05 TB") from None
    return bandwidth, package


def _row(cat: _Catalogue, record: dict[str, Any], now: int) -> dict[str, Any]:
    for key in REQUIRED:
        if not record.get(key):
            raise ValueError(f"{key} is required")
    tenant_id, zone_id = str(record["tenantId"]), str(record["zoneId"])
    type_id = str(record["instanceTypeId"])
    if tenant_id not in cat.tenants:
        raise ValueError(f"tenant {tenant_id!r} does not exist")
    offer = cat.offers.get((zone_id, type_id))
    if offer is None:
        raise ValueError(f"{type_id} is not offered in {zone_id}")
    charge, internet = _text(record, "instanceChargeType"), _text(record, "internetChargeType")
    if charge not in offer.instance_charge_types:
        raise ValueError(f"{charge} is not sold for {type_id} in {zone_id}")
    if internet not in offer.internet_charge_types:
        raise ValueError(f"{internet} is not sold for {type_id} in {zone_id}")
    bandwidth, package = _network(offer, charge, internet, record)
    status = _text(record, "status", RUNNING)
    if status not in (RUNNING, STOPPED):
        raise ValueError("status must be RUNNING or STOPPED")
    name = _text(record, "instanceName", "instance") or "instance"
    hostname = _text(record, "hostname", name) or name
    if len(name) > MAX_NAME or not NAME_CHARS.match(name):
        raise ValueError(f"instanceName {name!r} is not 1-64 letters, digits, '-', '.', '_'")
    if len(hostname) > MAX_NAME or not HOSTNAME_CHARS.match(hostname):
        raise ValueError(f"hostname {hostname!r} is malformed")
    image_id = _text(record, "imageId")
    if image_id is not None and image_id not in cat.images:
        raise ValueError(f"image {image_id!r} does not exist")
    group = _text(record, "resourceGroupId")
    if group == "default":
        group = None
    if group is not None and cat.groups.get(group) != tenant_id:
        raise ValueError(f"resource group {group!r} is not one of the tenant's")
    created = parse_iso(str(record["createTime"])) if "createTime" in record else now
    prepaid = charge == PREPAID
    period = _int(record, "period", 1)
    if prepaid and not 1 <= period <= 36:
        raise ValueError("period must be 1..36 months")
    expires = None
    if prepaid:
        expires = (
            parse_iso(str(record["expiredTime"]))
            if "expiredTime" in record
            else add_months(created, period)
        )
        if expires <= created:
            raise ValueError("expiredTime must be after createTime")
    return {
        "instance_id": _text(record, "instanceId") or new_instance_id(),
        "tenant_id": tenant_id,
        "zone_id": zone_id,
        "instance_type_id": type_id,
        "instance_name": name,
        "hostname": hostname,
        "image_id": image_id,
        "instance_charge_type": charge,
        "internet_charge_type": internet,
        "status": status,
        "bandwidth": bandwidth,
        "traffic_package_gb": package,
        "period": period if prepaid else None,
        "auto_renew": _bool(record, "autoRenew", True) if prepaid else False,
        "create_time": created,
        # the current period, counted in whole periods back from its end (the billing anchor)
        "period_start": add_months(expires, -period) if expires is not None else None,
        "expired_time": expires,
        "billing_anchor": expires if expires is not None else created,
        "metered_until": now if charge == POSTPAID or package is not None else None,
        "traffic_cycle_start": now if package is not None else None,
        "bw_status": ENABLE,
        "tp_status": ENABLE if internet == BY_TRAFFIC_PACKAGE else None,
        "resource_group_id": group,
        "tags": _tags(record.get("tags")),
        "primary_ip": None,
        "private_ip": None,
        "ipv6": None,
    }


def import_fleet(conn: Connection, text: str, *, csv_format: bool, now: int) -> list[str]:
    """Insert every instance of ``text``; return their ids. Raises ImportError_ naming the line."""
    cat = _Catalogue.load(conn)
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    given: dict[str, int] = {}  # address -> line
    for number, record in read(text, csv_format=csv_format):
        try:
            row = _row(cat, record, now)
            for key, column, kind in _ADDRESS_FIELDS:
                if key in record:
                    address = _address(_text(record, key) or "", kind)
                    if address in given:
                        raise ValueError(f"{key} {address} is also on line {given[address]}")
                    given[address] = number
                    row[column] = address
        except ValueError as exc:
            raise ImportError_(f"line {number}: {exc}") from None
        rows.append(row)
        lines.append(number)
    ids = [r["instance_id"] for r in rows]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        for number, instance_id in zip(lines, ids, strict=True):
            if instance_id in seen:
                raise ImportError_(f"line {number}: instanceId {instance_id} appears twice")
            seen.add(instance_id)
    for chunk in _chunks(ids):
        clash = conn.execute(
            select(instances.c.instance_id).where(instances.c.instance_id.in_(chunk))
        ).first()
        if clash is not None:
            line = lines[ids.index(clash.instance_id)]
            raise ImportError_(f"line {line}: instance {clash.instance_id} already exists")
    _claim(conn, cat, rows, given)
    _allocate(conn, rows, lines)
    conn.execute(insert(instances), rows)
    per_tenant: dict[str, int] = defaultdict(int)
    for row in rows:
        per_tenant[row["tenant_id"]] += 1
    for tenant_id, count in per_tenant.items():
        conn.execute(
            update(tenants)
            .where(tenants.c.tenant_id == tenant_id)
            .values(instance_count=tenants.c.instance_count + count)
        )
    if ids and conn.dialect.name == "postgresql":
        # Statistics that include the new rows (ANALYZE counts this transaction's own inserts),
        # committed with them: the planner's choices for DescribeInstances depend on them, and
        # autovacuum may come much later or never (docs/performance.md).
        conn.exec_driver_sql("ANALYZE instances, addresses")
    return ids


def _address(text: str, kind: str) -> str:
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None
    if (parsed.version == 6) != (kind == pools.IPV6):
        raise ValueError(f"{text} is not an IPv{'6' if kind == pools.IPV6 else '4'} address")
    return str(parsed)


def _chunks(values: list[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _claim(
    conn: Connection,
    cat: _Catalogue,
    rows: list[dict[str, Any]],
    given: dict[str, int],
) -> None:
    """Addresses the file gives that lie in a pool are recorded as held (refused if already
    held); addresses outside every pool stay on the instance only."""
    owner = {}
    for row in rows:
        for _, column, _ in _ADDRESS_FIELDS:
            if row[column] is not None:
                owner[row[column]] = row["instance_id"]
    pooled: dict[str, tuple[str, str]] = {}
    for address in given:
        parsed = ipaddress.ip_address(address)
        for network, pool_id, kind in cat.networks:
            if parsed.version == network.version and parsed in network:
                pooled[address] = (pool_id, kind)
                break
    existing: dict[str, str | None] = {}
    for chunk in _chunks(list(pooled)):
        for r in conn.execute(select(addresses).where(addresses.c.address.in_(chunk))):
            existing[r.address] = r.instance_id
    for address, holder in existing.items():
        if holder is not None:
            raise ImportError_(f"line {given[address]}: {address} is held by instance {holder}")
    outside = [a for a in given if a not in pooled]
    if outside:  # not recorded in any pool: compare with every instance's addresses, once
        c = instances.c
        taken = {
            address
            for row in conn.execute(select(c.primary_ip, c.private_ip, c.ipv6))
            for address in row
            if address is not None
        }
        for address in outside:
            if address in taken:
                raise ImportError_(f"line {given[address]}: {address} is held by an instance")
    fresh = [a for a in pooled if a not in existing]
    if fresh:
        conn.execute(
            insert(addresses),
            [
                {
                    "address": a,
                    "pool_id": pooled[a][0],
                    "kind": pooled[a][1],
                    "instance_id": owner[a],
                }
                for a in fresh
            ],
        )
    for address in existing:
        conn.execute(
            update(addresses)
            .where(addresses.c.address == address)
            .values(instance_id=owner[address])
        )


def _allocate(conn: Connection, rows: list[dict[str, Any]], lines: list[int]) -> None:
    """Pool addresses for the rows the file gives none, in one call per (kind, zone)."""
    for _, column, kind in _ADDRESS_FIELDS:
        wanting: dict[str, list[int]] = defaultdict(list)
        for index, row in enumerate(rows):
            if row[column] is None:
                wanting[row["zone_id"]].append(index)
        for zone_id, indexes in wanting.items():
            owners = [rows[i]["instance_id"] for i in indexes]
            try:
                got = pools.allocate(conn, kind, zone_id, owners)
            except AddressPoolExhausted as exc:
                raise ImportError_(
                    f"line {lines[indexes[0]]}: {exc.message} (add a pool with "
                    "`zbmc admin pool add`)"
                ) from None
            for i, address in zip(indexes, got, strict=True):
                rows[i][column] = address
