"""TerminateInstance + ReleaseInstances under load: each instance is terminated and then
released, so the requests cannot be cycled by wrk. A closed loop of client threads (one
keep-alive connection each, requests signed as the SDK signs them) drives disjoint instances and
reports one Measurement in the form of the wrk rows (latency per request, both actions).

    .venv/bin/python bench/lifecycle.py [--backend sqlite|postgres] [--instances 2000]

bench/run.py runs it as one row per backend (``terminate_release``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import seed
import servers
from load import Measurement, cpu_seconds

from zbmc.db.engine import create_db_engine
from zbmc.signature import ALGORITHM, SIGNED_HEADERS, sign

LIFECYCLE_BASE = 940_000_000_000_000_000
CONTENT_TYPE = "application/json"


def _headers(
    host: str, key: tuple[str, str], action: str, body: bytes, version: str
) -> dict[str, str]:
    timestamp = str(int(time.time()))
    signature = sign(key[1], CONTENT_TYPE, host, timestamp, body)
    return {
        "Content-Type": CONTENT_TYPE,
        "Host": host,
        "X-ZC-Action": action,
        "X-ZC-Version": version,
        "X-ZC-Timestamp": timestamp,
        "X-ZC-Signature-Method": ALGORITHM,
        "Authorization": (
            f"{ALGORITHM} Credential={key[0]}, SignedHeaders={SIGNED_HEADERS}, "
            f"Signature={signature}"
        ),
    }


def seed_running(engine: Any, tenant_id: str, now: int, count: int) -> list[str]:
    """POSTPAID RUNNING instances, metered from ``now`` (what TerminateInstance closes)."""
    rows = (
        seed.instance_row(
            k,
            LIFECYCLE_BASE,
            tenant_id,
            now,
            instance_charge_type="POSTPAID",
            period=None,
            auto_renew=False,
            period_start=None,
            expired_time=None,
            metered_until=now,
            primary_ip=None,
            private_ip=None,
            ipv6=None,
        )
        for k in range(count)
    )
    seed.bulk_insert(engine, seed.instances, rows)
    return [str(LIFECYCLE_BASE + k) for k in range(count)]


def terminate_release(
    host: str,
    key: tuple[str, str],
    ids: list[str],
    connections: int,
    version: str,
    *,
    target: str,
    dataset: str,
    pid: int | None = None,
) -> Measurement:
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    hostname, port = host.split(":")

    def drive(mine: list[str]) -> None:
        conn = http.client.HTTPConnection(hostname, int(port), timeout=30)
        own: list[float] = []
        for instance_id in mine:
            for action, payload in (
                ("TerminateInstance", {"instanceId": instance_id}),
                ("ReleaseInstances", {"instanceIds": [instance_id]}),
            ):
                body = json.dumps(payload, separators=(",", ":")).encode()
                started = time.perf_counter()
                conn.request(
                    "POST", "/api/v2/bmc", body, _headers(host, key, action, body, version)
                )
                response = conn.getresponse()
                answer = response.read()
                own.append(time.perf_counter() - started)
                if response.status != 200:
                    with lock:
                        failures.append(answer.decode(errors="replace")[:200])
        conn.close()
        with lock:
            latencies.extend(own)

    load_before = os.getloadavg()[0]
    cpu_before = cpu_seconds(pid) if pid else 0.0
    threads = [
        threading.Thread(target=drive, args=(ids[k::connections],)) for k in range(connections)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before if pid else None
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 2)

    count = len(latencies)
    return Measurement(
        target=target,
        scenario="TerminateInstance+ReleaseInstances",
        dataset=dataset,
        connections=connections,
        requests=count,
        seconds=round(elapsed, 2),
        rps=round(count / elapsed, 1),
        p50_ms=pct(0.5),
        p90_ms=pct(0.9),
        p99_ms=pct(0.99),
        max_ms=round(1000 * latencies[-1], 2),
        non2xx=len(failures),
        socket_errors=0,
        load_before=round(load_before, 2),
        cpu_ms_per_request=round(1000 * cpu / count, 3) if cpu is not None and count else None,
        notes={"instances": len(ids), "pairs_per_second": round(len(ids) / elapsed, 1)}
        | ({"first_failure": failures[0]} if failures else {}),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--connections", type=int, action="append")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zbmc-bench-") as tmp:
        workdir = Path(tmp)
        with servers.database(args.backend, workdir) as url:
            servers.zbmc(url, "admin", "db", "upgrade")
            servers.zbmc(url, "admin", "catalogue", "load", "--demo")
            tenant = servers.zbmc_json(
                url, "admin", "tenant", "create", "--name", "bench", "--balance", "100000000"
            )
            key = (tenant["accessKeyId"], tenant["accessKeyPassword"])
            engine = create_db_engine(url)
            ids = seed_running(engine, tenant["tenantId"], int(time.time()), args.instances)
            server = servers.zbmc_serve(workdir, url, servers.WORKER_INTERVAL)
            try:
                loads = args.connections or [16]
                share = len(ids) // len(loads)
                for connections in loads:
                    batch, ids = ids[:share], ids[share:]
                    m = terminate_release(
                        server.host,
                        key,
                        batch,
                        connections,
                        "2026-02-01",
                        target=f"zbmc/{args.backend}",
                        dataset=f"{len(batch)} instances",
                        pid=server.process.pid,
                    )
                    print(json.dumps(m.as_dict()))
            finally:
                server.stop()
                engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
