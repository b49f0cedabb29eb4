"""The worker: one tick applies everything that is due, in time order, in ONE transaction.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers never apply
the same event twice; on SQLite the tick's ``BEGIN IMMEDIATE`` serialises workers.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Connection

from zbmc.billing import orders as order_states
from zbmc.clock import Clock
from zbmc.db.engine import unit_of_work
from zbmc.db.tables import instances, orders
from zbmc.domain.changes import ENABLE
from zbmc.drivers import DriverError, NetworkDriver

log = logging.getLogger("zbmc.worker")

BATCH = 5000
MAX_BACKOFF_SECONDS = 3600


@dataclass
class TickReport:
    now: int = 0
    applied: int = 0
    retried: int = 0
    details: list[str] = field(default_factory=list)


_COLUMNS = {
    order_states.BANDWIDTH: ("bandwidth", "bw_status", "bw_pending", "bw_order"),
    order_states.TRAFFIC_PACKAGE: ("traffic_package_gb", "tp_status", "tp_pending_gb", "tp_order"),
}


class Worker:
    def __init__(self, engine: Engine, clock: Clock, driver: NetworkDriver) -> None:
        self.engine = engine
        self.clock = clock
        self.driver = driver

    def tick(self) -> TickReport:
        with unit_of_work(self.engine) as conn:
            report = TickReport(now=self.clock.now(conn))
            self._finish_processing(conn, report)
            return report

    def _finish_processing(self, conn: Connection, report: TickReport) -> None:
        due = conn.execute(
            select(orders)
            .where(orders.c.state == order_states.PROCESSING, orders.c.effective_at <= report.now)
            .order_by(orders.c.effective_at, orders.c.created_at, orders.c.order_number)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        for order in due:
            value_col, status_col, pending_col, order_col = _COLUMNS[order.kind]
            try:
                if order.kind == order_states.BANDWIDTH:
                    self.driver.apply_bandwidth(order.instance_id, int(order.to_value))
                else:
                    self.driver.apply_traffic_package(order.instance_id, order.to_value)
            except DriverError as exc:
                attempts = order.attempts + 1
                delay = min(2**attempts, MAX_BACKOFF_SECONDS)
                conn.execute(
                    update(orders)
                    .where(orders.c.order_number == order.order_number)
                    .values(
                        attempts=attempts,
                        effective_at=report.now + delay,
                        last_error=str(exc)[:2000],
                    )
                )
                report.retried += 1
                log.warning("driver failed for order %s: %s", order.order_number, exc)
                continue
            conn.execute(
                update(instances)
                .where(
                    instances.c.instance_id == order.instance_id,
                    instances.c[order_col] == order.order_number,
                )
                .values(
                    {
                        value_col: order.to_value,
                        status_col: ENABLE,
                        pending_col: None,
                        order_col: None,
                    }
                )
            )
            order_states.finish(conn, order.order_number, order_states.ENABLED, report.now)
            report.applied += 1


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
                self.worker.tick()
            except Exception:
                log.exception("worker tick failed; retrying")
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
