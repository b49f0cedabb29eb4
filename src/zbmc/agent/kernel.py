"""Caps in the kernel: a tc TBF (token bucket) on the instance's interface (inbound) and on an
IFB device that its received traffic is redirected to (outbound). The kernel is read with the
tools' JSON output (``ip -j link``, ``tc -j qdisc``: every device in one dump; the ingress filters
in one ``tc -batch``) and changed with ``ip`` / ``tc`` in batch mode. Only what the agent owns is
ever removed: root qdiscs with its handle ``7a62:`` and IFB devices named ``zbo<ifindex>``
(docs/drivers.md).

Directions are the instance's: its outbound traffic enters the host on its interface (ingress,
shaped on the IFB), its inbound traffic leaves the host through that interface (egress).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

HANDLE = "7a62:"  # "zb": the handle of every root qdisc the agent owns
IFB_PREFIX = "zbo"
BYTES_PER_MBPS = 125_000  # 1 Mbps = 10^6 bit/s, tc's "mbit"
MIN_BURST = 128 * 1024  # TBF splits a packet bigger than the bucket (a 64 KiB GSO packet is)
QUEUE_SECONDS = "100ms"  # the queue behind the bucket (TBF "latency"), measured in bench/agent.py


class KernelError(RuntimeError):
    """The kernel (or tc / ip) refused a change; the message is the tool's."""


def ifb_name(ifindex: int) -> str:
    return f"{IFB_PREFIX}{ifindex}"


def burst_bytes(mbps: int) -> int:
    # 4 ms at the rate, at least one GSO packet: measured 95-97 % of the cap (the rest is the
    # per-packet headers) from 10 Mbps to 1 Gbps on veth (bench/agent.py); a bigger bucket lets
    # short transfers beat the cap.
    return max(MIN_BURST, mbps * BYTES_PER_MBPS // 250)


@dataclass
class Device:
    name: str
    ifindex: int
    up: bool
    root: tuple[str, str] | None = None  # (kind, handle) of the root qdisc
    rate: int | None = None  # bytes/s of our root TBF
    ingress: bool = False
    redirect_to: set[str] = field(default_factory=set)  # devices its ingress filters mirror to

    @property
    def capped(self) -> bool:
        return self.root == ("tbf", HANDLE) and self.rate is not None

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


def _mirrors(filters: list[Any]) -> set[str]:
    targets = set()
    for item in filters:
        for action in item.get("options", {}).get("actions", []):
            if action.get("kind") == "mirred" and action.get("mirred_action") == "redirect":
                targets.add(str(action.get("to_dev")))
    return targets


class Kernel:
    """One network namespace's links and qdiscs (the current one, or ``netns`` by name)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns

    def _tool(self, tool: str, args: Sequence[str], script: str | None = None) -> str:
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        try:
            done = subprocess.run(
                [*prefix, tool, *args],
                input=None if script is None else script.encode(),
                capture_output=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KernelError(f"{tool}: {exc}") from None
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).decode(errors="replace").strip()
            raise KernelError(f"{tool} refused: {detail[-500:]}")
        return done.stdout.decode()

    def run(self, tool: str, lines: Sequence[str]) -> None:
        """Run `tc` or `ip` over ``lines`` in one batch, stopping at the first refusal."""
        if lines:
            self._tool(tool, ["-batch", "-"], "".join(line + "\n" for line in lines))

    def snapshot(self) -> Snapshot:
        snap = Snapshot()
        for link in json.loads(self._tool("ip", ["-j", "link", "show"]) or "[]"):
            device = Device(
                name=link["ifname"], ifindex=int(link["ifindex"]), up="UP" in link["flags"]
            )
            snap.devices[device.name] = device
        for qdisc in json.loads(self._tool("tc", ["-j", "qdisc", "show"]) or "[]"):
            owner = snap.devices.get(qdisc.get("dev", ""))
            if owner is None:
                continue
            device = owner
            if qdisc.get("root"):
                device.root = (qdisc["kind"], qdisc["handle"])
                if device.root == ("tbf", HANDLE):
                    device.rate = int(qdisc["options"]["rate"])
            elif qdisc["kind"] == "ingress":
                device.ingress = True
        with_ingress = [d for d in snap.devices.values() if d.ingress]
        if with_ingress:
            script = "".join(f"filter show dev {d.name} ingress\n" for d in with_ingress)
            answers = self._tool("tc", ["-j", "-batch", "-"], script).splitlines()
            for device, answer in zip(with_ingress, answers, strict=True):
                device.redirect_to = _mirrors(json.loads(answer))
        return snap


def cap_lines(device: str, mbps: int) -> list[str]:
    """tc batch lines capping ``device``'s egress at ``mbps`` (changes a cap in place)."""
    return [
        f"qdisc replace dev {device} root handle {HANDLE} tbf rate {mbps}mbit"
        f" burst {burst_bytes(mbps)} latency {QUEUE_SECONDS}"
    ]


def redirect_lines(device: str, ifb: str, has_ingress: bool) -> list[str]:
    """Send everything ``device`` receives through ``ifb`` (its egress TBF shapes it)."""
    return [
        *([f"qdisc del dev {device} ingress"] if has_ingress else []),
        f"qdisc add dev {device} handle ffff: ingress",
        f"filter add dev {device} parent ffff: protocol all prio 1 u32 match u32 0 0"
        f" action mirred egress redirect dev {ifb}",
    ]
