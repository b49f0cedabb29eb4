"""Slow clients (issue 16, zbmc.connections): connections that trickle their headers or stay
idle are held only up to the cap and the deadlines, and never stop a normal SDK call."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from tests.conftest import StackFactory
from tests.harness import V2026, Stack, wait_until

# The serving process may open a few more database connections meanwhile (its pools).
DATABASE_SLACK = 8
PARTIAL = b"POST /api/v2/bmc HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a"


def models(version: str) -> Any:
    module = "v20260201" if version == V2026 else "v20221120"
    return __import__(f"zenlayercloud.bmc.{module}", fromlist=["models"]).models


def closed(sock: socket.socket) -> bool:
    """Whether the server closed the connection (without waiting)."""
    sock.setblocking(False)
    try:
        return sock.recv(1024) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset: the server aborted it
        return True


@contextmanager
def trickling(stack: Stack, count: int) -> Iterator[list[socket.socket]]:
    socks = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", stack.port), timeout=5)
            sock.sendall(PARTIAL)
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def trickle(socks: list[socket.socket]) -> None:
    for sock in socks:
        with suppress(OSError):
            sock.send(b"a")


def server_fds(stack: Stack) -> int:
    assert stack.process is not None
    return len(os.listdir(f"/proc/{stack.process.pid}/fd"))


def test_trickling_connections_do_not_stop_an_sdk_call(
    make_stack: StackFactory, version: str
) -> None:
    stack = make_stack(ZBMC_MAX_CONNECTIONS="100", ZBMC_REQUEST_READ_TIMEOUT_SECONDS="4")
    tenant = stack.tenant()
    client = tenant.client(version)
    baseline = server_fds(stack)
    with trickling(stack, 300) as socks:
        trickle(socks)
        # A normal call gets through while three times the cap trickle.
        assert client.DescribeZones(models(version).DescribeZonesRequest()).zoneSet
        # The server kept at most the cap: the oldest were closed to make room.
        still_open = [sock for sock in socks if not closed(sock)]
        assert len(still_open) <= 100
        assert server_fds(stack) <= baseline + 100 + DATABASE_SLACK
        # However they trickle, none outlives the read deadline.

        def all_closed() -> bool:
            trickle(still_open)
            return all(closed(sock) for sock in still_open)

        wait_until(all_closed, timeout=30, interval=0.5)
        assert server_fds(stack) <= baseline + DATABASE_SLACK
        assert client.DescribeZones(models(version).DescribeZonesRequest()).zoneSet


def test_silent_and_idle_connections_are_closed(make_stack: StackFactory) -> None:
    stack = make_stack(ZBMC_REQUEST_READ_TIMEOUT_SECONDS="2", ZBMC_KEEP_ALIVE_SECONDS="1")
    tenant = stack.tenant()
    # A connection that never sends anything: closed at the read deadline.
    silent = socket.create_connection(("127.0.0.1", stack.port), timeout=5)
    # A keep-alive connection after a complete request: closed after the keep-alive timeout.
    idle = socket.create_connection(("127.0.0.1", stack.port), timeout=5)
    key = (tenant.access_key_id, tenant.access_key_password)
    headers, body = stack.prepared({}, key=key)
    request = "POST /api/v2/bmc HTTP/1.1\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()
    )
    idle.sendall(f"{request}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    answer = b""
    while b"zoneSet" not in answer:
        chunk = idle.recv(65536)
        assert chunk, answer
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    try:
        wait_until(lambda: closed(idle) and closed(silent), timeout=20, interval=0.2)
    finally:
        silent.close()
        idle.close()


def test_a_request_that_arrives_is_answered_whatever_the_cap(make_stack: StackFactory) -> None:
    """With a cap of 2, requests keep being served while slow connections come and go."""
    stack = make_stack(ZBMC_MAX_CONNECTIONS="2", ZBMC_REQUEST_READ_TIMEOUT_SECONDS="30")
    tenant = stack.tenant()
    client = tenant.client()
    with trickling(stack, 10) as socks:
        for _ in range(3):
            assert client.DescribeZones(models(V2026).DescribeZonesRequest()).zoneSet
        assert sum(not closed(sock) for sock in socks) <= 2
