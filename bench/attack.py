"""The attack run of issue 16, again: slow clients, replays, non-ASCII headers, the action swap.

    .venv/bin/python bench/attack.py                     # SQLite, zbmc serve --workers 2
    .venv/bin/python bench/attack.py --connections 8000 --backend postgres

Starts its own ``zbmc serve`` on 127.0.0.1 (nothing else is ever a target), with the default
slow-client limits unless ``--serve-env NAME=VALUE`` changes them, and prints the figures that
docs/reliability.md records: connections and file descriptors the server held while
``--connections`` sockets trickled their headers, SDK calls served meanwhile, how long until
the trickling sockets were all closed; a captured signed write sent again (refused?); 2000
requests with ``X-ZC-Timestamp: ²`` (statuses, log growth); a captured price inquiry sent
again as ModifyInstanceBandwidth (applied when the action is not signed, refused when it is).
Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import platform
import socket
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import servers

from zbmc.signature import sign_headers

PARTIAL = b"POST /api/v2/bmc HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a"


def _tree_fds(pid: int) -> tuple[int, int]:
    """(processes, open file descriptors) of ``pid`` and its children."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                pids.append(int(entry))
    fds = 0
    for each in pids:
        with contextlib.suppress(OSError):
            fds += len(os.listdir(f"/proc/{each}/fd"))
    return len(pids), fds


def _closed(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1024) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _client(host: str, key: tuple[str, str], sign_action: bool = False) -> Any:
    """The official SDK client, keeping a copy of what it sends; optionally signing the
    action and version too (the SDK signs content-type;host)."""
    from zenlayercloud.bmc.v20260201.bmc_client import BmcClient
    from zenlayercloud.common.config import Config
    from zenlayercloud.common.credential import Credential

    names = ("content-type", "host", "x-zc-action", "x-zc-version")

    class Client(BmcClient):  # type: ignore[misc]
        sent: list[tuple[dict[str, str], bytes]]

        def _build_zc2_authorization(self, req: Any) -> str:
            if not sign_action:
                return str(super()._build_zc2_authorization(req))
            headers = {k.lower(): str(v) for k, v in req.header.items()}
            signed = [(name, headers[name]) for name in names]
            signature = sign_headers(key[1], signed, headers["x-zc-timestamp"], req.data.encode())
            return (
                f"ZC2-HMAC-SHA256 Credential={key[0]}, SignedHeaders={';'.join(names)}, "
                f"Signature={signature}"
            )

        def _send_request(self, req: Any) -> Any:
            self.sent.append(({k: str(v) for k, v in req.header.items()}, req.data.encode()))
            return super()._send_request(req)

    config = Config(scheme="http", domain=host, rate_limit_max_retries=0)
    client = Client(Credential(*key), config)
    client.sent = []
    return client


def _models() -> Any:
    from zenlayercloud.bmc.v20260201 import models

    return models


def slow_clients(server: servers.Server, key: tuple[str, str], count: int) -> dict[str, Any]:
    client = _client(server.host, key)
    _, fds_before = _tree_fds(server.process.pid)
    socks: list[socket.socket] = []
    refused = 0
    started = time.monotonic()
    try:
        for _ in range(count):
            if time.monotonic() - started > 120:
                break
            try:
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                sock.sendall(PARTIAL)
                socks.append(sock)
            except OSError:
                refused += 1
        opened = time.monotonic() - started
        processes, fds_peak = _tree_fds(server.process.pid)
        served = 0
        for _ in range(20):
            try:
                client.DescribeZones(_models().DescribeZonesRequest())
                served += 1
            except Exception:
                pass
        held = sum(not _closed(sock) for sock in socks)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(not _closed(s) for s in socks):
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.send(b"a")
            time.sleep(0.5)
        all_closed_after = time.monotonic() - started
        remaining = sum(not _closed(sock) for sock in socks)
    finally:
        for sock in socks:
            sock.close()
    return {
        "trickling_connections_opened": len(socks),
        "connect_errors": refused,
        "seconds_to_open": round(opened, 1),
        "server_processes": processes,
        "server_fds_before": fds_before,
        "server_fds_at_peak": fds_peak,
        "connections_still_open_after_opening_all": held,
        "sdk_calls_served_during_attack": f"{served}/20",
        "seconds_until_all_closed": round(all_closed_after, 1),
        "still_open_after_60s": remaining,
    }


def replay(server: servers.Server, url: str, key: tuple[str, str], tenant: str) -> dict[str, Any]:
    instance = servers.zbmc_json(
        url,
        *("admin", "instance", "create", "--tenant", tenant, "--zone", "SEL-A", "--type"),
        *("M6C", "--instance-charge-type", "POSTPAID", "--internet-charge-type"),
        *("ByBandwidth", "--bandwidth", "200"),
    )["instanceId"]
    client = _client(server.host, key)
    request = _models().ModifyInstanceBandwidthRequest()
    request.instanceId, request.bandwidthOutMbps = instance, 310
    client.ModifyInstanceBandwidth(request)
    time.sleep(1.5)  # the worker applies the change
    request.bandwidthOutMbps = 200
    client.ModifyInstanceBandwidth(request)
    time.sleep(1.5)
    headers, body = client.sent[0]
    codes: collections.Counter[str] = collections.Counter()
    for _ in range(200):
        answer = requests.post(f"http://{server.host}/api/v2/bmc", data=body, headers=headers)
        codes[f"{answer.status_code} {answer.json().get('code', 'OK')}"] += 1
    status = _models().DescribeInstanceInternetStatusRequest()
    status.instanceId = instance
    now = client.DescribeInstanceInternetStatus(status).internetMaxBandwidthOut
    return {"captured_200_to_310_resent_200_times": dict(codes), "bandwidth_after": now}


def superscripts(server: servers.Server, key: tuple[str, str]) -> dict[str, Any]:
    size = server.log.stat().st_size
    codes: collections.Counter[str] = collections.Counter()
    session = requests.Session()
    for _ in range(2000):
        answer = session.post(
            f"http://{server.host}/api/v2/bmc",
            data=b"{}",
            headers={
                "Content-Type": "application/json",
                "X-ZC-Action": "DescribeZones",
                "X-ZC-Timestamp": "²".encode(),
                "Authorization": f"ZC2-HMAC-SHA256 Credential={key[0]}, "
                "SignedHeaders=content-type;host, Signature=00",
            },
        )
        codes[f"{answer.status_code} {answer.json()['code']}"] += 1
    return {
        "x_zc_timestamp_superscript_2000": dict(codes),
        "log_bytes_added": server.log.stat().st_size - size,
    }


def action_swap(
    server: servers.Server, url: str, key: tuple[str, str], tenant: str
) -> dict[str, Any]:
    out = {}
    for sign_action in (False, True):
        instance = servers.zbmc_json(
            url,
            *("admin", "instance", "create", "--tenant", tenant, "--zone", "SEL-A", "--type"),
            *("M6C", "--instance-charge-type", "PREPAID", "--internet-charge-type"),
            *("ByBandwidth", "--bandwidth", "100"),
        )["instanceId"]
        client = _client(server.host, key, sign_action)
        inquiry = _models().InquiryPriceInstanceBandwidthRequest()
        inquiry.instanceId, inquiry.bandwidthOutMbps = instance, 400
        client.InquiryPriceInstanceBandwidth(inquiry)
        headers, body = client.sent[-1]
        headers = {**{k: v for k, v in headers.items() if k.lower() != "x-zc-action"}}
        headers["x-zc-action"] = "ModifyInstanceBandwidth"
        answer = requests.post(f"http://{server.host}/api/v2/bmc", data=body, headers=headers)
        name = "action_signed" if sign_action else "sdk_signing_content_type_host"
        out[f"inquiry_resent_as_modify_{name}"] = (
            f"{answer.status_code} {answer.json().get('code', 'OK (applied)')}"
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--serve-env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    extra = {"ZBMC_WORKERS": str(args.workers), "ZBMC_WORKER_INTERVAL_SECONDS": "0.2"}
    extra.update(dict(pair.split("=", 1) for pair in args.serve_env))
    with tempfile.TemporaryDirectory(prefix="zbmc-attack-") as tmp:
        work = Path(tmp)
        with servers.database(args.backend, work) as url:
            servers.zbmc(url, "admin", "db", "upgrade")
            servers.zbmc(url, "admin", "catalogue", "load", "--demo")
            tenant = servers.zbmc_json(
                url, "admin", "tenant", "create", "--name", "attack", "--balance", "100000"
            )
            key = (tenant["accessKeyId"], tenant["accessKeyPassword"])
            server = servers.zbmc_serve(work, url, 0.2, extra)
            try:
                figures: dict[str, Any] = {
                    "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                    f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
                    "backend": args.backend,
                    "api_processes": args.workers,
                }
                figures.update(slow_clients(server, key, args.connections))
                figures.update(replay(server, url, key, tenant["tenantId"]))
                figures.update(superscripts(server, key))
                figures.update(action_swap(server, url, key, tenant["tenantId"]))
            finally:
                server.stop()
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
