"""Held response writes (``zbmc.writes``): a batch's responses are kept while its handlers run
and written back to back, one write per connection, and nothing is lost, reordered or left
behind by a close."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any, cast

from tests.harness import Stack, Tenant
from tests.test_batcher import Recorder
from zbmc.edge import Batcher
from zbmc.pipeline import Pipeline
from zbmc.writes import HeldTransport, Hold, hold

# --- the transport wrapper, against a recording transport --------------------------------------


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return 0


def held(hold: Hold) -> tuple[HeldTransport, Recording]:
    real = Recording()
    return HeldTransport(real, hold), real


def test_writes_go_straight_through_outside_a_hold() -> None:
    transport, real = held(Hold())
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"body")
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\n", b"body"]


def test_held_writes_leave_joined_at_the_release_in_the_order_they_were_made() -> None:
    shared = Hold()
    first, first_real = held(shared)
    second, second_real = held(shared)
    shared.start()
    first.write(b"head-1|")
    second.write(b"head-2|")
    first.write(memoryview(b"body-1"))
    second.write(bytearray(b"body-2"))
    assert first_real.writes == []
    assert second_real.writes == []
    assert first.get_write_buffer_size() == len(b"head-1|body-1")
    shared.release()
    assert first_real.writes == [b"head-1|body-1"]
    assert second_real.writes == [b"head-2|body-2"]
    first.write(b"after")  # the hold is over
    assert first_real.writes == [b"head-1|body-1", b"after"]


def test_a_close_during_a_hold_sends_what_was_held_first() -> None:
    shared = Hold()
    transport, real = held(shared)
    shared.start()
    transport.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{}")
    transport.close()
    assert real.writes == [b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{}"]
    assert real.closed
    shared.release()  # nothing twice
    assert len(real.writes) == 1


def test_an_abort_drops_what_was_held_and_a_closed_connection_gets_nothing() -> None:
    shared = Hold()
    aborted, aborted_real = held(shared)
    gone, gone_real = held(shared)
    shared.start()
    aborted.write(b"x")
    gone.write(b"y")
    aborted.abort()
    gone_real.closed = True  # the client went away while the batch ran
    shared.release()
    assert aborted_real.writes == []
    assert aborted_real.aborted
    assert gone_real.writes == []


def test_a_second_start_within_a_hold_keeps_it_and_one_release_ends_it() -> None:
    shared = Hold()
    transport, real = held(shared)
    shared.start()
    transport.write(b"a")
    shared.start()
    transport.write(b"b")
    shared.release()
    assert real.writes == [b"ab"]
    shared.release()
    transport.write(b"c")
    assert real.writes == [b"ab", b"c"]


def test_each_thread_has_its_own_hold() -> None:
    mine = hold()
    assert hold() is mine
    theirs: list[Hold] = []
    thread = threading.Thread(target=lambda: theirs.append(hold()))
    thread.start()
    thread.join()
    assert theirs[0] is not mine


def test_a_batch_s_handlers_write_into_one_hold_released_after_the_last_of_them() -> None:
    pipeline = Recorder()  # outcomes whose body is the call
    batcher = Batcher(cast(Pipeline, pipeline))
    reals = [Recording() for _ in range(3)]
    seen_by_handlers: list[list[bytes]] = []

    async def handler(call: str, real: Recording) -> None:
        transport = HeldTransport(real, hold())
        outcome = await batcher.submit(cast(Any, call))
        transport.write(b"head|")
        transport.write(outcome.body)
        seen_by_handlers.append(list(real.writes))  # nothing has left yet

    async def main() -> None:
        await asyncio.gather(*(handler(f"call-{i}", real) for i, real in enumerate(reals)))
        await asyncio.sleep(0)  # the release runs after the last handler

    asyncio.run(main())
    assert pipeline.batches == [["call-0", "call-1", "call-2"]]
    assert seen_by_handlers == [[], [], []]
    assert [real.writes for real in reals] == [[f"head|call-{i}".encode()] for i in range(3)]
    assert hold().holding is None


# --- the real server: responses on the wire ----------------------------------------------------


def _request(stack: Stack, tenant: Tenant, *, close: bool = False) -> bytes:
    """DescribeZones, signed like the SDK signs, as raw HTTP/1.1 bytes."""
    sent, body = stack.prepared(
        {}, action="DescribeZones", key=(tenant.access_key_id, tenant.access_key_password)
    )
    headers = "".join(f"{name}: {value}\r\n" for name, value in sent.items())
    if close:
        headers += "Connection: close\r\n"
    head = f"POST /api/v2/bmc HTTP/1.1\r\n{headers}Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _read_responses(sock: socket.socket, count: int) -> list[tuple[str, dict[str, Any]]]:
    """Read ``count`` HTTP/1.1 responses with Content-Length: (status line, JSON body)."""
    buffer = b""
    found: list[tuple[str, dict[str, Any]]] = []
    while len(found) < count:
        head_end = buffer.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buffer[:head_end].decode("latin-1").split("\r\n")
            length = next(
                int(line.split(":", 1)[1])
                for line in head
                if line.lower().startswith("content-length:")
            )
            end = head_end + 4 + length
            if len(buffer) >= end:
                found.append((head[0], json.loads(buffer[head_end + 4 : end])))
                buffer = buffer[end:]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(found)} of {count} responses"
        buffer += chunk
    assert buffer == b"", "bytes after the last response"
    return found


def test_pipelined_requests_get_every_response_in_order(stack: Stack, tenant: Tenant) -> None:
    with socket.create_connection(("127.0.0.1", stack.port), timeout=30) as sock:
        sock.sendall(b"".join(_request(stack, tenant) for _ in range(5)))
        responses = _read_responses(sock, 5)
    assert [status for status, _ in responses] == ["HTTP/1.1 200 OK"] * 5
    assert len({body["requestId"] for _, body in responses}) == 5
    assert all(body["response"]["zoneSet"] for _, body in responses)


def test_connection_close_gets_the_whole_response_then_the_close(
    stack: Stack, tenant: Tenant
) -> None:
    with socket.create_connection(("127.0.0.1", stack.port), timeout=30) as sock:
        sock.sendall(_request(stack, tenant, close=True))
        [(status, body)] = _read_responses(sock, 1)
        assert sock.recv(1) == b""  # then the server closed the connection
    assert status == "HTTP/1.1 200 OK"
    assert body["response"]["zoneSet"]


def test_requests_on_many_connections_at_once_each_get_their_own_response(
    stack: Stack, tenant: Tenant
) -> None:
    sockets = [socket.create_connection(("127.0.0.1", stack.port), timeout=30) for _ in range(24)]
    try:
        for sock in sockets:  # all in flight together: they share batches
            sock.sendall(_request(stack, tenant))
        bodies = [_read_responses(sock, 1)[0][1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    assert len({body["requestId"] for body in bodies}) == 24
    assert all(body["response"]["zoneSet"] for body in bodies)
