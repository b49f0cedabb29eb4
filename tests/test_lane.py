"""The direct lane of ``zbmc serve``'s HTTP protocol (``zbmc.protocol``): which requests take it,
and that its answers are, byte for byte, what the ASGI path answers.

Driven in process: uvicorn's protocol class with a recording transport and the real ``Edge``
over a stand-in pipeline, fed raw HTTP/1.1 bytes. The real server takes the lane for every
ordinary API request, so the rest of the suite drives it end to end.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from tests.test_writes import Recording
from zbmc.edge import Edge
from zbmc.pipeline import Call, Outcome, Pipeline
from zbmc.protocol import DirectRequest, ZbmcHttpProtocol

DATE = (b"date", b"Sun, 06 Dec 2026 20:00:00 GMT")
BODY = b'{"requestId":"x","response":{}}'


class Answers:
    """A stand-in pipeline: records each call and answers 200 with a fixed body."""

    group_commit = False
    actions: dict[Any, Any] = {}  # noqa: RUF012 (read only)

    def __init__(self, limit: int = 1024 * 1024) -> None:
        self.settings = SimpleNamespace(max_body_bytes=limit, group_commit_wait_seconds=0.0)
        self.calls: list[Call] = []

    def handle_batch(self, calls: list[Call]) -> list[Outcome]:
        self.calls.extend(calls)
        return [Outcome(200, BODY, "OK") for _ in calls]


class Peer(Recording):
    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )


async def _shell(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("the shell serves no API path")


def make_edge(
    pipeline: Answers, admit: Callable[[Call, str], Awaitable[bool]] | None = None
) -> Edge:
    return Edge(cast(Pipeline, pipeline), _shell, admit=admit)


def connect(edge: Edge) -> tuple[ZbmcHttpProtocol, Peer]:
    config = Config(app=edge, http=ZbmcHttpProtocol, log_config=None)
    config.load()
    state = ServerState()
    state.default_headers = [DATE]
    protocol = ZbmcHttpProtocol(config=config, server_state=state, app_state={})
    peer = Peer()
    protocol.connection_made(peer)
    return protocol, peer


def request(
    target: str = "/api/v2/bmc",
    *,
    method: str = "POST",
    body: bytes = b"{}",
    version: str = "1.1",
    extra: str = "",
    length: bool = True,
) -> bytes:
    head = (
        f"{method} {target} HTTP/{version}\r\nHost: 127.0.0.1:8080\r\n"
        "Content-Type: application/json\r\nX-ZC-Action: DescribeZones\r\n"
        "X-ZC-Version: 2026-02-01\r\nAuthorization: ZC2-HMAC-SHA256 Credential=k\r\n"
        f"{extra}" + (f"Content-Length: {len(body)}\r\n" if length else "") + "\r\n"
    )
    return head.encode() + body


def in_lane(protocol: ZbmcHttpProtocol) -> bool:
    request: object = protocol.cycle
    return isinstance(request, DirectRequest)


async def settle() -> None:
    for _ in range(5):  # the batch's turn, the answers', the release of the held writes
        await asyncio.sleep(0)


def lane_of(raw: bytes, edge: Edge | None = None) -> tuple[str, bytes]:
    """Which way the request went ("direct" or "asgi") and every byte written back."""

    async def main() -> tuple[str, bytes]:
        protocol, peer = connect(edge or make_edge(Answers()))
        head, _, rest = raw.partition(b"\r\n\r\n")
        protocol.data_received(head + b"\r\n\r\n")  # the headers: the lane is chosen
        way = "direct" if in_lane(protocol) else "asgi"
        protocol.data_received(rest)
        await settle()
        await asyncio.sleep(0.01)  # the ASGI task's awaits
        await settle()
        return way, b"".join(peer.writes)

    return asyncio.run(asyncio.wait_for(main(), timeout=5))


def _normalised(answer: bytes) -> bytes:
    return re.sub(
        rb"T[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}", b"ID", answer
    )


def test_an_api_request_takes_the_lane_and_is_answered_like_the_asgi_path() -> None:
    way, direct = lane_of(request())
    assert way == "direct"
    # the same request with a query string takes the ASGI path (the query is ignored there)
    way, asgi = lane_of(request("/api/v2/bmc?x=1"))
    assert way == "asgi"
    assert _normalised(direct) == _normalised(asgi)
    assert direct.startswith(b"HTTP/1.1 200 OK\r\ndate: Sun, 06 Dec 2026 20:00:00 GMT\r\n")
    assert b"\r\ncontent-type: application/json; charset=utf-8\r\n" in direct
    assert b"\r\nx-zc-request-id: T" in direct
    assert direct.endswith(b"\r\n\r\n" + BODY)


def test_http_1_0_in_the_lane_is_answered_with_connection_close_like_the_asgi_path() -> None:
    way, direct = lane_of(request(version="1.0"))
    assert way == "direct"
    _, asgi = lane_of(request("/api/v2/bmc?x", version="1.0"))
    assert b"\r\nconnection: close\r\n" in direct
    assert _normalised(direct) == _normalised(asgi)


def test_a_refusal_before_the_pipeline_is_answered_like_the_asgi_path() -> None:
    disagree = request("/api/v2/bmc/DescribeImages")  # X-ZC-Action says DescribeZones
    way, direct = lane_of(disagree)
    assert way == "direct"
    _, asgi = lane_of(disagree.replace(b"DescribeImages", b"DescribeImages?x", 1))
    assert direct.startswith(b"HTTP/1.1 400 ")
    assert b'"INVALID_ACTION"' in direct
    assert _normalised(direct) == _normalised(asgi)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (request(method="PUT"), "not a POST"),
        (request("/api/v2/bmc?x=1"), "a query"),
        (request("/api/v2/b%6Dc"), "a percent-escape"),
        (request("/api/v2/nope"), "no such service"),
        (request("/api/v2/bmc/a/b"), "no such path"),
        (
            request(
                extra="Transfer-Encoding: chunked\r\n", length=False, body=b"2\r\n{}\r\n0\r\n\r\n"
            ),
            "chunked",
        ),
        (request(length=False, body=b""), "no Content-Length"),
        (request(extra="Expect: 100-continue\r\n"), "Expect: 100-continue"),
        (request(extra="Content-Length: 2\r\n"), "a repeated Content-Length"),
        (request(body=b" " * 70000), "over 64 KiB"),
    ],
)
def test_what_the_lane_leaves_to_the_asgi_path(raw: bytes, why: str) -> None:
    way, answer = lane_of(raw)
    assert way == "asgi", why
    assert answer.startswith(b"HTTP/1.1 "), why  # and it is answered


def test_a_body_over_the_limit_is_left_to_the_asgi_path_and_refused_there() -> None:
    way, answer = lane_of(request(body=b"{}   "), make_edge(Answers(limit=4)))
    assert way == "asgi"
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_with_rate_limiting_nothing_takes_the_lane() -> None:
    async def admit(call: Call, host: str) -> bool:
        return True

    way, answer = lane_of(request(), make_edge(Answers(), admit))
    assert way == "asgi"
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_request_pipelined_behind_one_in_the_lane_waits_for_its_answer() -> None:
    pipeline = Answers()

    async def main() -> bytes:
        protocol, peer = connect(make_edge(pipeline))
        protocol.data_received(request(body=b'{"n":1}') + request(body=b'{"n":2}'))
        assert not in_lane(protocol)  # the second one is queued
        await settle()
        await asyncio.sleep(0.01)
        await settle()
        return b"".join(peer.writes)

    answers = asyncio.run(asyncio.wait_for(main(), timeout=5))
    assert answers.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert [call.credentials.body for call in pipeline.calls] == [b'{"n":1}', b'{"n":2}']


def test_an_answer_for_a_connection_that_went_away_is_dropped() -> None:
    async def main() -> tuple[Peer, list[Call]]:
        pipeline = Answers()
        protocol, peer = connect(make_edge(pipeline))
        protocol.data_received(request())
        protocol.connection_lost(None)  # before its batch ran
        await settle()
        return peer, pipeline.calls

    peer, calls = asyncio.run(asyncio.wait_for(main(), timeout=5))
    assert len(calls) == 1  # the call ran (it may have changed something)
    assert peer.writes == []
