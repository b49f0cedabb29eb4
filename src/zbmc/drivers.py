"""Network drivers: what enforces a bandwidth cap or traffic package on the real network.

The interface is deliberately small (docs/drivers.md). The worker calls a driver for every change
that falls due; returning means the change is in force on the network, raising ``DriverError``
means it is not: the change stays as it was (Processing, or WaitToEnable) and the worker retries
with exponential backoff. The order is never lost.
"""

from __future__ import annotations

import subprocess
from typing import Protocol


class DriverError(RuntimeError):
    pass


class NetworkDriver(Protocol):
    name: str

    def apply_bandwidth(self, instance_id: str, mbps: int) -> None: ...

    def apply_traffic_package(self, instance_id: str, package_gb: int | None) -> None: ...


class NoopDriver:
    """Enforces nothing; changes complete when their order falls due (after
    ``ZBMC_DRIVER_DELAY_SECONDS``, 0 = at the next worker tick)."""

    name = "noop"

    def apply_bandwidth(self, instance_id: str, mbps: int) -> None:
        return None

    def apply_traffic_package(self, instance_id: str, package_gb: int | None) -> None:
        return None


class CommandDriver:
    """Runs an operator's program for every change:
    ``PROGRAM bandwidth INSTANCE_ID MBPS`` or ``PROGRAM traffic-package INSTANCE_ID GB``.
    Exit status 0 means applied; anything else (or a timeout) is a failure to retry."""

    name = "command"

    def __init__(self, program: str, timeout: float = 30.0) -> None:
        self.program = program
        self.timeout = timeout

    def _run(self, *args: str) -> None:
        try:
            done = subprocess.run(
                [self.program, *args], capture_output=True, timeout=self.timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DriverError(f"{self.program}: {exc}") from None
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip()[-500:]
            raise DriverError(f"{self.program} exited with {done.returncode}: {detail}")

    def apply_bandwidth(self, instance_id: str, mbps: int) -> None:
        self._run("bandwidth", instance_id, str(mbps))

    def apply_traffic_package(self, instance_id: str, package_gb: int | None) -> None:
        self._run("traffic-package", instance_id, "none" if package_gb is None else str(package_gb))


class AgentDriver:
    """Leaves bandwidth changes of attached instances to the network agents (``zbmc agent``):
    the worker does not pick them up (``zbmc.store.attachments.left_to_agents``), they stay
    Processing until the agent reports the kernel has the new cap. What reaches this driver
    (traffic packages, instances without an attachment) has nothing to enforce in a kernel."""

    name = "agent"

    def apply_bandwidth(self, instance_id: str, mbps: int) -> None:
        return None

    def apply_traffic_package(self, instance_id: str, package_gb: int | None) -> None:
        return None


def make_driver(name: str, command: str | None = None) -> NetworkDriver:
    if name == "noop":
        return NoopDriver()
    if name == "agent":
        return AgentDriver()
    if name == "command":
        if not command:
            raise ValueError("ZBMC_DRIVER=command needs ZBMC_DRIVER_COMMAND (the program to run)")
        return CommandDriver(command)
    raise ValueError(f"unknown network driver {name!r} (available: noop, command, agent)")
