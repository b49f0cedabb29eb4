"""One agent pass: make this host's kernel match what the API says, report, count.

A pass (1) reads the caps this host must enforce from the API, (2) reads the kernel and changes
only what differs (a pass over a right kernel runs no command at all), (3) removes what the agent
owns but nobody wants any more (released or moved instances), (4) reads the kernel again and
reports the due orders whose new cap is now in it, so the API enables them, and the ones the
kernel refused, which are retried with backoff, (5) keeps the nftables counters in step and,
every ``sample_interval`` seconds, turns them into traffic samples.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zbmc.agent import kernel as k
from zbmc.agent.client import AdminClient, ApiError
from zbmc.agent.counters import Counters, Table, counter_name
from zbmc.agent.meter import Meter
from zbmc.store.attachments import Desired

log = logging.getLogger("zbmc.agent")

MAX_BACKOFF_SECONDS = 60
SEND_CHUNK = 5000


@dataclass
class PassReport:
    instances: int = 0
    changed: list[str] = field(default_factory=list)  # instance ids whose kernel state changed
    removed: list[str] = field(default_factory=list)  # devices cleaned up
    enabled: int = 0  # orders the API enabled after this pass
    failed: list[str] = field(default_factory=list)  # instance ids the kernel refused
    samples: int = 0  # samples the API accepted (new or resent)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class _Backoff:
    attempts: int
    retry_at: float


def _desired(item: dict[str, Any]) -> Desired:
    return Desired(
        instance_id=str(item["instanceId"]),
        interface=str(item["interface"]),
        out_mbps=int(item["outMbps"]),
        in_mbps=None if item.get("inMbps") is None else int(item["inMbps"]),
        order_number=item.get("orderNumber"),
    )


def plan(d: Desired, snap: k.Snapshot) -> tuple[list[str], list[str]]:
    """(ip lines, tc lines) that bring one instance's devices to ``d``; empty when right."""
    device = snap.get(d.interface)
    if device is None:
        raise k.KernelError(f"interface {d.interface} does not exist on this host")
    ifb = k.ifb_name(device.ifindex)
    ifb_device = snap.get(ifb)
    ip: list[str] = []
    tc: list[str] = []
    if ifb_device is None:
        ip += [f"link add {ifb} type ifb", f"link set {ifb} up"]
    elif not ifb_device.up:
        ip.append(f"link set {ifb} up")
    if ifb_device is None or not ifb_device.capped_at(d.out_mbps):
        tc += k.cap_lines(ifb, d.out_mbps)
    if ifb_device is None or device.redirect_to != {ifb}:
        tc += k.redirect_lines(d.interface, ifb, device.ingress)
    if d.in_mbps is not None:
        if not device.capped_at(d.in_mbps):
            tc += k.cap_lines(d.interface, d.in_mbps)
    elif device.root == ("tbf", k.HANDLE):
        tc.append(f"qdisc del dev {d.interface} root")
    return ip, tc


def in_force(d: Desired, snap: k.Snapshot) -> bool:
    try:
        return plan(d, snap) == ([], [])
    except k.KernelError:
        return False


def cleanup(desired: list[Desired], snap: k.Snapshot) -> tuple[list[str], list[str], list[str]]:
    """(ip lines, tc lines, device names) removing what the agent set up for no wanted instance."""
    wanted = {d.interface: d for d in desired}
    by_index = {dev.ifindex: dev for dev in snap.devices.values()}
    ip: list[str] = []
    tc: list[str] = []
    names: list[str] = []
    for dev in snap.devices.values():
        # (a wanted interface without an inbound cap loses it in plan(); IFBs go below)
        ours = dev.root == ("tbf", k.HANDLE) and not dev.name.startswith(k.IFB_PREFIX)
        if ours and dev.name not in wanted:
            tc.append(f"qdisc del dev {dev.name} root")
            names.append(dev.name)
    for ifb in snap.ifbs():
        owner = by_index.get(int(ifb.name[len(k.IFB_PREFIX) :]))
        if owner is not None and owner.name in wanted:
            continue
        if owner is not None and owner.ingress:
            tc.append(f"qdisc del dev {owner.name} ingress")
        ip.append(f"link del {ifb.name}")
        names.append(ifb.name)
    return ip, tc, names


class Agent:
    def __init__(
        self,
        client: AdminClient,
        kernel: k.Kernel,
        counters: Counters,
        meter: Meter,
        host: str,
        sample_interval: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.kernel = kernel
        self.counters = counters
        self.meter = meter
        self.host = host
        self.sample_interval = sample_interval
        self.clock = clock
        self.backoff: dict[str, _Backoff] = {}
        self.next_sample = self._boundary(clock())

    def _boundary(self, now: float) -> float:
        return (int(now) // self.sample_interval + 1) * self.sample_interval

    def run_pass(self) -> PassReport:
        started = time.perf_counter()
        report = PassReport()
        desired = [_desired(item) for item in self.client.state(self.host)["instances"]]
        report.instances = len(desired)
        snap = self.kernel.snapshot()
        failed: list[dict[str, Any]] = []
        self._enforce([d for d in desired if self._due(d)], snap, report, failed)
        ip, tc, names = cleanup(desired, snap)
        if ip or tc:
            try:
                self.kernel.run("tc", tc)
                self.kernel.run("ip", ip)
                report.removed = names
            except k.KernelError as exc:
                log.warning("cleaning up %s failed: %s", names, exc)
        after = self.kernel.snapshot() if report.changed or report.removed else snap
        applied = [
            {"instanceId": d.instance_id, "orderNumber": d.order_number, "mbps": d.out_mbps}
            for d in desired
            if d.order_number is not None and in_force(d, after)
        ]
        if applied or failed:
            report.enabled = int(self.client.report(self.host, applied, failed)["enabled"])
        self._count(desired, report)
        report.seconds = time.perf_counter() - started
        return report

    def _due(self, d: Desired) -> bool:
        waiting = self.backoff.get(d.instance_id)
        return waiting is None or waiting.retry_at <= self.clock()

    def _enforce(
        self,
        desired: list[Desired],
        snap: k.Snapshot,
        report: PassReport,
        failed: list[dict[str, Any]],
    ) -> None:
        """Apply what differs: every instance's lines in one `ip` and one `tc` batch; if the
        kernel refuses, instance by instance (from a fresh read) to know whose change failed."""
        planned: list[tuple[Desired, list[str], list[str]]] = []
        for d in desired:
            try:
                ip, tc = plan(d, snap)
            except k.KernelError as exc:
                self._refused(d, exc, report, failed)
                continue
            if ip or tc:
                planned.append((d, ip, tc))
            else:
                self.backoff.pop(d.instance_id, None)
        if not planned:
            return
        try:
            self.kernel.run("ip", [line for _d, ip, _tc in planned for line in ip])
            self.kernel.run("tc", [line for _d, _ip, tc in planned for line in tc])
        except k.KernelError as exc:
            if len(planned) == 1:
                self._refused(planned[0][0], exc, report, failed)
            else:
                for d, _ip, _tc in planned:
                    self._enforce([d], self.kernel.snapshot(), report, failed)
            return
        for d, _ip, _tc in planned:
            report.changed.append(d.instance_id)
            self.backoff.pop(d.instance_id, None)

    def _refused(
        self, d: Desired, exc: Exception, report: PassReport, failed: list[dict[str, Any]]
    ) -> None:
        waiting = self.backoff.get(d.instance_id)
        attempts = (waiting.attempts if waiting else 0) + 1
        delay = min(2**attempts, MAX_BACKOFF_SECONDS)
        self.backoff[d.instance_id] = _Backoff(attempts, self.clock() + delay)
        report.failed.append(d.instance_id)
        log.warning("instance %s: %s (retry in %s s)", d.instance_id, exc, delay)
        if d.order_number is not None:
            failed.append(
                {"instanceId": d.instance_id, "orderNumber": d.order_number, "error": str(exc)}
            )

    # counters and samples -------------------------------------------------------------------

    def _count(self, desired: list[Desired], report: PassReport) -> None:
        wanted = {d.instance_id: d.interface for d in desired}
        table = self.counters.table()
        if self.counters.reconcile(table, wanted):
            table = self.counters.table()
        now = self.clock()
        ts = int(now)
        dirty = False
        for instance_id in wanted:
            reading = _reading(table, instance_id)
            if reading is not None and instance_id not in self.meter.last:
                self.meter.baseline(instance_id, reading[0], reading[1], ts)
                dirty = True
        # Instances no longer here: their last bytes become a sample, then their counters go.
        gone = [i for i in self.meter.last if i not in wanted]
        for instance_id in gone:
            reading = _reading(table, instance_id)
            if reading is not None:
                self.meter.observe(instance_id, reading[0], reading[1], ts)
            self.meter.forget(instance_id)
            dirty = True
        if now >= self.next_sample:
            for instance_id in wanted:
                reading = _reading(table, instance_id)
                if reading is not None:
                    self.meter.observe(instance_id, reading[0], reading[1], ts)
            self.next_sample = self._boundary(now)
            dirty = True
        if dirty:
            self.meter.save()
        names = {counter_name(x, i) for i in wanted for x in ("o", "i")}
        stale = [name for name in table.counters if name not in names]
        if stale:
            self.counters.remove(stale)
        report.samples = self.send()

    def send(self) -> int:
        """Post the spool; a sample the API can never take (its instance is gone) is dropped."""
        accepted = 0
        while self.meter.spool:
            batch = self.meter.spool[:SEND_CHUNK]
            try:
                answer = self.client.samples(batch)
            except ApiError as exc:
                if exc.status != 400:
                    log.warning("sending %d samples failed, kept for later: %s", len(batch), exc)
                    return accepted
                answer = self._send_each(batch)
            accepted += int(answer["accepted"]) + int(answer["duplicates"])
            self.meter.sent({s["sampleId"] for s in batch})
            self.meter.save()
        return accepted

    def _send_each(self, batch: list[dict[str, Any]]) -> dict[str, int]:
        total = {"accepted": 0, "duplicates": 0}
        for sample in batch:
            try:
                answer = self.client.samples([sample])
            except ApiError as exc:
                if exc.status != 400:
                    raise
                log.warning("dropping sample %s: %s", sample["sampleId"], exc)
                continue
            total["accepted"] += int(answer["accepted"])
            total["duplicates"] += int(answer["duplicates"])
        return total


def _reading(table: Table, instance_id: str) -> tuple[int, int] | None:
    inbound = table.counters.get(counter_name("i", instance_id))
    outbound = table.counters.get(counter_name("o", instance_id))
    if inbound is None or outbound is None:
        return None
    return inbound, outbound
