"""Drivers: what enforces a bandwidth cap or traffic package on the real network (network
drivers), and what powers, reboots and installs the real servers (host drivers).

The interfaces are deliberately small (docs/drivers.md). The worker calls a driver for every change
that falls due; returning means the change is in force on the network, raising ``DriverError``
means it is not: the change stays as it was (Processing, or WaitToEnable) and the worker retries
with exponential backoff. The order is never lost.
"""

from __future__ import annotations

import os
import subprocess
from typing import NamedTuple, Protocol


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
        _run_program(self.program, list(args), self.timeout)

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


def _run_program(
    program: str, args: list[str], timeout: float, env: dict[str, str] | None = None
) -> None:
    try:
        done = subprocess.run(
            [program, *args],
            capture_output=True,
            timeout=timeout,
            check=False,
            env=None if env is None else {**os.environ, **env},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DriverError(f"{program}: {exc}") from None
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip()[-500:]
        raise DriverError(f"{program} exited with {done.returncode}: {detail}")


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


# --- host drivers ------------------------------------------------------------------------------


class HostJob(NamedTuple):
    """One host operation for a driver: what to do (``create``, ``start``, ``stop``, ``reboot``,
    ``reinstall``) to which server, with the settings an installation needs. Passwords are
    never stored, so never passed."""

    operation: str
    instance_id: str
    zone_id: str
    instance_type_id: str
    image_id: str | None
    hostname: str
    ipxe_url: str | None
    key_id: str | None


class HostDriver(Protocol):
    name: str
    # How long an operation takes in billing-clock seconds before the worker carries it out
    # (the noop driver's simulated duration; 0 = the next worker tick).
    delay_seconds: float
    # True: ``run`` reaches outside (a program); the worker calls it outside any transaction,
    # holding a lease on the operation instead. False: ``run`` is instant and pure.
    external: bool
    # How long a call may take; the lease lasts a bit longer.
    timeout_seconds: float

    def run(self, job: HostJob) -> None: ...


class NoopHostDriver:
    """Touches no hardware: an operation completes ``delay_seconds`` after it was requested."""

    name = "noop"
    external = False
    timeout_seconds = 0.0

    def __init__(self, delay_seconds: float = 0.0) -> None:
        self.delay_seconds = delay_seconds

    def run(self, job: HostJob) -> None:
        return None


class CommandHostDriver:
    """Runs an operator's program for every host operation (their IPMI / PXE tooling):
    ``PROGRAM create|start|stop|reboot|reinstall INSTANCE_ID`` and, for create and reinstall,
    ``IMAGE_ID HOSTNAME`` (``none`` for no image), with the details in ``ZBMC_*`` environment
    variables. Exit status 0 means done; anything else (or the timeout) is a failure that the
    worker retries with backoff. The program must be idempotent: after a crash it may be asked
    to do the same operation again."""

    name = "command"
    external = True
    delay_seconds = 0.0

    def __init__(self, program: str, timeout_seconds: float = 600.0) -> None:
        self.program = program
        self.timeout_seconds = timeout_seconds

    def run(self, job: HostJob) -> None:
        args = [job.operation, job.instance_id]
        if job.operation in ("create", "reinstall"):
            args += [job.image_id or "none", job.hostname]
        env = {
            "ZBMC_OPERATION": job.operation,
            "ZBMC_INSTANCE_ID": job.instance_id,
            "ZBMC_ZONE_ID": job.zone_id,
            "ZBMC_INSTANCE_TYPE_ID": job.instance_type_id,
            "ZBMC_IMAGE_ID": job.image_id or "",
            "ZBMC_HOSTNAME": job.hostname,
            "ZBMC_IPXE_URL": job.ipxe_url or "",
            "ZBMC_KEY_ID": job.key_id or "",
        }
        _run_program(self.program, args, self.timeout_seconds, env)


def make_host_driver(
    name: str,
    command: str | None = None,
    delay_seconds: float = 0.0,
    timeout_seconds: float = 600.0,
) -> HostDriver:
    if name == "noop":
        return NoopHostDriver(delay_seconds)
    if name == "command":
        if not command:
            raise ValueError("ZBMC_HOST_DRIVER=command needs ZBMC_HOST_DRIVER_COMMAND")
        return CommandHostDriver(command, timeout_seconds)
    raise ValueError(f"unknown host driver {name!r} (available: noop, command)")
