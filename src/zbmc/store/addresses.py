"""Address pools and the addresses handed out from them (primary public IPv4, private IPv4, IPv6).

A pool is a CIDR, for one zone or every zone. Addresses are handed out in order (network address
+ 1, + 2, ...) and recorded in ``addresses``, whose primary key is the address: no address is
ever held twice, whatever the database or the concurrency. Released addresses (``instance_id``
NULL) are handed out again before new ones.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from zbmc import errors
from zbmc.db.tables import address_pools, addresses, zones

PUBLIC_IPV4, PRIVATE_IPV4, IPV6 = "PUBLIC_IPV4", "PRIVATE_IPV4", "IPV6"
KINDS = (PUBLIC_IPV4, PRIVATE_IPV4, IPV6)
_MAX_IPV6_HOSTS = 2**62  # next_index is a signed 64-bit integer


class PoolError(ValueError):
    pass


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(kind: str, cidr: str) -> Network:
    if kind not in KINDS:
        raise PoolError(f"unknown pool kind {kind!r}; use one of {', '.join(KINDS)}")
    try:
        network = ipaddress.ip_network(cidr, strict=True)
    except ValueError as exc:
        raise PoolError(f"invalid CIDR {cidr!r}: {exc}") from None
    if (network.version == 6) != (kind == IPV6):
        raise PoolError(f"{kind} pools take IPv{'6' if kind == IPV6 else '4'} CIDRs, not {cidr}")
    if network.version == 4 and network.prefixlen > 30:
        raise PoolError("IPv4 pools need at least a /30 (two usable addresses)")
    if network.version == 6 and network.prefixlen > 126:
        raise PoolError("IPv6 pools need at least a /126")
    return network


def size(network: Network) -> int:
    """Usable hosts: without the network address (and the broadcast address for IPv4)."""
    if network.version == 4:
        return network.num_addresses - 2
    return min(network.num_addresses - 1, _MAX_IPV6_HOSTS)


def host(network: Network, index: int) -> str:
    return str(network.network_address + 1 + index)


def add_pool(
    conn: Connection, kind: str, cidr: str, zone_id: str | None, pool_id: str | None = None
) -> str:
    network = _network(kind, cidr)
    if (
        zone_id is not None
        and conn.execute(select(zones.c.zone_id).where(zones.c.zone_id == zone_id)).first() is None
    ):
        raise PoolError(f"zone {zone_id!r} does not exist")
    for row in conn.execute(select(address_pools)):
        if row.pool_id == pool_id:
            if (row.kind, row.cidr, row.zone_id) == (kind, str(network), zone_id):
                return str(row.pool_id)  # loading the same catalogue twice
            raise PoolError(f"pool {pool_id!r} exists with another kind, CIDR or zone")
        if network.overlaps(ipaddress.ip_network(row.cidr)):
            raise PoolError(f"{network} overlaps pool {row.pool_id} ({row.cidr})")
    pool_id = pool_id or "pool-" + secrets.token_hex(4)
    conn.execute(
        insert(address_pools).values(
            pool_id=pool_id, kind=kind, zone_id=zone_id, cidr=str(network), next_index=0
        )
    )
    return pool_id


def list_pools(conn: Connection) -> list[dict[str, Any]]:
    held: dict[str, int] = dict(
        conn.execute(
            select(addresses.c.pool_id, func.count())
            .where(addresses.c.instance_id.is_not(None))
            .group_by(addresses.c.pool_id)
        ).all()
    )
    free: dict[str, int] = dict(
        conn.execute(
            select(addresses.c.pool_id, func.count())
            .where(addresses.c.instance_id.is_(None))
            .group_by(addresses.c.pool_id)
        ).all()
    )
    result = []
    for row in conn.execute(select(address_pools).order_by(address_pools.c.pool_id)):
        total = size(ipaddress.ip_network(row.cidr))
        result.append(
            {
                "poolId": row.pool_id,
                "kind": row.kind,
                "zoneId": row.zone_id,
                "cidr": row.cidr,
                "size": total,
                "held": int(held.get(row.pool_id, 0)),
                "available": total - int(row.next_index) + int(free.get(row.pool_id, 0)),
            }
        )
    return result


def _pools(conn: Connection, kind: str, zone_id: str) -> list[Any]:
    """Zone pools first, then the pools of every zone."""
    return list(
        conn.execute(
            select(address_pools)
            .where(
                address_pools.c.kind == kind,
                or_(address_pools.c.zone_id == zone_id, address_pools.c.zone_id.is_(None)),
            )
            .order_by(address_pools.c.zone_id.is_(None), address_pools.c.pool_id)
        )
    )


def _reuse(conn: Connection, pool_ids: list[str], owners: Sequence[str]) -> list[str]:
    query = (
        select(addresses.c.address)
        .where(addresses.c.pool_id.in_(pool_ids), addresses.c.instance_id.is_(None))
        .order_by(addresses.c.address)
        .limit(len(owners))
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    found = [row.address for row in conn.execute(query)]
    taken = []
    for address, owner in zip(found, owners, strict=False):
        claimed = conn.execute(
            update(addresses)
            .where(addresses.c.address == address, addresses.c.instance_id.is_(None))
            .values(instance_id=owner)
        ).rowcount
        if claimed:
            taken.append(address)
    return taken


def _fresh(conn: Connection, pool: Any, wanted: int) -> list[str]:
    """Up to ``wanted`` never-used addresses of ``pool``, reserved by moving its next_index with
    one conditional UPDATE (row-locked on PostgreSQL, serialised on SQLite)."""
    network = ipaddress.ip_network(pool.cidr)
    total = size(network)
    got: list[str] = []
    while len(got) < wanted:
        current = conn.execute(
            select(address_pools.c.next_index).where(address_pools.c.pool_id == pool.pool_id)
        ).scalar_one()
        take = min(wanted - len(got), total - int(current))
        if take <= 0:
            break
        moved = conn.execute(
            update(address_pools)
            .where(
                address_pools.c.pool_id == pool.pool_id,
                address_pools.c.next_index + take <= total,
            )
            .values(next_index=address_pools.c.next_index + take)
            .returning(address_pools.c.next_index)
        ).first()
        if moved is None:
            continue  # another transaction moved it first: read it again
        start = int(moved.next_index) - take
        block = [host(network, start + i) for i in range(take)]
        # an address imported with a fleet may already be recorded: skip it
        known = {
            row.address
            for start in range(0, len(block), 500)
            for row in conn.execute(
                select(addresses.c.address).where(
                    addresses.c.address.in_(block[start : start + 500])
                )
            )
        }
        got += [address for address in block if address not in known]
    return got


def allocate(conn: Connection, kind: str, zone_id: str, owners: Sequence[str]) -> list[str]:
    """One address of ``kind`` for each instance id in ``owners`` (same order), or
    ``AddressPoolExhausted`` with nothing recorded by this call's caller (it rolls back)."""
    if not owners:
        return []
    pools = _pools(conn, kind, zone_id)
    if not pools:
        raise errors.AddressPoolExhausted(kind=kind, zone_id=zone_id)
    taken = _reuse(conn, [p.pool_id for p in pools], owners)
    fresh: list[tuple[str, str]] = []  # (address, pool id)
    for pool in pools:
        missing = len(owners) - len(taken) - len(fresh)
        if missing <= 0:
            break
        fresh += [(address, pool.pool_id) for address in _fresh(conn, pool, missing)]
    if len(taken) + len(fresh) < len(owners):
        raise errors.AddressPoolExhausted(kind=kind, zone_id=zone_id)
    rest = owners[len(taken) :]
    if fresh:
        conn.execute(
            insert(addresses),
            [
                {"address": address, "pool_id": pool_id, "kind": kind, "instance_id": owner}
                for (address, pool_id), owner in zip(fresh, rest, strict=True)
            ],
        )
    return taken + [address for address, _ in fresh]


def claim(conn: Connection, address: str, instance_id: str) -> bool:
    """Record an existing (imported) address as held if a pool contains it; False if no pool
    does. Raises PoolError if it is already held."""
    parsed = ipaddress.ip_address(address)
    for pool in conn.execute(select(address_pools)):
        network = ipaddress.ip_network(pool.cidr)
        if parsed.version != network.version or parsed not in network:
            continue
        text = str(parsed)
        row = conn.execute(select(addresses).where(addresses.c.address == text)).first()
        if row is not None and row.instance_id is not None:
            raise PoolError(f"address {text} is already held by instance {row.instance_id}")
        if row is not None:
            conn.execute(
                update(addresses).where(addresses.c.address == text).values(instance_id=instance_id)
            )
        else:
            conn.execute(
                insert(addresses).values(
                    address=text, pool_id=pool.pool_id, kind=pool.kind, instance_id=instance_id
                )
            )
        return True
    return False


def release(conn: Connection, instance_ids: Sequence[str]) -> int:
    """Free the addresses of released instances (handed out again first)."""
    return int(
        conn.execute(
            update(addresses)
            .where(and_(addresses.c.instance_id.in_(list(instance_ids))))
            .values(instance_id=None)
        ).rowcount
    )
