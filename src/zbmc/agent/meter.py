"""Counter readings become traffic samples, kept on disk until the API has stored them.

The state file holds, per instance, the counters as last turned into a sample, and the samples
not yet accepted (the spool). A reading is turned into samples and the file rewritten (atomically)
before anything is sent: after a crash the agent resends the spool under the same sample ids
(the API ignores a resent id) and goes on from the stored counters, so no byte is lost or
counted twice. nftables counters are 64-bit: a smaller reading than the last one is a wrap when
the last one was in the top half, otherwise the counter was recreated (its bytes since are
counted).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WRAP = 2**64
MAX_INTERVAL = 86_400  # the ingestion format's limit
MAX_SAMPLE_ID = 128


def delta(last: int, now: int) -> int:
    if now >= last:
        return now - last
    if last >= WRAP // 2:
        return now + WRAP - last
    return now  # reset: everything it counted since is new


def sample_id(host: str, instance_id: str, ts: int) -> str:
    text = f"{host}/{instance_id}/{ts}"
    if len(text) <= MAX_SAMPLE_ID:
        return text
    return f"h/{hashlib.sha256(text.encode()).hexdigest()}/{ts}"


@dataclass
class Reading:
    in_bytes: int
    out_bytes: int
    ts: int


@dataclass
class Meter:
    path: Path
    host: str
    last: dict[str, Reading] = field(default_factory=dict)
    spool: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path, host: str) -> Meter:
        meter = cls(path=path, host=host)
        if path.exists():
            data = json.loads(path.read_text())
            meter.last = {k: Reading(**v) for k, v in data.get("last", {}).items()}
            meter.spool = list(data.get("spool", []))
        return meter

    def save(self) -> None:
        data = {
            "host": self.host,
            "last": {k: vars(v) for k, v in sorted(self.last.items())},
            "spool": self.spool,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w") as out:
            json.dump(data, out)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)

    def baseline(self, instance_id: str, in_bytes: int, out_bytes: int, ts: int) -> None:
        """Start counting an instance from this reading (its counter is new to us)."""
        self.last[instance_id] = Reading(in_bytes, out_bytes, ts)

    def observe(self, instance_id: str, in_bytes: int, out_bytes: int, ts: int) -> bool:
        """Turn a reading into a sample; False if there is no earlier reading or no time passed."""
        last = self.last.get(instance_id)
        if last is None:
            self.baseline(instance_id, in_bytes, out_bytes, ts)
            return False
        if ts <= last.ts:
            return False
        self.spool.append(
            {
                "sampleId": sample_id(self.host, instance_id, ts),
                "instanceId": instance_id,
                "time": ts,
                "intervalSeconds": min(ts - last.ts, MAX_INTERVAL),
                "inBytes": delta(last.in_bytes, in_bytes),
                "outBytes": delta(last.out_bytes, out_bytes),
            }
        )
        self.last[instance_id] = Reading(in_bytes, out_bytes, ts)
        return True

    def forget(self, instance_id: str) -> None:
        self.last.pop(instance_id, None)

    def sent(self, ids: set[str]) -> None:
        self.spool = [s for s in self.spool if s["sampleId"] not in ids]
