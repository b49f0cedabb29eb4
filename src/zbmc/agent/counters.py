"""Per-instance byte counters in nftables: table ``inet zbmc``, owned by the agent.

Two named counters per instance (``o_<id>``: bytes the instance sent, counted as they enter the
host after the outbound cap; ``i_<id>``: bytes sent to it, counted as they leave the host) and two
maps from interface name to counter, used by one rule each in a prerouting and a postrouting
chain. Changing which interface belongs to whom rewrites the maps only: counters keep counting.
Read and changed with the `nft` tool (JSON out, scripts in, each script one atomic transaction).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from zbmc.agent.kernel import KernelError

TABLE = "inet zbmc"
_SAFE = re.compile(r"^[A-Za-z0-9_]{1,200}$")
_CHAINS = {
    "pre": ("prerouting", -300, "iifname", "out_counters"),
    "post": ("postrouting", 300, "oifname", "in_counters"),
}


def counter_name(direction: str, instance_id: str) -> str:
    """``o_<id>`` / ``i_<id>``; ids that are not plain words are hashed."""
    if _SAFE.match(instance_id):
        return f"{direction}_{instance_id}"
    return f"{direction}_h{hashlib.sha256(instance_id.encode()).hexdigest()[:32]}"


@dataclass
class Table:
    """What ``nft -j list table inet zbmc`` showed."""

    exists: bool = False
    counters: dict[str, int] = field(default_factory=dict)  # name -> bytes
    maps: dict[str, dict[str, str]] = field(default_factory=dict)  # map -> {ifname: counter}
    rules: dict[str, list[Any]] = field(default_factory=dict)  # chain -> rule expressions


class Counters:
    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns

    def _nft(self, args: Sequence[str], script: str | None = None) -> str:
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        try:
            done = subprocess.run(
                [*prefix, "nft", *args],
                input=None if script is None else script.encode(),
                capture_output=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KernelError(f"nft: {exc}") from None
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip()
            raise KernelError(f"nft refused: {detail[-500:]}")
        return done.stdout.decode()

    def table(self) -> Table:
        try:
            listing = self._nft(["-j", "list", "table", *TABLE.split()])
        except KernelError as exc:
            if "No such file or directory" in str(exc):
                return Table()
            raise
        table = Table(exists=True)
        for item in json.loads(listing)["nftables"]:
            if "counter" in item:
                table.counters[item["counter"]["name"]] = int(item["counter"]["bytes"])
            elif "map" in item:
                elements = item["map"].get("elem", [])
                table.maps[item["map"]["name"]] = {str(k): str(v) for k, v in elements}
            elif "rule" in item:
                table.rules.setdefault(item["rule"]["chain"], []).append(item["rule"]["expr"])
        return table

    def reconcile(self, table: Table, wanted: Mapping[str, str]) -> bool:
        """Make the table count every instance in ``wanted`` (instance id -> interface).
        Counters of instances no longer wanted are left for ``remove`` (after a last read).
        Returns whether anything was changed."""
        lines: list[str] = []
        if not table.exists:
            lines.append(f"add table {TABLE}")
        for instance_id in sorted(wanted):
            for direction in ("o", "i"):
                name = counter_name(direction, instance_id)
                if name not in table.counters:
                    lines.append(f"add counter {TABLE} {name}")
        for chain_map, direction in (("out_counters", "o"), ("in_counters", "i")):
            elements = {
                interface: counter_name(direction, instance_id)
                for instance_id, interface in wanted.items()
            }
            if table.maps.get(chain_map) == elements:
                continue
            if chain_map in table.maps:
                lines.append(f"flush map {TABLE} {chain_map}")
            else:
                lines.append(f"add map {TABLE} {chain_map} {{ type ifname : counter; }}")
            if elements:
                body = ", ".join(f'"{k}" : "{v}"' for k, v in sorted(elements.items()))
                lines.append(f"add element {TABLE} {chain_map} {{ {body} }}")
        for chain, (hook, priority, key, chain_map) in _CHAINS.items():
            expected = [
                {"counter": {"map": {"key": {"meta": {"key": key}}, "data": f"@{chain_map}"}}}
            ]
            if table.rules.get(chain) == [expected]:
                continue
            lines.append(
                f"add chain {TABLE} {chain}"
                f" {{ type filter hook {hook} priority {priority}; policy accept; }}"
            )
            lines.append(f"flush chain {TABLE} {chain}")
            lines.append(f"add rule {TABLE} {chain} counter name {key} map @{chain_map}")
        if not lines:
            return False
        self._nft(["-f", "-"], "".join(line + "\n" for line in lines))
        return True

    def remove(self, names: Sequence[str]) -> None:
        if names:
            self._nft(["-f", "-"], "".join(f"delete counter {TABLE} {n}\n" for n in names))

    def drop(self) -> None:
        self._nft(["delete", "table", *TABLE.split()])
