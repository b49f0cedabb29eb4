"""Caps in the kernel: tc HTB on the instance's interface (inbound) and on an IFB device that its
received traffic is redirected to (outbound), read back over netlink (pyroute2) and changed with
`tc` / `ip` in batch mode. Only what the agent owns is ever removed: HTB roots with its handle
``7a62:`` and IFB devices named ``zbo<ifindex>`` (docs/drivers.md).

Directions are the instance's: its outbound traffic enters the host on its interface (ingress,
shaped on the IFB), its inbound traffic leaves the host through that interface (egress).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

HANDLE = 0x7A62_0000  # "zb": the major number of every root qdisc the agent owns
CLASS = HANDLE | 1
INGRESS = 0xFFFF_0000
IFB_PREFIX = "zbo"
BYTES_PER_MBPS = 125_000  # 1 Mbps = 10^6 bit/s, tc's "mbit"
MIN_BURST = 64 * 1024  # a whole GSO packet: HTB needs at least that to reach the rate
QUANTUM = 65_536


class KernelError(RuntimeError):
    """The kernel (or tc / ip) refused a change; the message is the tool's."""


def ifb_name(ifindex: int) -> str:
    return f"{IFB_PREFIX}{ifindex}"


def burst_bytes(mbps: int) -> int:
    # 4 ms at the rate, at least one GSO packet: measured within 1 % of the rate from 10 Mbps
    # to 1 Gbps on veth (bench/agent.py); a bigger burst lets short transfers beat the cap.
    return max(MIN_BURST, mbps * BYTES_PER_MBPS // 250)


@dataclass
class Device:
    name: str
    ifindex: int
    up: bool
    root: tuple[str, int] | None = None  # (kind, handle) of the root qdisc
    ingress: bool = False
    ingress_filters: int = 0
    rate: int | None = None  # bytes/s of our HTB class, if rate == ceil; else None
    kind: str | None = None  # link kind (ifb, veth ...)

    @property
    def capped(self) -> bool:
        return self.root is not None and self.root == ("htb", HANDLE) and self.rate is not None

    def capped_at(self, mbps: int) -> bool:
        return self.capped and self.rate == mbps * BYTES_PER_MBPS


@dataclass
class Snapshot:
    devices: dict[str, Device] = field(default_factory=dict)

    def get(self, name: str) -> Device | None:
        return self.devices.get(name)

    def ifbs(self) -> list[Device]:
        return [
            d
            for d in self.devices.values()
            if d.name.startswith(IFB_PREFIX) and d.name[len(IFB_PREFIX) :].isdigit()
        ]


def _attr(message: Any, name: str) -> Any:
    return message.get_attr(name)


class Kernel:
    """One network namespace's links and qdiscs (the current one, or ``netns`` by name)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns

    def _prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns] if self.netns else []

    def run(self, tool: str, lines: Sequence[str]) -> None:
        """Run `tc` or `ip` over ``lines`` in one batch, stopping at the first refusal."""
        if not lines:
            return
        script = "".join(line + "\n" for line in lines)
        try:
            done = subprocess.run(
                [*self._prefix(), tool, "-batch", "-"],
                input=script.encode(),
                capture_output=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KernelError(f"{tool}: {exc}") from None
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).decode(errors="replace").strip()
            raise KernelError(f"{tool} refused: {detail[-500:]}")

    def snapshot(self) -> Snapshot:
        from pyroute2 import IPRoute

        snap = Snapshot()
        by_index: dict[int, Device] = {}
        with IPRoute(netns=self.netns) if self.netns else IPRoute() as ipr:
            for link in ipr.get_links():
                info = _attr(link, "IFLA_LINKINFO")
                device = Device(
                    name=_attr(link, "IFLA_IFNAME"),
                    ifindex=link["index"],
                    up=bool(link["flags"] & 1),
                    kind=_attr(info, "IFLA_INFO_KIND") if info is not None else None,
                )
                by_index[device.ifindex] = device
                snap.devices[device.name] = device
            for qdisc in ipr.get_qdiscs():
                owner = by_index.get(qdisc["index"])
                if owner is None:
                    continue
                device = owner
                kind = _attr(qdisc, "TCA_KIND")
                if qdisc["parent"] == 0xFFFF_FFFF:
                    device.root = (kind, qdisc["handle"])
                elif kind == "ingress":
                    device.ingress = True
            for device in by_index.values():
                if device.root == ("htb", HANDLE):
                    device.rate = _class_rate(ipr, device.ifindex)
                if device.ingress:
                    filters = ipr.get_filters(index=device.ifindex, parent=INGRESS)
                    device.ingress_filters = sum(1 for f in filters if f["handle"] != 0)
        return snap


def _class_rate(ipr: Any, ifindex: int) -> int | None:
    for item in ipr.get_classes(index=ifindex):
        if item["handle"] != CLASS:
            continue
        options = _attr(item, "TCA_OPTIONS")
        parms = _attr(options, "TCA_HTB_PARMS")
        rate = _attr(options, "TCA_HTB_RATE64") or parms["rate"]
        ceil = _attr(options, "TCA_HTB_CEIL64") or parms["ceil"]
        return int(rate) if rate == ceil else None
    return None


def cap_lines(device: str, mbps: int) -> list[str]:
    """tc batch lines giving ``device`` one HTB class at ``mbps`` (changes a cap in place)."""
    burst = burst_bytes(mbps)
    return [
        f"qdisc replace dev {device} root handle {HANDLE >> 16:x}: htb default 1",
        f"class replace dev {device} parent {HANDLE >> 16:x}: classid {HANDLE >> 16:x}:1 htb"
        f" rate {mbps}mbit ceil {mbps}mbit burst {burst} cburst {burst} quantum {QUANTUM}",
    ]


def rate_lines(device: str, mbps: int) -> list[str]:
    return cap_lines(device, mbps)[1:]


def redirect_lines(device: str, ifb: str, has_ingress: bool) -> list[str]:
    """Send everything ``device`` receives through ``ifb`` (its egress HTB shapes it)."""
    return [
        *([f"qdisc del dev {device} ingress"] if has_ingress else []),
        f"qdisc add dev {device} handle ffff: ingress",
        f"filter add dev {device} parent ffff: protocol all prio 1 u32 match u32 0 0"
        f" action mirred egress redirect dev {ifb}",
    ]
