"""The worker: one tick applies everything that is due, in time order, in ONE transaction.

A tick (1) applies due orders (changes in Processing whose time has come, and downgrades waiting
for the end of their period) through the network driver, (2) renews or recycles prepaid
instances whose period has ended (repeatedly, when the clock jumped several periods), and (3)
meters whole hours (postpaid usage, traffic overage), (4) carries out due host operations
(create, start, stop, reboot, reinstall: zbmc.hosts) and (5) releases instances that have been in
the recycle bin for ``release_after`` seconds (24 h by default). Progress is stored with the
effects, so a tick can be repeated or interrupted at any point without applying anything twice.

A tick handles at most a batch of each kind and says whether more is due (``more``); the next tick
continues at once (``catch_up``), so no transaction holds the database for long however far the
clock jumped, and a later phase never runs before an earlier one is done.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers never apply
the same event twice; on SQLite the tick's ``BEGIN IMMEDIATE`` serialises workers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, bindparam, or_, select, update
from sqlalchemy.engine import Connection

from zbmc import hosts, replay
from zbmc.billing import changes, metering, renewals, terminations
from zbmc.billing import orders as order_states
from zbmc.billing.changes import CHANGES
from zbmc.clock import Clock
from zbmc.db.direct import Statement, Tx
from zbmc.db.engine import WriteTurns, unit_of_work
from zbmc.db.tables import orders
from zbmc.drivers import DriverError, HostDriver, NetworkDriver, NoopHostDriver
from zbmc.snapshots import hold_off_restores
from zbmc.store import attachments
from zbmc.store import instances as store

log = logging.getLogger("zbmc.worker")

MAX_BACKOFF_SECONDS = 3600
PRUNE_INTERVAL_SECONDS = 60.0
SLOW_TICK_SECONDS = 0.1  # LoopWorker: a tick longer than this is logged (requests waited for it)


@dataclass(frozen=True)
class Batches:
    """How much of each kind one tick handles at most; a tick that reaches one says ``more``."""

    orders: int = 2000  # due orders applied
    periods: int = 2000  # ended periods renewed or recycled, recycled instances released
    meter: int = 200  # instances metered (each may owe many hours)
    hosts: int = 500  # host operations carried out
    signatures: int = 2000  # seen signatures pruned (3 ms on SQLite; zbmc.replay)


# On the event loop (LoopWorker) every request waits while a tick runs: batches of a few
# milliseconds each (measured per item on SQLite: an order 15-70 us, a host operation 2.5-5 ms).
LOOP_BATCHES = Batches(orders=256, periods=32, meter=16, hosts=4)


@dataclass
class TickReport:
    now: int = 0
    applied: int = 0
    retried: int = 0
    renewed: int = 0
    recycled: int = 0
    charges: int = 0
    hosts_done: int = 0  # host operations completed
    hosts_failed: int = 0  # ... ended in CREATE_FAILED / INSTALL_FAILED by an injected fault
    hosts_retried: int = 0  # ... whose driver failed (retried later)
    released: int = 0  # recycled instances released
    pruned: int = 0  # seen signatures forgotten (zbmc.replay)
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
        self.hosts_done += other.hosts_done
        self.hosts_failed += other.hosts_failed
        self.hosts_retried += other.hosts_retried
        self.released += other.released
        self.pruned += other.pruned
        self.more = other.more


_DUE_STATES = (order_states.PROCESSING, order_states.WAIT_TO_ENABLE)


_IS_DUE = and_(
    or_(*(orders.c.state == state for state in _DUE_STATES)),
    orders.c.effective_at <= bindparam("now"),
)


def _due_statements(due: ColumnElement[bool]) -> tuple[Statement, Statement]:
    """(anything due?, the due orders) for a condition on orders."""
    rows = (
        select(
            orders.c.order_number,
            orders.c.instance_id,
            orders.c.kind,
            orders.c.to_value,
            orders.c.attempts,
        )
        .where(due)
        .order_by(orders.c.effective_at, orders.c.created_at, orders.c.order_number)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
    )
    return Statement(select(orders.c.order_number).where(due).limit(1)), Statement(rows)


_ANY_DUE, _DUE = _due_statements(_IS_DUE)
# ZBMC_DRIVER=agent: the network agents finish the bandwidth orders of attached instances.
_ANY_DUE_AGENTS, _DUE_AGENTS = _due_statements(and_(_IS_DUE, ~attachments.left_to_agents()))


class Worker:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        driver: NetworkDriver,
        turns: WriteTurns | None = None,
        host_driver: HostDriver | None = None,
        release_after: int = 86400,
        signature_window: int = 300,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.driver = driver
        self.host_driver: HostDriver = host_driver or NoopHostDriver()
        self.release_after = release_after
        self.turns = turns  # SQLite: takes turns with the API's writes (zbmc.db.engine)
        self._more = False  # the last tick said more was due
        agents = driver.name == "agent"
        self._any_due, self._due = (_ANY_DUE_AGENTS, _DUE_AGENTS) if agents else (_ANY_DUE, _DUE)
        self.signature_window = signature_window
        self.batches = Batches()
        self._next_prune = 0.0  # monotonic time of the next pruning of seen signatures

    def tick(self) -> TickReport:
        pruned = self.prune_signatures() if time.monotonic() >= self._next_prune else 0
        report = self._tick()
        report.pruned = pruned
        # a full slice: the next one is due at once
        report.more = report.more or pruned == self.batches.signatures
        return report

    def _tick(self) -> TickReport:
        more, self._more = self._more, False
        # Look first without taking the write lock (SQLite's is database-wide): an idle tick
        # must not make API requests wait. Right after a tick that said ``more`` there is no
        # need to look; when the look scans, skipping it saves 2 s of a 100 000 instance
        # catch-up on PostgreSQL (bench/worker_catchup.py).
        if not more:
            with unit_of_work(self.engine, write=False) as conn:
                now = self.clock.now(conn)
                if not self._anything_due(conn, now):
                    return TickReport(now=now)
        announced = self.turns.first() if self.turns is not None else nullcontext()
        leased: list[hosts.Leased] = []
        with announced, unit_of_work(self.engine) as conn:
            hold_off_restores(conn)  # zbmc.snapshots: no restore under a tick
            report = TickReport(now=self.clock.now(conn))
            report.more = (
                self._apply_due_orders(conn, report)
                or self._end_periods(conn, report)
                or self._meter(conn, report)
                or self._host_operations(conn, report, leased)
                or self._release_recycled(conn, report)
            )
        # committed: the leased operations' programs run outside any transaction
        if leased:
            retried = hosts.run_leased(self.engine, self.clock, self.host_driver, leased)
            report.hosts_retried += retried
            report.hosts_done += len(leased) - retried
        self._more = report.more
        return report

    def prune_signatures(self) -> int:
        """Forget the replay guard's signatures that left the window (zbmc.replay): once a
        minute, a slice of at most ``batches.signatures`` in a transaction of its own (the
        oldest rows, at the start of the table's key); after a full slice, the next one at the
        next tick."""
        announced = self.turns.first() if self.turns is not None else nullcontext()
        with announced, unit_of_work(self.engine) as conn:
            pruned = replay.prune(
                conn, self.clock.wall(), self.signature_window, self.batches.signatures
            )
        full = pruned == self.batches.signatures
        self._next_prune = 0.0 if full else time.monotonic() + PRUNE_INTERVAL_SECONDS
        return pruned

    def _anything_due(self, conn: Connection, now: int) -> bool:
        return (
            Tx.of(conn).first(self._any_due, {"now": now}) is not None
            or store.has_ended_periods(conn, now)
            or store.has_hours_to_meter(conn, now)
            or hosts.has_due(conn, now, self.host_driver)
            or store.has_recycled_before(conn, now - self.release_after)
        )

    def catch_up(self) -> TickReport:
        """Ticks until nothing more is due (each tick its own transaction)."""
        total = self.tick()
        while total.more:
            total.add(self.tick())
        return total

    # (1) -------------------------------------------------------------------------------------

    def _apply_due_orders(self, conn: Connection, report: TickReport) -> bool:
        tx = Tx.of(conn)
        due = tx.rows(self._due, {"now": report.now, "limit": self.batches.orders})
        applied: dict[str, list[dict[str, Any]]] = {kind: [] for kind in CHANGES}
        for order in due:
            if self._drive(conn, order, report):
                applied[order.kind].append(
                    changes.application(
                        order.instance_id, order.order_number, order.to_value, report.now
                    )
                )
        for kind, rows in applied.items():
            if rows:  # one statement per kind for the instances, one for the orders
                changes.apply(tx, kind, rows)
                report.applied += len(rows)
        return len(due) == self.batches.orders

    def _drive(self, conn: Connection, order: Any, report: TickReport) -> bool:
        """Ask the network driver to enforce the order; on failure schedule a retry."""
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
            return False
        return True

    # (2) -------------------------------------------------------------------------------------

    def _end_periods(self, conn: Connection, report: TickReport) -> bool:
        ended = store.ended_periods(conn, report.now, self.batches.periods)
        renewed, recycled = renewals.end_periods(conn, ended, report.now)
        report.renewed += renewed
        report.recycled += recycled
        # A renewed period may have ended too (the clock jumped): look again next tick.
        return bool(ended)

    # (3) -------------------------------------------------------------------------------------

    def _meter(self, conn: Connection, report: TickReport) -> bool:
        due = store.due_for_metering(conn, report.now, self.batches.meter)
        for row in due:
            report.charges += metering.meter(conn, row, report.now)
        return len(due) == self.batches.meter

    # (4) -------------------------------------------------------------------------------------

    def _host_operations(
        self, conn: Connection, report: TickReport, leased: list[hosts.Leased]
    ) -> bool:
        done, failed, claimed, more = hosts.claim_due(
            conn, report.now, self.host_driver, self.batches.hosts
        )
        report.hosts_done += done
        report.hosts_failed += failed
        leased.extend(claimed)
        return more

    # (5) -------------------------------------------------------------------------------------

    def _release_recycled(self, conn: Connection, report: TickReport) -> bool:
        due = store.recycled_before(conn, report.now - self.release_after, self.batches.periods)
        for row in due:
            terminations.release(conn, row, report.now)
        report.released += len(due)
        return len(due) == self.batches.periods


class LoopWorker:
    """Runs ticks on the calling event loop, between the API's batches, until stopped
    (``ZBMC_WORKER_ON_LOOP=1``, SQLite only; opt-in: a long tick holds every request).

    On SQLite every write transaction already takes its turn (``WriteTurns``), so a tick in a
    thread of its own overlaps nothing but the API's Python; and while both threads run, each
    SQLite call of either releases the GIL and hands it to the other: about 15 000 thread
    switches a second under the benchmark's Modify load, 20 % of the process's CPU
    (docs/performance.md). On the loop, a tick runs whole, as one batch does; one that stops at
    its batch size (``TickReport.more``) lets the waiting requests' batches run before it goes
    on, and the worker it is given takes the loop's small batches (``LOOP_BATCHES``), so that
    no tick keeps the requests waiting long. Only for drivers that do their work in process: a
    driver that runs a program would stall every request for as long as it runs (``suits``)."""

    def __init__(self, worker: Worker, interval: float) -> None:
        self.worker = worker
        worker.batches = LOOP_BATCHES
        self.interval = interval
        self._next: asyncio.TimerHandle | asyncio.Handle | None = None

    @staticmethod
    def suits(worker: Worker) -> bool:
        """Whether the worker's drivers return at once (nothing outside the process is waited
        for): the noop and agent network drivers, a host driver that is not external."""
        return worker.driver.name in ("noop", "agent") and not worker.host_driver.external

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._next = loop.call_later(self.interval, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        more = False
        started = time.perf_counter()
        try:
            report = self.worker.tick()
            more = report.more
        except Exception:
            log.exception("worker tick failed; retrying")
        else:
            held = time.perf_counter() - started
            if held > SLOW_TICK_SECONDS:
                log.warning("a worker tick held the event loop %.0f ms: %s", held * 1000, report)
        if self._next is None:  # stopped by something the tick ran
            return
        self._next = (
            loop.call_soon(self._tick, loop)
            if more
            else loop.call_later(self.interval, self._tick, loop)
        )

    def stop(self) -> None:
        if self._next is not None:
            self._next.cancel()
            self._next = None


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
