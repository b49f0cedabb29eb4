"""A network host in namespaces, for trying the agent without hardware (tests, bench/agent.py).

``<prefix>-host`` is the agent's host: one veth ``vi<k>`` per instance and an uplink ``up0`` to
``<prefix>-net`` (the internet, 172.31.255.2). Instance ``k`` is the namespace ``<prefix>-i<k>``
at 10.64.x.y/30 behind ``vi<k>`` (or, with ``namespaces=False``, only the veth pair, both ends in
the host: enough to time agent passes over many interfaces). Needs root, iproute2 and a kernel
with veth, IFB, TBF, u32, mirred and nftables.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

NET_ADDRESS = "172.31.255.2"
_BASE = ipaddress.IPv4Address("10.64.0.0")


def unavailable() -> str | None:
    """Why a lab cannot be built here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "tc", "nft", "iperf3"):
        if shutil.which(tool) is None:
            return f"needs `{tool}` (Debian packages iproute2, nftables, iperf3)"
    probe = f"zbmc-probe-{os.getpid()}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False)
    if done.returncode != 0:
        return f"cannot create a network namespace: {done.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


def _run(*args: str, script: str | None = None) -> str:
    done = subprocess.run(
        list(args),
        input=None if script is None else script.encode(),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.decode().strip()}")
    return done.stdout.decode()


@dataclass
class Lab:
    prefix: str
    instances: int
    namespaces: bool = True
    mtu: int = 1500
    built: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"{self.prefix}-host"

    @property
    def net(self) -> str:
        return f"{self.prefix}-net"

    def instance_ns(self, k: int) -> str:
        return f"{self.prefix}-i{k}"

    @staticmethod
    def interface(k: int) -> str:
        return f"vi{k}"

    @staticmethod
    def addresses(k: int) -> tuple[str, str]:
        """(host side, instance side) of instance k's /30."""
        base = _BASE + 4 * k
        return str(base + 1), str(base + 2)

    def build(self) -> None:
        names = [self.host, self.net]
        if self.namespaces:
            names += [self.instance_ns(k) for k in range(self.instances)]
        for name in names:
            _run("ip", "netns", "add", name)
            self.built.append(name)
        host = [
            "link set lo up",
            f"link add up0 mtu {self.mtu} type veth peer name eth0 mtu {self.mtu} netns {self.net}",
            "addr add 172.31.255.1/30 dev up0",
            "link set up0 up",
        ]
        for k in range(self.instances):
            near, far = self.addresses(k)
            if self.namespaces:
                peer = f"eth0 mtu {self.mtu} netns {self.instance_ns(k)}"
            else:
                peer = f"vp{k} mtu {self.mtu}"
            host += [
                f"link add vi{k} mtu {self.mtu} type veth peer name {peer}",
                f"addr add {near}/30 dev vi{k}",
                f"link set vi{k} up",
            ]
            if not self.namespaces:
                host.append(f"link set vp{k} up")
        _run("ip", "-n", self.host, "-batch", "-", script="\n".join(host) + "\n")
        _run("ip", "netns", "exec", self.host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        net = [
            "link set lo up",
            f"addr add {NET_ADDRESS}/30 dev eth0",
            "link set eth0 up",
            "route add 10.64.0.0/10 via 172.31.255.1",
        ]
        _run("ip", "-n", self.net, "-batch", "-", script="\n".join(net) + "\n")
        if self.namespaces:
            for k in range(self.instances):
                near, far = self.addresses(k)
                lines = [
                    "link set lo up",
                    f"addr add {far}/30 dev eth0",
                    "link set eth0 up",
                    f"route add default via {near}",
                ]
                _run("ip", "-n", self.instance_ns(k), "-batch", "-", script="\n".join(lines) + "\n")

    def destroy(self) -> None:
        for name in reversed(self.built):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        self.built.clear()

    def iperf(
        self,
        k: int,
        seconds: float,
        port: int = 5201,
        reverse: bool = False,
        rate_mbps: int | None = None,
    ) -> Any:
        """An iperf3 TCP run from instance k to the internet (``reverse``: to the instance),
        as fast as it goes or paced at ``rate_mbps``; returns iperf3's JSON report."""
        server = subprocess.Popen(
            ["ip", "netns", "exec", self.net, "iperf3", "-s", "-1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _attempt in range(50):
                client = subprocess.run(
                    ["ip", "netns", "exec", self.instance_ns(k), "iperf3", "-c", NET_ADDRESS]
                    + ["-p", str(port), "-t", str(seconds), "-J", "-P", "1"]
                    + (["-R"] if reverse else [])
                    + ([] if rate_mbps is None else ["-b", f"{rate_mbps}M"]),
                    capture_output=True,
                    check=False,
                )
                report = json.loads(client.stdout or b"{}")
                if client.returncode == 0 and "error" not in report:
                    return report
                if "refused" not in str(report.get("error", "")):
                    raise RuntimeError(f"iperf3 failed: {report.get('error')}")
                time.sleep(0.1)  # the server is not listening yet
            raise RuntimeError("iperf3 server did not start")
        finally:
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
