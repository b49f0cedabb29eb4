"""``zbmc serve``'s HTTP/1.1 protocol: uvicorn's httptools protocol, with three additions.

- **Held writes** (``zbmc.writes``): the transport is wrapped so that a batch's responses leave
  back to back.
- **Slow clients** (``zbmc.connections``): a deadline for reading each request and a cap on open
  connections.
- **The direct lane.** An API request (``POST /api/v2/{service}``) that has fully arrived goes
  straight from the parser to the edge's batcher, and its answer straight to the transport,
  without uvicorn's ASGI request cycle: no task, no ASGI messages, no middleware. That cycle
  cost about a fifth of a signed ModifyInstanceBandwidth's CPU (docs/performance.md). The bytes
  on the wire are the same (status line, uvicorn's ``date`` header, the edge's headers, the
  body), so are the access log and the metrics.

The lane takes only what it answers exactly like the ASGI path: a POST to an API path, with a
``Content-Length`` of at most the body limit and 64 KiB, no ``Transfer-Encoding``, no
``Expect: 100-continue``, no upgrade, no percent-escape or query in its target, arriving while
no other request of its connection is in progress; and only when the edge needs nothing
asynchronous (no rate limiting, which may wait for Redis). Everything else, errors included,
takes the ASGI path. A request pipelined behind a request in the lane waits in uvicorn's own
queue of pipelined requests, which the lane's response releases like any other (HTTP/1.1
answers in order).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any, cast

from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from zbmc.connections import ConnectionGuard
from zbmc.edge import API_PREFIX, Edge, log_refusal, response_headers
from zbmc.errors import ApiError, InternalServerError
from zbmc.pipeline import Call, Outcome, error_outcome, new_request_id
from zbmc.writes import HeldTransport, hold

_API_PREFIX = API_PREFIX.encode()
log = logging.getLogger("zbmc.access")
# uvicorn's default headers (a new list each second) and their bytes
_head: list[Any] = [None, b""]


class _NoEvent:
    """What uvicorn's parser callbacks and ``connection_lost`` set on a request in progress;
    a request in the lane has nobody waiting for it."""

    def set(self) -> None:
        pass


class DirectRequest:
    """A request in the direct lane: it stands where uvicorn keeps its request cycle
    (``protocol.cycle``), with the attributes uvicorn's callbacks use (the body gathered by
    ``on_body``, ``disconnected`` set by ``connection_lost``, ``keep_alive`` cleared by a
    graceful shutdown, ``response_complete`` for the pipelined requests behind it)."""

    __slots__ = (
        "arrived",
        "body",
        "disconnected",
        "headers",
        "keep_alive",
        "path",
        "response_complete",
        "route",
    )

    message_event = _NoEvent()

    def __init__(
        self,
        route: tuple[str, str],
        path: str,
        headers: dict[bytes, bytes],
        keep_alive: bool,
    ) -> None:
        self.route = route
        self.path = path
        self.headers = headers
        self.keep_alive = keep_alive
        self.arrived = time.perf_counter()
        self.body = bytearray()
        self.disconnected = False
        self.response_complete = False


def _edge_of(app: Any) -> Edge | None:
    """The zbmc edge inside uvicorn's middleware, if it can take requests directly."""
    for _ in range(8):
        if isinstance(app, Edge):
            return app if app.direct else None
        app = getattr(app, "app", None)
    return None


class ZbmcHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol with held writes, the slow-client limits and the
    direct lane for API requests (module docstring)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports implement the interface without deriving from it)
        real = cast(asyncio.Transport, transport)
        super().connection_made(HeldTransport(real, hold()))
        self.guard = ConnectionGuard(self.transport, self.loop)
        self.edge = _edge_of(self.app)
        if not self.guard.admit():
            self.transport.abort()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.guard.reading()

    def on_headers_complete(self) -> None:
        if self.edge is not None and (self.cycle is None or self.cycle.response_complete):
            direct = self._direct(self.edge)
            if direct is not None:
                self.cycle = direct  # type: ignore[assignment]
                return
        super().on_headers_complete()

    def _direct(self, edge: Edge) -> DirectRequest | None:
        """The request as one for the direct lane, or None if it takes the ASGI path."""
        parser = self.parser
        url = self.url
        if (
            parser.get_method() != b"POST"
            or not url.startswith(_API_PREFIX)
            or b"%" in url
            or b"?" in url
            or b"#" in url
            or self.expect_100_continue
            or parser.should_upgrade()
        ):
            return None
        # of a repeated header the first one counts (as on the ASGI path); a request that
        # repeats one (never the SDKs) takes the ASGI path, where a repeated length is refused
        headers = dict(reversed(self.headers))
        if len(headers) != len(self.headers) or b"transfer-encoding" in headers:
            return None
        length = headers.get(b"content-length", b"")
        if not length.isdigit() or int(length) > min(edge.limit, HIGH_WATER_LIMIT):
            return None
        path = url.decode("ascii")
        route = edge.route(path)
        if route is None:
            return None
        keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        return DirectRequest(route, path, headers, keep_alive)

    def on_message_complete(self) -> None:
        request: object = self.cycle
        if type(request) is DirectRequest:
            self.guard.read()
            self._submit(request)
            return
        super().on_message_complete()
        self.guard.read()

    def _submit(self, request: DirectRequest) -> None:
        edge = cast(Edge, self.edge)
        try:
            call = edge.call_for(*request.route, request.headers, bytes(request.body))
        except Exception:  # a bug: still answer, so that the connection is not left waiting
            log.exception("an API request could not be read")
            self._refuse(request, InternalServerError())
            return
        if isinstance(call, ApiError):
            request_id = self._refuse(request, call)
            headers = list(request.headers.items())
            log_refusal(request_id, call, headers, "POST", request.path, request.arrived)
            return
        started = time.perf_counter()
        future = edge.batcher.submit(call)
        future.add_done_callback(functools.partial(self._answered, request, call, started))

    def _refuse(self, request: DirectRequest, error: ApiError) -> str:
        """Answers ``error`` under a new request id, which it returns."""
        request_id = new_request_id()
        self._respond(request, request_id, error_outcome(request_id, error))
        return request_id

    def _answered(
        self,
        request: DirectRequest,
        call: Call,
        started: float,
        future: asyncio.Future[Outcome],
    ) -> None:
        try:
            outcome = future.result()  # the batcher answers every call, a failed batch with 500s
        except BaseException:  # cancelled: nothing cancels it today; never leave it unanswered
            log.exception("an API request lost its answer")
            outcome = error_outcome(call.request_id, InternalServerError())
        self._respond(request, call.request_id, outcome)
        observe = cast(Edge, self.edge).observe
        if observe is not None:
            observe(call, outcome, time.perf_counter() - started)

    def _respond(self, request: DirectRequest, request_id: str, outcome: Outcome) -> None:
        """What uvicorn's request cycle writes for the edge's two ASGI messages."""
        request.response_complete = True
        if request.disconnected or self.transport.is_closing():
            return
        defaults = self.server_state.default_headers  # uvicorn's: the date, renewed each second
        if defaults is not _head[0]:
            _head[:] = defaults, b"".join(b"%s: %s\r\n" % header for header in defaults)
        content = [STATUS_LINE[outcome.status], _head[1]]
        for name, value in response_headers(request_id, outcome):
            content += (name, b": ", value, b"\r\n")
        if not request.keep_alive:
            content.append(b"connection: close\r\n")
        content += (b"\r\n", outcome.body)
        self.transport.write(b"".join(content))
        if not request.keep_alive:
            self.transport.close()
        self.on_response_complete()

    def on_response_complete(self) -> None:
        """uvicorn's, except that the keep-alive deadline is the guard's (``zbmc.connections``
        keeps every deadline of the event loop with one timer, not one timer per response)."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:  # the next request has arrived: it runs now, the connection is busy
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self.guard.idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.lost()
        super().connection_lost(exc)
