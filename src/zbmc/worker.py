"""The worker: one tick applies everything that is due, in time order, in ONE transaction.

A tick (1) applies due orders (changes in Processing whose time has come, and downgrades waiting
for the end of their period) through the network driver, (2) renews or recycles prepaid
instances whose period has ended (repeatedly, when the clock jumped several periods), and (3)
meters whole hours (postpaid usage, traffic overage). Progress is stored with the effects, so a
tick can be repeated or interrupted at any point without applying anything twice.

A tick handles at most a batch of each kind and says whether more is due (``more``); the next tick
continues at once (``catch_up``), so no transaction holds the database for long however far the
clock jumped, and a later phase never runs before an earlier one is done.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers never apply
the same event twice; on SQLite the tick's ``BEGIN IMMEDIATE`` serialises workers.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Row, select, update
from sqlalchemy.engine import Connection

from zbmc.billing import metering, renewals
from zbmc.billing import orders as order_states
from zbmc.clock import Clock
from zbmc.db.engine import unit_of_work
from zbmc.db.tables import instances, orders
from zbmc.domain.changes import ENABLE, PREPAID
from zbmc.domain.lifecycle import RECYCLE
from zbmc.drivers import DriverError, NetworkDriver
from zbmc.store import instances as store

log = logging.getLogger("zbmc.worker")

BATCH = 2000  # due orders or ended periods per tick
METER_BATCH = 200  # instances metered per tick (each may owe many hours)
MAX_BACKOFF_SECONDS = 3600


@dataclass
class TickReport:
    now: int = 0
    applied: int = 0
    retried: int = 0
    renewed: int = 0
    recycled: int = 0
    charges: int = 0
    more: bool = False  # the tick stopped at its batch size: more is due now

    def as_dict(self) -> dict[str, int | bool]:
        return dict(vars(self))

    def add(self, other: TickReport) -> None:
        self.now = other.now
        self.applied += other.applied
        self.retried += other.retried
        self.renewed += other.renewed
        self.recycled += other.recycled
        self.charges += other.charges
        self.more = other.more


_COLUMNS = {
    order_states.BANDWIDTH: ("bandwidth", "bw_status", "bw_pending", "bw_order"),
    order_states.TRAFFIC_PACKAGE: ("traffic_package_gb", "tp_status", "tp_pending_gb", "tp_order"),
}
_DUE_STATES = (order_states.PROCESSING, order_states.WAIT_TO_ENABLE)


class Worker:
    def __init__(self, engine: Engine, clock: Clock, driver: NetworkDriver) -> None:
        self.engine = engine
        self.clock = clock
        self.driver = driver

    def tick(self) -> TickReport:
        with unit_of_work(self.engine) as conn:
            report = TickReport(now=self.clock.now(conn))
            report.more = (
                self._apply_due_orders(conn, report)
                or self._end_periods(conn, report)
                or self._meter(conn, report)
            )
            return report

    def catch_up(self) -> TickReport:
        """Ticks until nothing more is due (each tick its own transaction)."""
        total = self.tick()
        while total.more:
            total.add(self.tick())
        return total

    # (1) -------------------------------------------------------------------------------------

    def _apply_due_orders(self, conn: Connection, report: TickReport) -> bool:
        due = conn.execute(
            select(orders)
            .where(orders.c.state.in_(_DUE_STATES), orders.c.effective_at <= report.now)
            .order_by(orders.c.effective_at, orders.c.created_at, orders.c.order_number)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        for order in due:
            self._apply_order(conn, order, report)
        return len(due) == BATCH

    def _apply_order(self, conn: Connection, order: Row[Any], report: TickReport) -> None:
        value_col, status_col, pending_col, order_col = _COLUMNS[order.kind]
        try:
            if order.kind == order_states.BANDWIDTH:
                self.driver.apply_bandwidth(order.instance_id, int(order.to_value))
            else:
                self.driver.apply_traffic_package(order.instance_id, order.to_value)
        except DriverError as exc:
            attempts = order.attempts + 1
            conn.execute(
                update(orders)
                .where(orders.c.order_number == order.order_number)
                .values(
                    attempts=attempts,
                    effective_at=report.now + min(2**attempts, MAX_BACKOFF_SECONDS),
                    last_error=str(exc)[:2000],
                )
            )
            report.retried += 1
            log.warning("driver failed for order %s: %s", order.order_number, exc)
            return
        conn.execute(
            update(instances)
            .where(
                instances.c.instance_id == order.instance_id,
                instances.c[order_col] == order.order_number,
            )
            .values(
                {value_col: order.to_value, status_col: ENABLE, pending_col: None, order_col: None}
            )
        )
        order_states.finish(conn, order.order_number, order_states.ENABLED, report.now)
        report.applied += 1

    # (2) -------------------------------------------------------------------------------------

    def _end_periods(self, conn: Connection, report: TickReport) -> bool:
        ended = conn.execute(
            select(instances.c.instance_id, instances.c.tenant_id)
            .where(
                instances.c.instance_charge_type == PREPAID,
                instances.c.status != RECYCLE,
                instances.c.expired_time <= report.now,
            )
            .order_by(instances.c.expired_time, instances.c.instance_id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        for instance_id, tenant_id in ended:
            row = store.load(conn, tenant_id, instance_id, lock=False)
            if renewals.renew_at_expiry(conn, row, report.now) == renewals.RENEWED:
                report.renewed += 1
            else:
                report.recycled += 1
        # A renewed period may have ended too (the clock jumped): look again next tick.
        return bool(ended)

    # (3) -------------------------------------------------------------------------------------

    def _meter(self, conn: Connection, report: TickReport) -> bool:
        due = conn.execute(
            select(instances.c.instance_id, instances.c.tenant_id)
            .where(
                instances.c.metered_until <= report.now - metering.HOUR,
                instances.c.status != RECYCLE,
            )
            .order_by(instances.c.instance_id)
            .limit(METER_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        for instance_id, tenant_id in due:
            row = store.load(conn, tenant_id, instance_id, lock=False)
            report.charges += metering.meter(conn, row, report.now)
        return len(due) == METER_BATCH


class WorkerThread(threading.Thread):
    """Runs ticks in the background of ``zbmc serve`` until stopped."""

    def __init__(self, worker: Worker, interval: float) -> None:
        super().__init__(name="zbmc-worker", daemon=True)
        self.worker = worker
        self.interval = interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                while self.worker.tick().more and not self._stop_event.is_set():
                    pass
            except Exception:
                log.exception("worker tick failed; retrying")
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
