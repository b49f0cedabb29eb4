"""Fast bulk seeding of instances (and due downgrade orders) straight into zbmc's tables.

The rows mimic what ``zbmc.provisioning.provision`` writes for a RUNNING instance (and what
``billing.changes.execute`` writes for a prepaid downgrade), but go in by the hundred thousand:
SQLite through one DBAPI ``executemany`` per batch, PostgreSQL through ``COPY``. Columns are read
from ``zbmc.db.tables`` at run time, so a column added later is filled with NULL (or left to its
server default) instead of breaking the seeder.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.schema import Column, Table

from zbmc.db.tables import instances, orders
from zbmc.domain.periods import add_months

BATCH = 50_000
# Instance and order ids are 18 digits like provision's; seeded ones count up from a base per
# purpose so they never collide with each other or with random ones in practice.
POSTPAID_BASE = 900_000_000_000_000_000
BULK_BASE = 910_000_000_000_000_000
DOWNGRADE_BASE = 920_000_000_000_000_000
ORDER_BASE = 930_000_000_000_000_000


@dataclass(frozen=True)
class Seeded:
    count: int
    seconds: float


def instance_row(k: int, base: int, tenant_id: str, now: int, **values: Any) -> dict[str, Any]:
    """One RUNNING SEL-A M6C instance, numbered ``k`` (prepaid ByBandwidth unless overridden)."""
    row: dict[str, Any] = {
        "instance_id": str(base + k),
        "tenant_id": tenant_id,
        "zone_id": "SEL-A",
        "instance_type_id": "M6C",
        "instance_name": f"bench-{k}",
        "hostname": f"bench-{k}",
        "image_id": None,
        "instance_charge_type": "PREPAID",
        "internet_charge_type": "ByBandwidth",
        "status": "RUNNING",
        "bandwidth": 100,
        "traffic_package_gb": None,
        "period": 1,
        "auto_renew": True,
        "create_time": now,
        "period_start": now,
        "expired_time": now + 30 * 86400,
        "bw_status": "Enable",
        "bw_pending": None,
        "bw_order": None,
        "tp_status": None,
        "tp_pending_gb": None,
        "tp_order": None,
        "primary_ip": f"198.18.{(k >> 8) & 255}.{k & 255}",
        "private_ip": f"10.{(k >> 16) & 255}.{(k >> 8) & 255}.{k & 255}",
        "ipv6": f"2001:db8::{k >> 16:x}:{k & 0xFFFF:x}",
        "resource_group_id": None,
        "tags": "[]",
        "metered_until": None,
        "traffic_cycle_start": None,
        "overage_billed_gb": 0,
        "recycled_at": None,
    }
    row.update(values)
    return row


def _columns(engine: Engine, table: Table, sample: dict[str, Any]) -> list[Column[Any]]:
    """The columns to write: every one we have a value for, plus nullable ones (as NULL);
    columns with a server default and no value are left to the database, and so are nullable
    columns the database does not have yet (``bench/ab.py --a`` with older code: its
    migrations built the database)."""
    present = {c["name"] for c in inspect(engine).get_columns(table.name)}
    chosen = []
    for column in table.columns:
        if column.name not in present and column.name not in sample and column.nullable:
            continue
        if column.name in sample or column.server_default is None:
            if column.name not in sample and not column.nullable:
                raise RuntimeError(f"the seeder has no value for {table.name}.{column.name}")
            chosen.append(column)
    return chosen


def bulk_insert(engine: Engine, table: Table, rows: Iterator[dict[str, Any]]) -> Seeded:
    """Insert ``rows`` in batches of ``BATCH``, one transaction per batch."""
    started = time.perf_counter()
    first = next(rows, None)
    if first is None:
        return Seeded(0, 0.0)
    columns = _columns(engine, table, first)
    names = [c.name for c in columns]
    postgres = engine.dialect.name == "postgresql"
    count = 0

    def batches() -> Iterator[list[tuple[Any, ...]]]:
        batch = [tuple(first.get(n) for n in names)]
        for row in rows:
            batch.append(tuple(row.get(n) for n in names))
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    for batch in batches():
        with engine.begin() as conn:
            raw: Any = conn.connection.driver_connection
            if postgres:
                sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
                with raw.cursor() as cursor, cursor.copy(sql) as copy:
                    for values in batch:
                        copy.write_row(values)
            else:
                marks = ", ".join("?" for _ in names)
                sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})"
                conn.exec_driver_sql(sql, batch)
        count += len(batch)
    if table.name == "instances":  # zbmc keeps a per-tenant count for DescribeInstances
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE tenants SET instance_count = (SELECT COUNT(*) FROM instances"
                " WHERE instances.tenant_id = tenants.tenant_id)"
            )
    if postgres:  # (committed: an ANALYZE rolled back leaves no statistics)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"ANALYZE {table.name}")
    return Seeded(count, time.perf_counter() - started)


def vacuum(engine: Engine) -> None:
    """PostgreSQL: what autovacuum (on by default, off on the project's machine) does after a
    phase that deleted or rewrote many rows: dead rows cleared, statistics current. Nothing on
    SQLite."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def bulk_instances(
    engine: Engine, tenant_id: str, now: int, start: int, stop: int, base: int = BULK_BASE
) -> Seeded:
    """Prepaid ByBandwidth instances ``start..stop-1`` whose period runs for another 30 days."""
    return bulk_insert(
        engine, instances, (instance_row(k, base, tenant_id, now) for k in range(start, stop))
    )


def postpaid_instances(engine: Engine, tenant_id: str, now: int, count: int) -> list[str]:
    """POSTPAID ByBandwidth instances: every bandwidth change is free and immediate (Processing
    until the worker's next tick), so a benchmark can change them back and forth."""
    rows = (
        instance_row(
            k,
            POSTPAID_BASE,
            tenant_id,
            now,
            instance_charge_type="POSTPAID",
            period=None,
            auto_renew=False,
            period_start=None,
            expired_time=None,
            metered_until=now,
        )
        for k in range(count)
    )
    bulk_insert(engine, instances, rows)
    return [str(POSTPAID_BASE + k) for k in range(count)]


def due_downgrades(engine: Engine, tenant_id: str, now: int, count: int) -> Seeded:
    """Prepaid ByBandwidth instances whose month ended a minute ago, each with a bandwidth
    downgrade 200 -> 100 Mbps waiting for that moment (as ModifyInstanceBandwidth leaves it).
    The period is one calendar month from creation, so one renewal brings each up to date."""
    start = now - 32 * 86400
    end = add_months(start, 1)

    def order_number(k: int) -> str:
        return str(ORDER_BASE + k)

    seeded_instances = bulk_insert(
        engine,
        instances,
        (
            instance_row(
                k,
                DOWNGRADE_BASE,
                tenant_id,
                start,
                bandwidth=200,
                period_start=start,
                expired_time=end,
                bw_status="WaitToEnable",
                bw_pending=100,
                bw_order=order_number(k),
            )
            for k in range(count)
        ),
    )
    seeded_orders = bulk_insert(
        engine,
        orders,
        (
            {
                "order_number": order_number(k),
                "tenant_id": tenant_id,
                "instance_id": str(DOWNGRADE_BASE + k),
                "kind": "BANDWIDTH",
                "from_value": 200,
                "to_value": 100,
                "amount": 0,
                "state": "WAIT_TO_ENABLE",
                "created_at": start + 86400,
                "effective_at": end,
                "applied_at": None,
                "attempts": 0,
                "last_error": None,
            }
            for k in range(count)
        ),
    )
    return Seeded(count, seeded_instances.seconds + seeded_orders.seconds)


def downgrade_progress(engine: Engine, count: int) -> dict[str, int]:
    """How the seeded downgrades stand: orders by state, instances already at 100 Mbps."""
    low, high = str(ORDER_BASE), str(ORDER_BASE + count)
    first, last = str(DOWNGRADE_BASE), str(DOWNGRADE_BASE + count)
    with engine.connect() as conn:
        states: dict[str, int] = {
            str(state): int(count)
            for state, count in conn.execute(
                select(orders.c.state, func.count())
                .where(orders.c.order_number >= low, orders.c.order_number < high)
                .group_by(orders.c.state)
            )
        }
        applied = conn.execute(
            select(func.count())
            .select_from(instances)
            .where(
                instances.c.instance_id >= first,
                instances.c.instance_id < last,
                instances.c.bandwidth == 100,
                instances.c.bw_status == "Enable",
            )
        ).scalar_one()
    return {
        **{f"orders_{k.lower()}": int(v) for k, v in states.items()},
        "instances_at_100": applied,
    }
