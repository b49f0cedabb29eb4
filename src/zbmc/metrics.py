"""Prometheus metrics: request counters and latency, worker ticks, and database-derived gauges.

Counters and histograms are recorded where things happen. With several API processes
(``zbmc serve --workers N``) they use prometheus-client's multiprocess mode: every process writes
its values to files in ``PROMETHEUS_MULTIPROC_DIR`` and a scrape of any process sums them.
Gauges that describe the database (ledger totals, balances, worker lag) are computed on scrape
by the process that answers, so they are the same whichever process that is.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import os
import time
from collections.abc import Collection, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from zbmc.billing import orders as order_states
from zbmc.clock import Clock
from zbmc.db.engine import unit_of_work
from zbmc.db.tables import ledger, orders, tenants
from zbmc.pipeline import Call, Outcome
from zbmc.worker import TickReport, Worker

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter("zbmc_requests", "API requests by action and result code.", ["action", "code"])
LATENCY = Histogram(
    "zbmc_request_duration_seconds",
    "Time from the request body being read to the response being sent, by action.",
    ["action"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
WORKER_TICKS = Counter("zbmc_worker_ticks", "Worker ticks completed.")
WORKER_FAILURES = Counter("zbmc_worker_tick_failures", "Worker ticks that raised an error.")
WORKER_TICK_SECONDS = Histogram(
    "zbmc_worker_tick_duration_seconds",
    "Time a worker tick took, idle ticks included (on the event loop, requests wait as long).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
WORKER_EVENTS = Counter(
    "zbmc_worker_events",
    "Events handled by worker ticks, by kind (applied, retried, renewed, ...).",
    ["kind"],
)


def observe_request(call: Call, outcome: Outcome, seconds: float, known: Collection[str]) -> None:
    # Action names come from clients; only registered ones become label values.
    action = call.action if call.action in known else "unknown"
    count, total, buckets, bounds = _request_values(action, outcome.code)
    count.inc(1)
    total.inc(seconds)
    buckets[bisect.bisect_left(bounds, seconds)].inc(1)  # Histogram.observe's bucket


@functools.cache
def _request_values(action: str, code: str) -> tuple[Any, Any, list[Any], tuple[float, ...]]:
    """The value objects one request adds to: what ``Counter.inc`` and ``Histogram.observe``
    change, without their checks and their loop over the buckets in Python on every request."""
    counter, histogram = _requests(action, code), _latency(action)
    return counter._value, histogram._sum, histogram._buckets, tuple(histogram._upper_bounds)


# The labelled children, looked up once (``labels()`` takes a lock and builds a key each call).
@functools.cache
def _requests(action: str, code: str) -> Counter:
    return REQUESTS.labels(action, code)


@functools.cache
def _latency(action: str) -> Histogram:
    return LATENCY.labels(action)


def record_tick(report: TickReport) -> None:
    WORKER_TICKS.inc()
    for item in dataclasses.fields(report):
        value = getattr(report, item.name)
        # counts only: not the tick's time, nor its ``more`` flag (a bool is an int)
        if item.name != "now" and type(value) is int and value > 0:
            WORKER_EVENTS.labels(item.name).inc(value)


class MeteredWorker(Worker):
    """The worker, counting its ticks; kept outside worker.py so that module stays about work."""

    def tick(self) -> TickReport:
        started = time.perf_counter()
        try:
            report = super().tick()
        except Exception:
            WORKER_FAILURES.inc()
            raise
        finally:
            WORKER_TICK_SECONDS.observe(time.perf_counter() - started)
        record_tick(report)
        return report


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("zbmc_database_up", "1 when the scrape could read the database.")
        try:
            families = list(self._read())
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> Iterator[Metric]:
        due_states = (order_states.PROCESSING, order_states.WAIT_TO_ENABLE)
        with unit_of_work(self.engine, write=False) as conn:
            now = self.clock.now(conn)
            by_kind = conn.execute(
                select(ledger.c.kind, func.count(), func.coalesce(func.sum(ledger.c.amount), 0))
                .group_by(ledger.c.kind)
                .order_by(ledger.c.kind)
            ).all()
            tenant_count, balance_sum = conn.execute(
                select(func.count(), func.coalesce(func.sum(tenants.c.balance), 0))
            ).one()
            due_count, oldest_due = conn.execute(
                select(func.count(), func.min(orders.c.effective_at)).where(
                    orders.c.state.in_(due_states), orders.c.effective_at <= now
                )
            ).one()
        entries = GaugeMetricFamily(
            "zbmc_ledger_entries", "Ledger entries by kind.", labels=["kind"]
        )
        amounts = GaugeMetricFamily(
            "zbmc_ledger_amount_cents",
            "Sum of ledger amounts by kind, in cents (credits positive, charges negative).",
            labels=["kind"],
        )
        for kind, count, total in by_kind:
            entries.add_metric([str(kind)], int(count))
            amounts.add_metric([str(kind)], int(total))
        yield entries
        yield amounts
        yield GaugeMetricFamily("zbmc_tenants", "Tenants.", value=int(tenant_count))
        yield GaugeMetricFamily(
            "zbmc_balance_cents", "Sum of all tenant balances, in cents.", value=int(balance_sum)
        )
        yield GaugeMetricFamily(
            "zbmc_worker_due_orders",
            "Orders whose time has come but are not applied yet.",
            value=int(due_count),
        )
        lag = 0 if oldest_due is None else max(0, now - int(oldest_due))
        yield GaugeMetricFamily(
            "zbmc_worker_lag_seconds",
            "Age of the oldest order that is due but not applied (0 when none is).",
            value=lag,
        )


class _Recorded(Collector):
    """What this process (or, in multiprocess mode, every process) has recorded."""

    def collect(self) -> Iterator[Metric]:
        if os.environ.get(MULTIPROC_ENV):
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            yield from merged.collect()
        else:
            yield from REGISTRY.collect()


def scrape_registry(engine: Engine, clock: Clock) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Recorded())
    registry.register(DatabaseCollector(engine, clock))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def reset_multiprocess_dir(path: str) -> None:
    """Values left by processes of an earlier run would otherwise be summed in."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))
