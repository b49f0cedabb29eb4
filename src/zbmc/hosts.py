"""Host operations: the worker's phase that carries out what the instance actions asked for
(create, start, stop, reboot, reinstall) through the host driver, and moves each instance on to
its final status (zbmc.domain.lifecycle.HOST_OP_RESULTS).

An operation is a few columns of its instance (``host_op``, due at ``host_op_due``). The tick
claims due ones with ``FOR UPDATE SKIP LOCKED`` (on SQLite the tick's write lock serialises
workers). An injected fault (zbmc.faults) ends a CREATE or INSTALL in its failed status. With a
driver that does nothing outside (noop), the operation completes in the tick's transaction.
With one that runs a program, the tick takes a lease on the operation instead (``host_op_due``
moves past the program's timeout, ``host_op_attempts`` counts the try) and the program runs
after the commit, outside any transaction; its outcome is written in a transaction of its own,
only if the operation is still the one leased (not abandoned by TerminateInstance, not taken
over by another worker after the lease ran out). A failure is retried after 2, 4, 8 ... seconds
(at most one hour), with the error kept in ``host_op_error``.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from sqlalchemy import Engine, bindparam, delete, or_, select, update
from sqlalchemy.engine import Connection

from zbmc.clock import Clock
from zbmc.db.direct import Statement, Tx
from zbmc.db.engine import unit_of_work
from zbmc.db.tables import faults, instances
from zbmc.domain import lifecycle
from zbmc.drivers import DriverError, HostDriver, HostJob
from zbmc.snapshots import hold_off_restores
from zbmc.store import instances as store

log = logging.getLogger("zbmc.worker")

MAX_BACKOFF_SECONDS = 3600
LEASE_MARGIN_SECONDS = 60
PREPAID, POSTPAID = "PREPAID", "POSTPAID"

_DRIVER_OPERATIONS = {
    lifecycle.OP_CREATE: "create",
    lifecycle.OP_START: "start",
    lifecycle.OP_STOP: "stop",
    lifecycle.OP_REBOOT: "reboot",
    lifecycle.OP_INSTALL: "reinstall",
}
_COLUMNS = (
    "instance_id",
    "tenant_id",
    "zone_id",
    "instance_type_id",
    "status",
    "host_op",
    "host_op_attempts",
    "instance_charge_type",
    "traffic_package_gb",
    "metered_until",
    "traffic_cycle_start",
    "image_id",
    "hostname",
    "ipxe_url",
    "key_id",
)
_ANY_DUE = Statement(
    select(instances.c.instance_id)
    .where(instances.c.host_op_due <= bindparam("ready"), instances.c.host_op.is_not(None))
    .limit(1)
)
# Precompiled (zbmc.db.direct): a busy worker runs it every tick.
_DUE = Statement(
    select(*(instances.c[name] for name in _COLUMNS))
    .where(instances.c.host_op_due <= bindparam("ready"), instances.c.host_op.is_not(None))
    .order_by(instances.c.host_op_due)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)


class Leased(NamedTuple):
    """An operation whose program runs after the tick commits."""

    row: Any
    attempts: int  # host_op_attempts as leased: the outcome is written only if it is unchanged


def has_due(conn: Connection, now: int, driver: HostDriver) -> bool:
    return Tx.of(conn).first(_ANY_DUE, {"ready": _ready(now, driver)}) is not None


def _ready(now: int, driver: HostDriver) -> int:
    # an operation requested at t completes at t + delay (the noop driver's simulated duration)
    return now - int(driver.delay_seconds)


def claim_due(
    conn: Connection, now: int, driver: HostDriver, limit: int
) -> tuple[int, int, list[Leased], bool]:
    """Carry out (or lease) at most ``limit`` due operations. Returns (completed, failed by a
    fault, leased, more due)."""
    rows = Tx.of(conn).rows(_DUE, {"ready": _ready(now, driver), "limit": limit})
    completed = failed = 0
    leased: list[Leased] = []
    for row in rows:
        failure = lifecycle.HOST_OP_RESULTS[row.host_op][1]
        if failure is not None and _take_fault(conn, row):
            _finish(conn, row, failure, now)
            failed += 1
        elif driver.external:
            attempts = row.host_op_attempts + 1
            lease = int(driver.timeout_seconds) + LEASE_MARGIN_SECONDS
            _set(conn, row.instance_id, host_op_due=now + lease, host_op_attempts=attempts)
            leased.append(Leased(row, attempts))
        else:
            driver.run(_job(row))
            _finish(conn, row, lifecycle.HOST_OP_RESULTS[row.host_op][0], now)
            completed += 1
    return completed, failed, leased, len(rows) == limit


def run_leased(engine: Engine, clock: Clock, driver: HostDriver, leased: list[Leased]) -> int:
    """Run the programs of leased operations, each outcome in its own transaction. Returns how
    many failed (and were scheduled for a retry)."""
    retried = 0
    for item in leased:
        error: str | None = None
        try:
            driver.run(_job(item.row))
        except DriverError as exc:
            error = str(exc)[:2000]
            log.warning("host driver failed for %s: %s", item.row.instance_id, exc)
        with unit_of_work(engine) as conn:
            hold_off_restores(conn)
            now = clock.now(conn)
            still_ours = conn.execute(
                select(instances.c.instance_id)
                .where(
                    instances.c.instance_id == item.row.instance_id,
                    instances.c.host_op == item.row.host_op,
                    instances.c.host_op_attempts == item.attempts,
                )
                .with_for_update()
            ).first()
            if still_ours is None:
                continue
            if error is None:
                _finish(conn, item.row, lifecycle.HOST_OP_RESULTS[item.row.host_op][0], now)
            else:
                backoff = min(2**item.attempts, MAX_BACKOFF_SECONDS)
                _set(conn, item.row.instance_id, host_op_due=now + backoff, host_op_error=error)
                retried += 1
    return retried


def _job(row: Any) -> HostJob:
    return HostJob(
        operation=_DRIVER_OPERATIONS[row.host_op],
        instance_id=row.instance_id,
        zone_id=row.zone_id,
        instance_type_id=row.instance_type_id,
        image_id=row.image_id,
        hostname=row.hostname,
        ipxe_url=row.ipxe_url,
        key_id=row.key_id,
    )


def _take_fault(conn: Connection, row: Any) -> bool:
    """Consume the oldest fault injected for this instance, or for its tenant."""
    found = conn.execute(
        select(faults.c.fault_id)
        .where(
            faults.c.operation == row.host_op,
            or_(
                faults.c.instance_id == row.instance_id,
                (faults.c.tenant_id == row.tenant_id) & faults.c.instance_id.is_(None),
            ),
        )
        .order_by(faults.c.fault_id)
        .limit(1)
        .with_for_update()
    ).first()
    if found is None:
        return False
    conn.execute(delete(faults).where(faults.c.fault_id == found.fault_id))
    return True


def _finish(conn: Connection, row: Any, status: str, now: int) -> None:
    values: dict[str, Any] = {"status": status, **store.NO_HOST_OP}
    if row.host_op == lifecycle.OP_CREATE and status == lifecycle.RUNNING:
        values |= _start_metering(row, now)
    _set(conn, row.instance_id, **values)


def _start_metering(row: Any, now: int) -> dict[str, Any]:
    """A new instance is billed by the hour from the moment it is RUNNING (POSTPAID usage;
    traffic above a package, for both charge types)."""
    package = row.traffic_package_gb is not None
    values: dict[str, Any] = {}
    if row.instance_charge_type == POSTPAID:
        values["billing_anchor"] = now  # package cycles count from here
    if row.metered_until is None and (row.instance_charge_type == POSTPAID or package):
        values["metered_until"] = now
    if package and row.traffic_cycle_start is None:
        values["traffic_cycle_start"] = now
    return values


def _set(conn: Connection, instance_id: str, **values: Any) -> None:
    conn.execute(update(instances).where(instances.c.instance_id == instance_id).values(**values))
