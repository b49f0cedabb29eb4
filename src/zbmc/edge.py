"""The ASGI edge: reads headers and the raw body (with a size limit), builds the immutable Call,
runs the pipeline and writes the JSON envelope. The only async code; everything below is sync.

``/api/v2/{service}`` is served by a plain ASGI callable (measured to be much cheaper than a
framework route); everything else goes to the Starlette shell, whose errors are rendered in the
same JSON envelope.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from zbmc import connections, logs
from zbmc.auth import Credentials
from zbmc.errors import (
    ApiError,
    BodyTooLarge,
    InternalServerError,
    InvalidAction,
    MethodNotAllowed,
    PathNotFound,
    RequestLimitExceeded,
)
from zbmc.pipeline import Call, Outcome, Pipeline, error_outcome, new_request_id
from zbmc.registry import SERVICES
from zbmc.writes import hold

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIX = "/api/v2/"
log = logging.getLogger("zbmc.access")


class _TooLarge(Exception):
    pass


def response_headers(request_id: str, outcome: Outcome) -> list[tuple[bytes, bytes]]:
    """The headers of an API response (besides uvicorn's ``date``)."""
    return [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(outcome.body)).encode()),
        (b"x-zc-request-id", request_id.encode()),
    ]


async def send_outcome(send: Send, request_id: str, outcome: Outcome) -> None:
    start = {
        "type": "http.response.start",
        "status": outcome.status,
        "headers": response_headers(request_id, outcome),
    }
    await send(start)
    await send({"type": "http.response.body", "body": outcome.body})


def log_refusal(
    request_id: str,
    error: ApiError,
    headers: list[tuple[bytes, bytes]],
    method: str,
    path: str,
    arrived: float,
) -> None:
    """The access log's line for a request refused before the pipeline."""
    action = next((_text(v) for k, v in headers if k == b"x-zc-action"), None)
    seconds = time.perf_counter() - arrived
    logs.log_request(
        request_id, None, action, error.code, error.status, seconds, method=method, path=path
    )


async def send_error(send: Send, error: ApiError, scope: Scope, arrived: float) -> None:
    """A refusal before the pipeline, answered and logged with its request id."""
    request_id = new_request_id()
    await send_outcome(send, request_id, error_outcome(request_id, error))
    log_refusal(request_id, error, scope["headers"], scope["method"], scope["path"], arrived)


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


# Requests sharing one commit at most (the first of them waits for all to run).
MAX_BATCH = 64
# How many of the latest batches set the size a new batch waits for.
RECENT_BATCHES = 8
# About how long one batch may keep the event loop (estimated from the calls before it): far
# above a batch of 64 Modify calls (~15 ms of CPU on a loaded machine), far below one of 64
# DescribeInstances pages.
BATCH_SECONDS = 0.05
# How long a batch may wait, from its first call, while new connections keep arriving. uvloop
# (libuv) accepts one connection per turn of the event loop, and under load a turn runs a whole
# batch: the n-th connection of a burst (a client pool opening 64 connections) waited about n
# batches before its first request was even read (docs/performance.md). 2 ms let about 30 of a
# burst of 64 in on a slower machine (p99 of DescribeInstances at 64 connections 0.4-0.9 s);
# 10 ms lets all in, and bounds what a client opening a connection per request waits.
ACCEPT_SECONDS = 0.01


def _failed(calls: list[Call]) -> list[Outcome]:
    """In an ``except`` block around ``handle_batch``, which turns every error into an outcome:
    should it fail anyway, each call gets a 500, so that no request is left waiting."""
    log.exception("a batch of %d requests failed", len(calls))
    return [error_outcome(call.request_id, InternalServerError()) for call in calls]


class Batcher:
    """Runs the calls that became ready in the same turn of the event loop together.

    Every request handler submits its call and waits; the first submission of a turn schedules
    one run, after the handlers already scheduled in that turn, of everything submitted by
    then (``Pipeline.handle_batch``, which shares one commit among them). Their responses
    then go out back to back: on loopback, a write that finds the client asleep pays for waking
    it, and writes in a row wake it once (``zbmc.writes``; the guarantees: docs/reliability.md).

    With a shared commit, a batch smaller than the largest of the latest ``RECENT_BATCHES``
    waits, at most ``wait`` seconds from its first call, for the requests on their way (the
    idea of PostgreSQL's ``commit_delay``): the run is put back on the event loop's ready queue
    (``call_soon``), so the loop keeps reading the connections meanwhile and what arrives joins
    the batch. A commit and the per-batch work cost about as much as two requests, and with 16
    concurrent clients half of the batches held one to three requests (with the wait: nearly
    all hold 16; docs/performance.md). A lone client never waits: its batches all hold one.

    While connections are being opened (one was admitted since the last look), the batch
    likewise waits, up to ``ACCEPT_SECONDS``, so that the loop's next turns accept the rest of
    the burst and read their first requests, which then join it.

    With ``readers`` (PostgreSQL), the calls of reader actions (``ActionSpec.reader``: a page of
    DescribeInstances) are batched apart and run in those threads, a batch per thread at a time,
    while the event loop goes on: one batch's waits for PostgreSQL overlap another's Python, where
    on the loop the process sat idle through every round trip (docs/performance.md). The other
    calls stay on the loop: short calls with a round trip each only hand the GIL back and forth
    in a thread (measured: -14 % on ModifyInstanceBandwidth).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        wait: float = 0.0,
        connections_made: Callable[[], int] = connections.admitted,
        readers: int = 0,
    ) -> None:
        self.pipeline = pipeline
        self.wait = wait
        self._readers = (
            ThreadPoolExecutor(readers, thread_name_prefix="zbmc-reader") if readers else None
        )
        self._readers_free = readers  # reader threads without a batch
        # the (service, action) pairs whose calls go to the reader threads
        self._reader_actions = (
            frozenset(key for key, spec in pipeline.actions.items() if spec.reader)
            if readers
            else frozenset()
        )
        self._reading: list[tuple[Call, asyncio.Future[Outcome]]] = []
        self._connections_made = connections_made
        self._made = connections_made()  # as of the latest look
        self._pending: list[tuple[Call, asyncio.Future[Outcome]]] = []
        self._first = 0.0  # when the first call of the pending batch was submitted
        self._recent: collections.deque[int] = collections.deque([1], maxlen=RECENT_BATCHES)
        self._per_call = 0.0  # seconds per call of the latest batches (moving average)

    def submit(self, call: Call) -> asyncio.Future[Outcome]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        if self._reader_actions and (call.service, call.action) in self._reader_actions:
            if not self._reading:
                loop.call_soon(self._run_readers)
            self._reading.append((call, future))
            return future
        if not self._pending:
            self._first = time.perf_counter()
            loop.call_soon(self._run)
        self._pending.append((call, future))
        return future

    def _limit(self) -> int:
        """How many calls the next batch takes: ``MAX_BATCH``, or fewer if that many would keep
        the event loop longer than ``BATCH_SECONDS``. Between two batches the loop reads and
        writes the connections; a batch of 64 DescribeInstances pages kept it for half a
        second, while the previous batch's answers (140 KB each) waited in their transports, and
        at 64 connections p99 was 7-8 x p50 (docs/performance.md)."""
        if self._per_call * MAX_BATCH <= BATCH_SECONDS:
            return MAX_BATCH
        return max(1, int(BATCH_SECONDS / self._per_call))

    def _run(self) -> None:
        loop = asyncio.get_running_loop()
        limit = self._limit()
        count = min(len(self._pending), limit)
        made = self._connections_made()
        if made != self._made:
            self._made = made
            if time.perf_counter() - self._first < ACCEPT_SECONDS:
                loop.call_soon(self._run)  # the next turn accepts the next connection
                return
        if (
            self.wait
            and count < min(max(self._recent), limit)
            and time.perf_counter() - self._first < self.wait
        ):
            loop.call_soon(self._run)  # after the handlers of what arrived meanwhile
            return
        self._recent.append(count)
        batch, self._pending = self._pending[:limit], self._pending[limit:]
        if self._pending:
            loop.call_soon(self._run)
        calls = [call for call, _ in batch]
        # CPU time of this thread: on a busy machine the wall time of a batch counts the time
        # the thread waited for a core, and the limit then cut batches of cheap calls short
        started = time.thread_time()
        try:
            outcomes = self.pipeline.handle_batch(calls)
            # a moving average, so that one slow batch does not make the next ones tiny
            cost = (time.thread_time() - started) / len(calls)
            self._per_call += (cost - self._per_call) / 4
        except Exception:
            outcomes = _failed(calls)
        self._deliver(batch, outcomes)

    def _run_readers(self) -> None:
        """The reader calls submitted so far, as one batch, to a free reader thread (or, when
        none is free, to the next thread that finishes)."""
        assert self._readers is not None
        if not self._reading or not self._readers_free:
            return
        batch, self._reading = self._reading[:MAX_BATCH], self._reading[MAX_BATCH:]
        self._readers_free -= 1
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(
            self._readers, self.pipeline.handle_batch, [call for call, _ in batch]
        )
        done.add_done_callback(functools.partial(self._readers_done, batch))
        if self._reading:
            loop.call_soon(self._run_readers)

    def _readers_done(
        self,
        batch: list[tuple[Call, asyncio.Future[Outcome]]],
        done: asyncio.Future[list[Outcome]],
    ) -> None:
        self._readers_free += 1
        try:
            outcomes = done.result()
        except Exception:
            outcomes = _failed([call for call, _ in batch])
        self._deliver(batch, outcomes)
        self._run_readers()

    def close(self) -> None:
        """Waits for the reader threads' batches (their connections close with the pipeline)."""
        if self._readers is not None:
            self._readers.shutdown(wait=True)

    def _deliver(
        self, batch: list[tuple[Call, asyncio.Future[Outcome]]], outcomes: list[Outcome]
    ) -> None:
        """Each call's outcome to its handler (a handler cancelled meanwhile has gone)."""
        loop = asyncio.get_running_loop()
        # The handlers resume in this order in the next turn, and the release runs after them
        # all: their responses leave back to back (zbmc.writes).
        held = hold()
        held.start()
        try:
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():  # the client went away (the handler was cancelled)
                    future.set_result(outcome)
        finally:  # a hold left on would keep every later response of this loop waiting
            loop.call_soon(held.release)


class Edge:
    def __init__(
        self,
        pipeline: Pipeline,
        shell: ASGIApp,
        observe: Callable[[Call, Outcome, float], None] | None = None,
        admit: Callable[[Call, str], Awaitable[bool]] | None = None,
        readers: int = 0,
    ) -> None:
        self.pipeline = pipeline
        self.shell = shell
        self.limit = pipeline.settings.max_body_bytes
        self.observe = observe
        # Rate limiting (zbmc.ratelimit): called with the client host, before any database work.
        self.admit = admit
        # Waiting for more calls only pays where they share a commit.
        wait = pipeline.settings.group_commit_wait_seconds if pipeline.group_commit else 0.0
        self.batcher = Batcher(pipeline, wait, readers=readers)

    @property
    def direct(self) -> bool:
        """Whether the HTTP protocol may hand this edge its API requests without the ASGI
        request cycle (``zbmc.protocol``): everything an API request needs is sync here, except
        rate limiting, whose check may wait for Redis."""
        return self.admit is None

    @staticmethod
    def route(path: str) -> tuple[str, str] | None:
        """(service, action named by the path or "") of an API path; None if no API path."""
        # zbmc extension: /api/v2/bmc/{Action} names the action like X-ZC-Action (one path per
        # action is what the OpenAPI document can describe).
        service, slash, path_action = path[len(API_PREFIX) :].partition("/")
        if service not in SERVICES or "/" in path_action or (slash and not path_action):
            return None
        return service, path_action

    def call_for(
        self, service: str, path_action: str, headers: dict[bytes, bytes], body: bytes
    ) -> Call | ApiError:
        """The call of an API request that has fully arrived (header names lower-case, the
        first of a repeated header kept), or what refuses it before the pipeline."""
        action = _text(headers.get(b"x-zc-action"))
        if path_action and action and action != path_action:
            disagree = f"X-ZC-Action `{action}` disagrees with the path action `{path_action}`."
            return InvalidAction(disagree)
        return Call(
            request_id=new_request_id(),
            service=service,
            action=action or path_action or None,
            version=_text(headers.get(b"x-zc-version")),
            credentials=Credentials(
                authorization=_text(headers.get(b"authorization")),
                timestamp=_text(headers.get(b"x-zc-timestamp")),
                content_type=_text(headers.get(b"content-type")) or "",
                host=_text(headers.get(b"host")) or "",
                body=body,
                headers=headers,
            ),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.shell(scope, receive, send)
            return
        arrived = time.perf_counter()
        route = self.route(scope["path"])
        if route is None:
            await send_error(send, PathNotFound(path=scope["path"]), scope, arrived)
            return
        if scope["method"] != "POST":
            await send_error(send, MethodNotAllowed(method=scope["method"]), scope, arrived)
            return
        # ASGI servers send header names lower-cased; of a repeated header the first one counts.
        headers: dict[bytes, bytes] = dict(reversed(scope["headers"]))
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await send_error(send, BodyTooLarge(limit=self.limit), scope, arrived)
            return
        try:
            body = await _read_body(receive, self.limit)
        except _TooLarge:
            await send_error(send, BodyTooLarge(limit=self.limit), scope, arrived)
            return
        call = self.call_for(*route, headers, body)
        if isinstance(call, ApiError):
            await send_error(send, call, scope, arrived)
            return
        started = time.perf_counter()
        if self.admit is not None and not await self.admit(call, (scope.get("client") or ("",))[0]):
            outcome = error_outcome(call.request_id, RequestLimitExceeded())
        else:
            outcome = await self.batcher.submit(call)
        await send_outcome(send, call.request_id, outcome)
        if self.observe is not None:
            self.observe(call, outcome, time.perf_counter() - started)


def _text(value: bytes | None) -> str | None:
    # Headers are bytes on the wire; latin-1 maps every byte to one character, so the value
    # signed by the client is reproduced exactly.
    return None if value is None else value.decode("latin-1")
