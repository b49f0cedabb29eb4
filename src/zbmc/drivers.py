"""Network drivers: what enforces a bandwidth cap or traffic package on the real network.

The interface is deliberately small. The worker calls a driver for every change in Processing;
returning means the change is in force on the network, raising ``DriverError`` means it is not
(the change stays Processing and is retried with backoff, the order is never lost).
"""

from __future__ import annotations

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


def make_driver(name: str) -> NetworkDriver:
    if name == "noop":
        return NoopDriver()
    raise ValueError(f"unknown network driver {name!r} (available: noop)")
