"""Issue 4 "Faults": processes killed with SIGKILL in the middle of their work leave nothing
half-applied, and the next process picks up exactly where the last commit left off.

1. The API server is killed while ~16 SDK clients fire paid modifications; after a restart on the
   same database every orderNumber a client received exists with its ledger charge, the money
   adds up, no instance is half-changed and the worker finishes what was in Processing.
2. ``zbmc worker --once`` is killed in the middle of a long tick (hundreds of renewals and due
   downgrades, a month of postpaid hours); nothing of the tick is visible, and a fresh run then
   applies everything exactly once.

Each test prints one ``FAULT-FIGURES`` JSON line (run with ``-s``) for docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import make_url
from zenlayercloud.bmc.v20260201 import models
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
    ZenlayerCloudSdkException,
)

from tests.conftest import StackFactory
from tests.harness import Stack, Tenant, wait_until
from tests.invariants import (
    BANDWIDTH,
    OPEN_STATES,
    PROCESSING,
    TRAFFIC_PACKAGE,
    WAIT_TO_ENABLE,
    Snapshot,
    check_admin_money,
    check_internet_status,
    check_snapshot,
    snapshot,
)
from zbmc.clock import Clock
from zbmc.db.engine import unit_of_work
from zbmc.provisioning import InstanceSpec, provision

ENABLED = "ENABLED"
CLIENT_THREADS = 16
KILL_AFTER_CALLS = 300  # completed calls before the server is killed
NETWORK_ERROR = "NETWORK_ERROR"  # what the SDK raises when the connection fails
EXPECTED_REFUSALS = {
    "OPERATION_FAILED_INSTANCE_BANDWIDTH_PROCESSING",  # previous change not applied yet
    "OPERATION_DENIED_INSTANCE_TRAFFIC_PACKAGE_PROCESSING",
    "OPERATION_DENIED_BALANCE_INSUFFICIENT",  # the balance covers only part of the load
}


def provision_many(stack: Stack, tenant_id: str, count: int, **fields: Any) -> list[str]:
    """What `zbmc admin instance create` does, ``count`` times in one transaction (the CLI takes
    ~0.1 s per instance, too slow for hundreds)."""
    engine = stack.engine()
    try:
        with unit_of_work(engine) as conn:
            now = Clock().now(conn)
            spec = InstanceSpec(tenant_id=tenant_id, **fields)
            return [provision(conn, spec, now) for _ in range(count)]
    finally:
        engine.dispose()


def read(stack: Stack, tenant_id: str) -> Snapshot:
    engine = stack.engine()
    try:
        return snapshot(engine, tenant_id)
    finally:
        engine.dispose()


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def write_transaction_open(stack: Stack) -> bool:
    """Whether another process holds an open writing transaction on the stack's database."""
    if stack.backend == "sqlite":
        path = make_url(stack.database_url).database
        assert path is not None
        probe = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:  # "database is locked": a writer is mid-transaction
            return True
        finally:
            probe.close()
    import psycopg

    with psycopg.connect(_libpq(stack.database_url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
        ).fetchone()
        return bool(row and row[0])


def wait_for_dead_sessions(stack: Stack) -> None:
    """PostgreSQL ends a killed client's transaction (and releases its row locks) when it notices
    the closed socket; wait for that, so that SKIP LOCKED does not skip rows a dead process held."""
    if stack.backend != "postgres":
        return
    import psycopg

    def open_transactions() -> int:
        with psycopg.connect(_libpq(stack.database_url), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
            ).fetchone()
            return int(row[0]) if row else 0

    wait_until(lambda: open_transactions() == 0, timeout=30)


# --- 1. the API server killed under load ----------------------------------------------------


@dataclass
class Target:
    """One instance a client thread keeps upgrading; ``value`` is the last value it was given an
    order for (Mbps or GB), so the next request asks for one step more."""

    instance_id: str
    kind: str
    value: int
    step: int


@dataclass
class Load:
    lock: threading.Lock = field(default_factory=threading.Lock)
    received: dict[str, Target] = field(default_factory=dict)  # orderNumber -> its target
    to_values: dict[str, int] = field(default_factory=dict)
    received_after_kill: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    completed: int = 0
    in_flight: int = 0
    killed: bool = False
    cut_off: list[Target] = field(default_factory=list)  # requests whose answer never came

    def begin(self) -> None:
        with self.lock:
            self.in_flight += 1

    def done(self, target: Target, number: str | None, code: str | None) -> None:
        with self.lock:
            self.in_flight -= 1
            self.completed += 1
            if number is not None:
                self.received[number] = target
                self.to_values[number] = target.value + target.step
                self.received_after_kill += self.killed
            if code is not None:
                self.refusals[code] += 1


def send(client: Any, target: Target) -> str | None:
    """Ask for one step above ``target.value``; the order number, or None when that value is
    already in effect (no order, no charge)."""
    if target.kind == BANDWIDTH:
        bandwidth = models.ModifyInstanceBandwidthRequest()
        bandwidth.instanceId = target.instance_id
        bandwidth.bandwidthOutMbps = target.value + target.step
        number = client.ModifyInstanceBandwidth(bandwidth).orderNumber
    else:
        package = models.ModifyInstanceTrafficPackageRequest()
        package.instanceId = target.instance_id
        package.trafficPackageSize = (target.value + target.step) / 1000
        number = client.ModifyInstanceTrafficPackage(package).orderNumber
    return None if number is None else str(number)


def drive(tenant: Tenant, targets: list[Target], load: Load, stop: threading.Event) -> None:
    """One client thread: upgrade its own instances round and round until the server dies."""
    client = tenant.client()
    while not stop.is_set():
        for target in targets:
            load.begin()
            try:
                number = send(client, target)
            except ZenlayerCloudSdkException as exc:
                load.done(target, None, str(exc.code))
                if exc.code == NETWORK_ERROR:
                    with load.lock:
                        load.cut_off.append(target)
                    return
                continue
            assert number is not None, f"no order for a change of {target}"
            load.done(target, number, None)
            target.value += target.step


def check_chains(snap: Snapshot, initial: dict[tuple[str, str], int]) -> None:
    """Every instance's orders of one kind form one unbroken chain of upgrades from its initial
    value (the load only upgrades), all applied but possibly the last, and the instance holds the
    value of the last applied one: nothing lost in the middle, nothing applied twice or half."""
    columns = {BANDWIDTH: "bandwidth", TRAFFIC_PACKAGE: "traffic_package_gb"}
    for row in snap.instances:
        for kind, column in columns.items():
            if (row.instance_id, kind) not in initial:
                continue
            chain = sorted(
                (o for o in snap.orders if o.instance_id == row.instance_id and o.kind == kind),
                key=lambda o: int(o.to_value),
            )
            value = initial[row.instance_id, kind]
            for position, order in enumerate(chain):
                assert order.from_value == value, f"chain broken at {order}"
                assert order.to_value > order.from_value, order
                last = position == len(chain) - 1
                assert order.state == ENABLED or (last and order.state == PROCESSING), order
                if order.state == ENABLED:
                    value = int(order.to_value)
            assert getattr(row, column) == value, f"{row.instance_id}: {column} != {value}"
            prepaid = row.instance_charge_type == "PREPAID"
            assert all((o.amount > 0) == prepaid for o in chain), chain


def check_received(snap: Snapshot, load: Load) -> None:
    """Every order a client received exists, as requested, with its amount charged once."""
    by_number = {o.order_number: o for o in snap.orders}
    charges = Counter(e.order_number for e in snap.ledger if e.kind == "CHARGE")
    for number, target in load.received.items():
        assert number in by_number, f"received order {number} was lost"
        order = by_number[number]
        assert (order.instance_id, order.kind) == (target.instance_id, target.kind), order
        assert order.to_value == load.to_values[number], order
        assert charges[number] == (1 if order.amount > 0 else 0), order


# Accepted changes stay in Processing this long, so some are still open at the crash and the
# restarted worker has to finish them.
DRIVER_DELAY = {"ZBMC_DRIVER_DELAY_SECONDS": "2"}


def retry_cut_off(tenant: Tenant, load: Load, committed: set[tuple[str, str, int]]) -> Counter[str]:
    """Clients repeat the requests whose answers the crash swallowed. A request names the value
    it wants, so one that was committed before the crash changes (and charges) nothing again."""
    client = tenant.client()
    outcomes: Counter[str] = Counter()
    for target in load.cut_off:
        wanted = target.value + target.step
        was_committed = (target.instance_id, target.kind, wanted) in committed
        refusal: str | None = None
        try:
            number = send(client, target)
        except ZenlayerCloudSdkException as exc:
            refusal, number = str(exc.code), None
        if refusal is not None:
            assert refusal == "OPERATION_DENIED_BALANCE_INSUFFICIENT", refusal
            assert not was_committed, f"{target}: committed, yet {refusal}"
            outcomes["refused_balance"] += 1
        elif was_committed:
            assert number is None, f"{target} was committed before the crash, yet ordered again"
            outcomes["already_in_effect"] += 1
        else:
            assert number is not None, f"{target}: no order for a change"
            load.received[number] = target
            load.to_values[number] = wanted
            outcomes["ordered_now"] += 1
    return outcomes


def load_targets(stack: Stack, tenant: Tenant) -> list[Target]:
    """Prepaid ByBandwidth (paid upgrades), a few prepaid packages, postpaid (free changes)."""
    common = {"zone_id": "SEL-A", "instance_type_id": "M6C", "bandwidth": 20}
    prepaid = provision_many(
        stack,
        tenant.tenant_id,
        48,
        instance_charge_type="PREPAID",
        internet_charge_type="ByBandwidth",
        **common,
    )
    packages = provision_many(
        stack,
        tenant.tenant_id,
        8,
        instance_charge_type="PREPAID",
        internet_charge_type="ByTrafficPackage",
        **common,
    )
    postpaid = provision_many(
        stack,
        tenant.tenant_id,
        16,
        instance_charge_type="POSTPAID",
        internet_charge_type="ByBandwidth",
        **common,
    )
    targets = (
        [Target(i, BANDWIDTH, 20, 1) for i in prepaid + postpaid]
        + [Target(i, TRAFFIC_PACKAGE, 500, 50) for i in packages]  # 0.5 TB default, +0.05 TB
    )
    random.Random(4).shuffle(targets)
    return targets


def load_until_killed(stack: Stack, tenant: Tenant, targets: list[Target]) -> tuple[Load, Any]:
    """Client threads upgrade until KILL_AFTER_CALLS calls completed; then SIGKILL the server."""
    load, stop = Load(), threading.Event()
    threads = [
        threading.Thread(target=drive, args=(tenant, targets[k::CLIENT_THREADS], load, stop))
        for k in range(CLIENT_THREADS)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    wait_until(lambda: load.completed >= KILL_AFTER_CALLS, timeout=60, interval=0.005)
    assert stack.process is not None
    with load.lock:
        stack.process.send_signal(signal.SIGKILL)
        load.killed = True
        at_kill = {
            "in_flight": load.in_flight,
            "completed": load.completed,
            "received": len(load.received),
            "seconds_of_load": round(time.monotonic() - started, 2),
        }
    stack.process.wait()
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert load.refusals[NETWORK_ERROR] > 0, "no request was cut off by the kill"
    assert set(load.refusals) - {NETWORK_ERROR} <= EXPECTED_REFUSALS, load.refusals
    assert load.refusals["OPERATION_DENIED_BALANCE_INSUFFICIENT"] > 0, load.refusals
    return load, at_kill


def test_server_killed_under_load(make_stack: StackFactory) -> None:
    stack = make_stack(**DRIVER_DELAY)
    # ~40 upgrades of 1 Mbps: less than one round over the 56 prepaid instances
    tenant = stack.tenant(balance="80.00")
    targets = load_targets(stack, tenant)
    initial = {(t.instance_id, t.kind): t.value for t in targets}
    load, at_kill = load_until_killed(stack, tenant, targets)

    wait_for_dead_sessions(stack)
    crashed = read(stack, tenant.tenant_id)
    check_snapshot(crashed)
    check_chains(crashed, initial)
    check_received(crashed, load)
    left_processing = [o.order_number for o in crashed.orders if o.state == PROCESSING]
    assert left_processing, "no change was left in Processing by the crash"
    committed_not_received = len(crashed.orders) - len(load.received)

    restarted = time.monotonic()
    assert stack.log_path is not None
    stack.start(stack.log_path, **DRIVER_DELAY)
    serving = time.monotonic() - restarted

    def all_enabled() -> Snapshot | None:
        snap = read(stack, tenant.tenant_id)
        return None if any(o.state in OPEN_STATES for o in snap.orders) else snap

    final = wait_until(all_enabled, timeout=30)
    resumed = time.monotonic() - restarted
    check_snapshot(final)
    check_chains(final, initial)
    check_received(final, load)
    states = {o.order_number: o.state for o in final.orders}
    assert all(states[n] == ENABLED for n in left_processing)

    committed = {(o.instance_id, o.kind, int(o.to_value)) for o in crashed.orders}
    retried = retry_cut_off(tenant, load, committed)
    final = wait_until(all_enabled, timeout=30)
    check_snapshot(final)
    check_chains(final, initial)
    check_received(final, load)
    check_admin_money(tenant)
    client = tenant.client()
    listed = tenant.orders()
    for target in targets:
        check_internet_status(client, target.instance_id, listed)

    print(
        "FAULT-FIGURES",
        json.dumps(
            {
                "test": "server_killed_under_load",
                "backend": stack.backend,
                "at_kill": at_kill,
                "received_total": len(load.received),
                "received_after_kill_signal": load.received_after_kill,
                "committed_not_received": committed_not_received,
                "processing_at_crash": len(left_processing),
                "refusals": dict(load.refusals),
                "restart_to_serving_s": round(serving, 2),
                "restart_to_all_enabled_s": round(resumed, 2),
                "retried_after_restart": dict(retried),
                "balance_cents": final.balance,
            }
        ),
    )


# --- 2. the worker killed in the middle of a tick -------------------------------------------

PREPAID_DOWNGRADES = 220
# Enough hours that a kill lands inside an open tick: with 24 instances (17 856 hourly charges)
# the tick took less than the longest kill delay (0.25 s) on a fast day of the machine.
POSTPAID_METERED = 72
HOURS = 31 * 24  # the clock is advanced by 31 days
RENEWAL_CENTS = 38000  # M6C in SEL-A, 50 Mbps (40 billable) for one month
KILLS = 5


def worker_command() -> list[str]:
    return [sys.executable, "-m", "zbmc", "worker", "--once", "--json"]


def worker_env(stack: Stack) -> dict[str, str]:
    return {**os.environ, "ZBMC_DATABASE_URL": stack.database_url}


def modify_all(tenant: Tenant, instance_ids: Iterable[str], mbps: int) -> list[str]:
    def one(instance_id: str) -> str:
        request = models.ModifyInstanceBandwidthRequest()
        request.instanceId, request.bandwidthOutMbps = instance_id, mbps
        return str(tenant.client().ModifyInstanceBandwidth(request).orderNumber)

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, instance_ids))


def kill_mid_tick(stack: Stack, delay: float) -> dict[str, Any]:
    """Start `zbmc worker --once`, wait until its tick holds a writing transaction, let it work
    ``delay`` seconds more, then SIGKILL it."""
    process = subprocess.Popen(
        worker_command(),
        env=worker_env(stack),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = time.monotonic()
    try:
        wait_until(
            lambda: process.poll() is not None or write_transaction_open(stack),
            timeout=60,
            interval=0.01,
        )
        writing_after = time.monotonic() - started
        time.sleep(delay)
        open_at_kill = write_transaction_open(stack)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    return {
        "delay_s": round(delay, 3),
        "writing_after_s": round(writing_after, 2),
        "open_at_kill": open_at_kill,
        "returncode": process.returncode,
    }


def check_tick_complete(
    snap: Snapshot, prepaid: list[str], postpaid: list[str], due: set[str]
) -> None:
    """Everything the tick had to do is done, each thing exactly once."""
    check_snapshot(snap, metered=True)
    assert not [o for o in snap.orders if o.state in OPEN_STATES]
    states = {o.order_number: o.state for o in snap.orders}
    assert all(states[n] == ENABLED for n in due)
    renewals = Counter(o.instance_id for o in snap.orders if o.kind == "RENEW")
    assert renewals == Counter(prepaid), "each prepaid instance renews exactly once"
    assert {o.amount for o in snap.orders if o.kind == "RENEW"} == {RENEWAL_CENTS}
    hours = Counter(
        (e.instance_id, e.period_start)
        for e in snap.ledger
        if e.kind == "CHARGE" and e.order_number is None
    )
    assert set(hours.values()) == {1}, "an hour was charged twice"
    per_instance = Counter(instance_id for instance_id, _start in hours)
    assert per_instance == Counter(dict.fromkeys(postpaid, HOURS))
    values = {row.instance_id: row.bandwidth for row in snap.instances}
    assert all(values[i] == 50 for i in prepaid)
    assert all(values[i] == 200 for i in postpaid)


def check_phases_atomic(
    snap: Snapshot, prepaid: list[str], postpaid: list[str], due: set[str]
) -> set[str]:
    """Which phases of the catch-up are visible; each one must be all there or not at all."""
    done: set[str] = set()
    states = {o.order_number: o.state for o in snap.orders}
    enabled = {n for n in due if states[n] == ENABLED}
    assert enabled in (set(), due), "due orders half applied"
    if enabled:
        done.add("orders")
    renewed = Counter(o.instance_id for o in snap.orders if o.kind == "RENEW")
    assert renewed in (Counter(), Counter(prepaid)), "renewals half done"
    if renewed:
        done.add("renewals")
    hours = Counter(
        e.instance_id for e in snap.ledger if e.kind == "CHARGE" and e.order_number is None
    )
    assert hours in (Counter(), Counter(dict.fromkeys(postpaid, HOURS))), "hours half metered"
    if hours:
        done.add("hours")
    assert not done or "orders" in done, "a later phase ran before the due orders"
    return done


def test_worker_killed_mid_tick(make_stack: StackFactory) -> None:
    stack = make_stack(ZBMC_RUN_WORKER="0")
    stack.admin.run("clock", "simulate")
    tenant = stack.tenant(balance="1000000.00")
    common = {"zone_id": "SEL-A", "instance_type_id": "M6C", "bandwidth": 100}
    prepaid = provision_many(
        stack,
        tenant.tenant_id,
        PREPAID_DOWNGRADES,
        instance_charge_type="PREPAID",
        internet_charge_type="ByBandwidth",
        **common,
    )
    postpaid = provision_many(
        stack,
        tenant.tenant_id,
        POSTPAID_METERED,
        instance_charge_type="POSTPAID",
        internet_charge_type="ByBandwidth",
        **common,
    )
    due = set(modify_all(tenant, prepaid, 50))  # WaitToEnable until the renewal
    due |= set(modify_all(tenant, postpaid, 200))  # Processing: no worker runs yet
    stack.admin.run("clock", "advance", "31d")

    before = read(stack, tenant.tenant_id)
    check_snapshot(before, metered=True)
    assert {o.state for o in before.orders} == {WAIT_TO_ENABLE, PROCESSING}
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    kills = []
    for _ in range(KILLS):
        kill = kill_mid_tick(stack, rng.uniform(0.0, 0.25))
        kills.append(kill)
        wait_for_dead_sessions(stack)
        after = read(stack, tenant.tenant_id)
        check_snapshot(after, metered=True)
        if kill["returncode"] == 0:  # the tick finished before the kill: all of it is there
            check_tick_complete(after, prepaid, postpaid, due)
            break
        # Each tick is one transaction handling whole phases here (every phase fits in one
        # batch), so a kill leaves each phase either untouched or complete, never half-done.
        if check_phases_atomic(after, prepaid, postpaid, due) == {"orders", "renewals", "hours"}:
            check_tick_complete(after, prepaid, postpaid, due)
            break
    assert any(k["open_at_kill"] for k in kills), f"no kill hit an open tick: {kills} ({seed=})"

    started = time.monotonic()
    finished = subprocess.run(
        worker_command(), env=worker_env(stack), capture_output=True, timeout=300, check=True
    )
    tick_seconds = time.monotonic() - started
    report = json.loads(finished.stdout)
    final = read(stack, tenant.tenant_id)
    check_tick_complete(final, prepaid, postpaid, due)
    again = json.loads(
        subprocess.run(
            worker_command(), env=worker_env(stack), capture_output=True, timeout=300, check=True
        ).stdout
    )
    assert again["applied"] == again["renewed"] == again["charges"] == 0, again
    assert read(stack, tenant.tenant_id) == final
    check_admin_money(tenant)

    print(
        "FAULT-FIGURES",
        json.dumps(
            {
                "test": "worker_killed_mid_tick",
                "backend": stack.backend,
                "seed": seed,
                "kills": kills,
                "final_report": report,
                "final_tick_with_startup_s": round(tick_seconds, 2),
                "ledger_entries": len(final.ledger),
            }
        ),
    )
