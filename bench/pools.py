"""Pre-built HTTP requests for wrk, written as a Lua file that ``wrk/pool.lua`` cycles through.

wrk's Lua cannot compute HMAC-SHA256, so every zbmc request is signed here, with the current
timestamp, immediately before its wrk run (the server accepts ±300 s; no run lasts that long).
Each wrk thread has its own Lua state, so the pool is split into one list per thread over
disjoint instances: two threads never send the same change to the same instance.

The server applies a signed write once (the replay guard, docs/security.md), and wrk cycles
through its list: so a write pool holds enough passes for a whole run, each pass signed with a
timestamp of its own (``Timestamps``), and no signed write is ever sent twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from zbmc.signature import ALGORITHM, SIGNED_HEADERS, sign

CONTENT_TYPE = "application/json"


def raw_request(host: str, headers: dict[str, str], body: bytes, path: str = "/") -> str:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + body.decode()


class Timestamps:
    """Distinct signing timestamps, increasing, inside the server's window (±300 s): a pass of
    writes signed with one of them never repeats an earlier pass's signatures."""

    def __init__(self) -> None:
        self.last = 0

    def take(self) -> int:
        self.last = max(self.last + 1, int(time.time()) - 240)
        if self.last > time.time() + 240:
            raise RuntimeError("out of distinct timestamps: fewer passes per run, please")
        return self.last


TIMESTAMPS = Timestamps()
WRITES_PER_POOL = 40_000  # more than a write run of a few seconds sends
MAX_WRITE_RATE = 9_000  # req/s a write pool is sized for (pool_size): above 7 500 req/s seen


def pool_size(seconds: float) -> int:
    """Signed writes a pool needs for a load of ``seconds`` (its warm-up included): wrk must
    never come back to its first request (the full run's 15-s loads ran past 40 000 and got
    replay refusals, HTTP 403)."""
    return max(WRITES_PER_POOL, int(seconds * MAX_WRITE_RATE))


def signed(
    host: str,
    key: tuple[str, str],
    action: str,
    payload: dict[str, object],
    version: str,
    timestamp: int | None = None,
) -> str:
    """A request exactly as the official SDK signs it (ZC2-HMAC-SHA256 over content-type;host)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    text = str(int(time.time()) if timestamp is None else timestamp)
    signature = sign(key[1], CONTENT_TYPE, host, text, body)
    headers = {
        "Content-Type": CONTENT_TYPE,
        "X-ZC-Action": action,
        "X-ZC-Version": version,
        "X-ZC-Timestamp": text,
        "X-ZC-Signature-Method": ALGORITHM,
        "Authorization": (
            f"{ALGORITHM} Credential={key[0]}, SignedHeaders={SIGNED_HEADERS}, "
            f"Signature={signature}"
        ),
    }
    return raw_request(host, headers, body, "/api/v2/bmc")


def _lua_string(text: str) -> str:
    escaped = (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n")
    )
    return f'"{escaped}"'


def write_pool(path: Path, per_thread: Sequence[Sequence[str]]) -> Path:
    """Write ``return { {req, req, ...}, {...} }``: one list of raw requests per wrk thread."""
    with path.open("w") as out:
        out.write("return {\n")
        for requests in per_thread:
            out.write("{\n")
            for request in requests:
                out.write(_lua_string(request) + ",\n")
            out.write("},\n")
        out.write("}\n")
    return path


def split(items: Sequence[str], threads: int) -> list[list[str]]:
    return [list(items[t::threads]) for t in range(threads)]


def modify_bandwidth(
    host: str,
    key: tuple[str, str],
    current: dict[str, int],
    threads: int,
    version: str,
    writes: int = WRITES_PER_POOL,
) -> list[list[str]]:
    """Per thread: every instance of its share to the other of 100/200 Mbps, then back.

    ``current`` is each instance's bandwidth now, so the first request to each is a real change.
    The instances are POSTPAID, so each change is accepted free of charge and is Processing
    until the worker's next tick; by the time a thread comes back to an instance (a whole pass
    later) the worker has finished the change, so the next request is accepted again. Requests
    that do arrive while still Processing get OPERATION_FAILED_INSTANCE_BANDWIDTH_PROCESSING
    (HTTP 403) and are reported as non-2xx.

    The two passes repeat, each pair signed with a new timestamp, until the pool holds
    ``writes`` requests: wrk never sends the same signed write twice.
    """
    pairs = max(1, -(-writes // (2 * max(1, len(current)))))
    stamps = [TIMESTAMPS.take() for _ in range(pairs)]
    pools = []
    for share in split(sorted(current), threads):
        passes = []
        for stamp in stamps:
            for flip in (True, False):
                passes += [
                    signed(
                        host,
                        key,
                        "ModifyInstanceBandwidth",
                        {
                            "instanceId": i,
                            "bandwidthOutMbps": (300 - current[i]) if flip else current[i],
                        },
                        version,
                        stamp,
                    )
                    for i in share
                ]
        pools.append(passes)
    return pools


def internet_status(
    host: str, key: tuple[str, str], instance_ids: Sequence[str], threads: int, version: str
) -> list[list[str]]:
    requests = [
        signed(host, key, "DescribeInstanceInternetStatus", {"instanceId": i}, version)
        for i in instance_ids
    ]
    return split(requests, threads)


def describe_instances(
    host: str, key: tuple[str, str], pages: int, threads: int, version: str
) -> list[list[str]]:
    """The first ``pages`` pages of 100, as a console paging through its list would ask."""
    requests = [
        signed(host, key, "DescribeInstances", {"pageSize": 100, "pageNum": n}, version)
        for n in range(1, pages + 1)
    ]
    return [requests[t:] + requests[:t] for t in range(threads)]


def constant(request: str, threads: int) -> list[list[str]]:
    return [[request] for _ in range(threads)]


# A zone only the CreateInstances rows buy from: stock and addresses for every instance a run can
# create (a few thousand requests a second, amount up to 10).
CREATION_CATALOGUE = """
[[zones]]
id = "BENCH-A"
name = "Benchmark A"
city = "Benchmark"
area = "Benchmark"

[[offerings]]
zones = ["BENCH-A"]
instance_types = ["M6C"]
internet_charge_types = ["ByBandwidth"]
default_bandwidth_out = 10
qty = 100000000
[offerings.prices]
instance_month = "300.00"
instance_hour = "0.50"
bandwidth_month = "2.00"
bandwidth_hour = "0.004"
traffic_tb_month = "10.00"
traffic_tb_hour = "0.02"
overage_gb = "0.01"

[[address_pools]]
id = "bench-public"
kind = "PUBLIC_IPV4"
cidr = "100.64.0.0/10"
zone = "BENCH-A"

[[address_pools]]
id = "bench-private"
kind = "PRIVATE_IPV4"
cidr = "172.16.0.0/12"
zone = "BENCH-A"
"""


def create_instances(
    host: str, key: tuple[str, str], amount: int, threads: int, version: str, count: int = 6000
) -> list[list[str]]:
    """``count`` POSTPAID creations of ``amount`` instances each, split over the threads. They
    differ in their instance names: the server refuses a signed request it has already seen
    (AUTHFAILURE_SIGNATURE_REPLAYED), so a run must not send one twice."""
    requests = [
        signed(
            host,
            key,
            "CreateInstances",
            {
                "zoneId": "BENCH-A",
                "instanceTypeId": "M6C",
                "instanceChargeType": "POSTPAID",
                "internetChargeType": "ByBandwidth",
                "internetMaxBandwidthOut": 50,
                "imageId": "img-ubuntu-2404",
                "amount": amount,
                "instanceName": f"bench-{n}-[1,2]",
            },
            version,
        )
        for n in range(count)
    ]
    return split(requests, threads)
