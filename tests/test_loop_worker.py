"""The worker's ticks on the API process's event loop (``zbmc.worker.LoopWorker``, opt-in with
``ZBMC_WORKER_ON_LOOP=1``): when they run, what a tick that finds more work does, failures,
stopping, and which processes use it; and, end to end, a server that applies changes with it."""

from __future__ import annotations

import asyncio
import logging
import threading
from types import SimpleNamespace
from typing import Any, cast

import pytest

from tests.conftest import StackFactory
from tests.harness import V2026
from tests.test_bandwidth import call, wait_enabled
from zbmc.app import _background_worker
from zbmc.drivers import make_driver, make_host_driver
from zbmc.settings import load_settings
from zbmc.worker import LOOP_BATCHES, Batches, LoopWorker, TickReport, Worker, WorkerThread


class Ticks:
    """A stand-in worker: records the thread of each tick; answers ``more`` from a script."""

    def __init__(self, more: list[bool] | None = None, fail: int = 0) -> None:
        self.threads: list[int] = []
        self.more = list(more or [])
        self.fail = fail

    def tick(self) -> TickReport:
        self.threads.append(threading.get_ident())
        if self.fail:
            self.fail -= 1
            raise RuntimeError("the database went away")
        return TickReport(more=self.more.pop(0) if self.more else False)


def run(main: Any) -> None:
    asyncio.run(asyncio.wait_for(main, timeout=10))


async def ticking(ticks: Ticks, interval: float, first_waits: bool = False) -> None:
    """A loop worker over ``ticks`` until it has ticked three times (``run`` gives up after
    10 s); ``first_waits``: check that no tick runs before the first interval."""
    worker = LoopWorker(cast(Worker, ticks), interval)
    worker.start()
    if first_waits:
        await asyncio.sleep(0)
        assert ticks.threads == []
    while len(ticks.threads) < 3:
        await asyncio.sleep(0.01)
    worker.stop()


def test_ticks_run_on_the_event_loop_at_the_interval() -> None:
    ticks = Ticks()

    async def main() -> None:
        await ticking(ticks, 0.02, first_waits=True)

    run(main())
    assert set(ticks.threads) == {threading.get_ident()}  # the loop's own thread


def test_a_tick_that_finds_more_goes_on_in_the_next_turns_not_after_the_interval() -> None:
    ticks = Ticks(more=[True, True, False])

    async def main() -> None:
        worker = LoopWorker(cast(Worker, ticks), 60)
        worker.start()
        assert worker._next is not None
        worker._next.cancel()
        worker._tick(asyncio.get_running_loop())  # the first tick, now
        for _ in range(5):
            await asyncio.sleep(0)
        worker.stop()

    run(main())
    assert len(ticks.threads) == 3  # two ``more`` ticks, then the interval (60 s)


def test_a_failed_tick_is_logged_and_the_next_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    ticks = Ticks(fail=2)

    async def main() -> None:
        await ticking(ticks, 0.01)

    with caplog.at_level(logging.ERROR, logger="zbmc.worker"):
        run(main())
    # two failed, and the third ran as usual
    assert [r.message for r in caplog.records].count("worker tick failed; retrying") == 2


def test_after_stop_no_tick_runs() -> None:
    ticks = Ticks()

    async def main() -> None:
        worker = LoopWorker(cast(Worker, ticks), 0.01)
        worker.start()
        await asyncio.sleep(0.05)
        worker.stop()
        done = len(ticks.threads)
        await asyncio.sleep(0.05)
        assert len(ticks.threads) == done

    run(main())


def _worker(driver: str = "noop", host_driver: str = "noop") -> Worker:
    network = make_driver(driver, "/bin/true")
    host = make_host_driver(host_driver, "/bin/true")
    return cast(Worker, SimpleNamespace(driver=network, host_driver=host))


@pytest.mark.parametrize(
    ("driver", "host_driver", "suits"),
    [
        ("noop", "noop", True),
        ("agent", "noop", True),
        ("command", "noop", False),  # runs a program for every change
        ("noop", "command", False),  # runs a program for every host operation
    ],
)
def test_only_drivers_that_return_at_once_run_on_the_loop(
    driver: str, host_driver: str, suits: bool
) -> None:
    assert LoopWorker.suits(_worker(driver, host_driver)) is suits


@pytest.mark.parametrize(
    ("sqlite", "on_loop", "driver", "expected"),
    [
        (True, True, "noop", LoopWorker),
        (False, True, "noop", WorkerThread),  # PostgreSQL: row locks, the thread overlaps
        (True, False, "noop", WorkerThread),  # the default
        (True, True, "command", WorkerThread),
    ],
)
def test_which_background_worker_an_api_process_gets(
    sqlite: bool, on_loop: bool, driver: str, expected: type
) -> None:
    settings = SimpleNamespace(worker_on_loop=on_loop, worker_interval_seconds=1.0)
    runtime = SimpleNamespace(settings=settings, worker=_worker(driver))
    assert type(_background_worker(cast(Any, runtime), sqlite)) is expected


def test_the_setting_comes_from_the_environment() -> None:
    assert load_settings({}).worker_on_loop is False  # opt-in (docs/operations.md)
    assert load_settings({"ZBMC_WORKER_ON_LOOP": "1"}).worker_on_loop is True
    with pytest.raises(ValueError, match="ZBMC_WORKER_ON_LOOP must be a boolean"):
        load_settings({"ZBMC_WORKER_ON_LOOP": "sometimes"})


def test_a_server_with_the_worker_on_its_loop_applies_changes(make_stack: StackFactory) -> None:
    """``zbmc serve`` with ``ZBMC_WORKER_ON_LOOP=1`` (on PostgreSQL it keeps the thread): a
    postpaid change goes Processing -> Enable, and the next change is accepted."""
    stack = make_stack(ZBMC_WORKER_ON_LOOP="1")
    tenant = stack.tenant()
    instance_id = tenant.instance(instance_charge_type="POSTPAID")
    for mbps in (200, 150):
        call(
            tenant, V2026, "ModifyInstanceBandwidth", instanceId=instance_id, bandwidthOutMbps=mbps
        )
        status = wait_enabled(tenant, V2026, instance_id)
        assert status.internetMaxBandwidthOut == mbps


def test_a_loop_worker_takes_the_loops_small_batches() -> None:
    worker = cast(Worker, Ticks())
    LoopWorker(worker, 0.05)
    assert worker.batches == LOOP_BATCHES
    assert LOOP_BATCHES.orders < Batches().orders
    assert LOOP_BATCHES.hosts < Batches().hosts


def test_a_tick_applies_at_most_its_batch_and_says_more(make_stack: StackFactory) -> None:
    """A worker whose batch is 2 orders, with 5 changes due: ticks of 2, 2 and 1; only the
    ticks that reached the batch say ``more``, and every change is applied exactly once."""
    from zbmc.app import build_runtime
    from zbmc.settings import Settings

    stack = make_stack(ZBMC_RUN_WORKER="0")  # the changes stay Processing until we tick
    tenant = stack.tenant()
    ids = [tenant.instance(instance_charge_type="POSTPAID") for _ in range(5)]
    for instance_id in ids:
        call(tenant, V2026, "ModifyInstanceBandwidth", instanceId=instance_id, bandwidthOutMbps=200)
    runtime = build_runtime(Settings(database_url=stack.database_url))
    try:
        runtime.worker.batches = Batches(orders=2)
        reports = [runtime.worker.tick() for _ in range(4)]
    finally:
        runtime.engine.dispose()
    assert [(r.applied, r.more) for r in reports] == [(2, True), (2, True), (1, False), (0, False)]
    for instance_id in ids:
        assert wait_enabled(tenant, V2026, instance_id).internetMaxBandwidthOut == 200
