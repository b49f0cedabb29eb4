"""Slow clients: how long a request may take to arrive, and how many connections a process keeps.

uvicorn closes a keep-alive connection that stays idle after a response (``timeout_keep_alive``),
but puts no deadline on reading a request: a connection that sends nothing, or trickles its
headers a byte at a time, stays open for ever, and 2 x 10 000 of them exhausted the server's
file descriptors (issue 16). So each connection of ``zbmc serve`` has a ``ConnectionGuard``:

- **Keep-alive.** A connection that stays idle after a response for ``keep_alive_seconds``
  (default 5) is closed, as uvicorn does; the guard keeps this deadline in place of uvicorn's
  timer (``zbmc.protocol``).

- **Read deadline.** From the moment a connection opens, or a new request's first byte arrives,
  the whole request (headers and body) must arrive within ``request_read_timeout_seconds``
  (default 10; the SDKs send a request in one piece); otherwise the connection is closed.
- **Connection cap.** Each API process keeps at most ``max_connections`` open (default 1000,
  lowered to fit the process's file-descriptor limit). A new connection beyond the cap evicts the
  connection that has waited longest without a request being processed (still reading one, or
  idle between requests); a request that has fully arrived is never cut off. If every
  connection has a request in progress, the new connection is closed instead.

Both deadlines are kept for all connections of an event loop by one timer, which looks at them
every twentieth of the shorter timeout (at least every 50 ms): a connection is closed that much
after its deadline at most. So slow or idle clients can hold at most the cap, and only until a
quicker client needs their place: a client that sends its request at once is served. The
figures are in docs/reliability.md; the limits are documented in docs/security.md and
docs/operations.md.
"""

from __future__ import annotations

import asyncio
import functools
import resource
import threading
from typing import NamedTuple

from zbmc.settings import load_settings

# File descriptors kept for everything else a process opens (database, logs, metrics files).
RESERVED_FDS = 64


class Limits(NamedTuple):
    request_read_timeout: float
    max_connections: int
    keep_alive: float

    @property
    def sweep_interval(self) -> float:
        """How often the deadlines are looked at: a connection is closed at most this long
        after its deadline (a twentieth of the shorter timeout, at least 50 ms)."""
        return max(0.05, min(self.request_read_timeout, self.keep_alive) / 20)


@functools.cache
def limits() -> Limits:
    """The limits of this process, from its ``ZBMC_*`` environment (``zbmc serve`` exports its
    flags there before it starts the API processes)."""
    settings = load_settings()
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = settings.max_connections
    if soft != resource.RLIM_INFINITY:
        cap = max(1, min(cap, soft - RESERVED_FDS))
    return Limits(settings.request_read_timeout_seconds, cap, settings.keep_alive_seconds)


class _Waiting:
    """The connections of this thread's event loop: those that have no request in progress,
    oldest first (a dict keeps insertion order), and the two deadlines, each a dict of start
    times in the order they started, so the first entry is always the next to expire.

    One timer per event loop looks at the deadlines (``sweep``) instead of a timer per request
    and one per response: arming and cancelling those cost about 3.5 µs per request
    (docs/performance.md)."""

    def __init__(self) -> None:
        self.guards: dict[ConnectionGuard, None] = {}
        self.reading: dict[ConnectionGuard, float] = {}  # read deadline: from the request's start
        self.idle: dict[ConnectionGuard, float] = {}  # keep-alive: from the response's end
        self.open = 0
        self.admitted = 0  # connections admitted so far
        self._sweep: asyncio.TimerHandle | None = None
        self._sweep_loop: asyncio.AbstractEventLoop | None = None

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        # (a thread runs one event loop in the server; tests run one after another)
        if self._sweep is None or self._sweep_loop is not loop:
            self._sweep_loop = loop
            self._sweep = loop.call_later(limits().sweep_interval, self.sweep, loop)

    def sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Closes the connections past a deadline; looks again later while any deadline runs."""
        if loop is not self._sweep_loop:
            return  # an earlier loop's
        self._sweep = None
        now, limit = loop.time(), limits()
        # a request that does not arrive in time is aborted (its descriptor is freed now); an
        # idle connection is closed gracefully, as uvicorn's keep-alive timer did
        for deadlines, timeout, end in (
            (self.reading, limit.request_read_timeout, ConnectionGuard.close),
            (self.idle, limit.keep_alive, ConnectionGuard.expire),
        ):
            while deadlines:
                guard, started = next(iter(deadlines.items()))
                if started > now - timeout:
                    break
                end(guard)  # (which takes the guard out of ``deadlines``)
        if self.reading or self.idle:
            self.watch(loop)


_local = threading.local()


def _waiting() -> _Waiting:
    found: _Waiting | None = getattr(_local, "waiting", None)
    if found is None:
        found = _local.waiting = _Waiting()
    return found


def admitted() -> int:
    """How many connections this thread's event loop has admitted so far (``zbmc.edge.Batcher``
    lets a burst of new connections in before it runs a batch)."""
    return _waiting().admitted


class ConnectionGuard:
    """The read deadline, the keep-alive deadline and the cap, for one connection (driven by
    the HTTP protocol)."""

    __slots__ = ("_busy", "_counted", "_loop", "_transport", "_waiting")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._waiting = _waiting()
        self._counted = False
        self._busy = False  # a request has arrived and its response is not complete

    def admit(self) -> bool:
        """A new connection: make room if the cap is reached; False if there is none."""
        waiting = self._waiting
        if waiting.open >= limits().max_connections:
            if not waiting.guards:
                return False
            next(iter(waiting.guards)).close()  # the one waiting longest
        waiting.open += 1
        waiting.admitted += 1
        self._counted = True
        self.reading()
        return True

    def reading(self) -> None:
        """A request is to begin or is arriving: the read deadline runs (from the first call:
        the connection's opening for its first request), the keep-alive deadline stops."""
        waiting = self._waiting
        if self not in waiting.reading:
            waiting.idle.pop(self, None)
            waiting.reading[self] = self._loop.time()
            waiting.watch(self._loop)
        if not self._busy:
            self._wait()

    def read(self) -> None:
        """The request has arrived: it is processed, whatever the time."""
        self._waiting.reading.pop(self, None)
        self._busy = True
        self._waiting.guards.pop(self, None)

    def idle(self) -> None:
        """The response is complete and no request is queued behind it: the connection may be
        evicted until its next request has arrived, and is closed if none begins within the
        keep-alive timeout."""
        self._busy = False
        self._wait()
        waiting = self._waiting
        if self not in waiting.reading:  # (a next request that has begun has its deadline)
            waiting.idle.pop(self, None)
            waiting.idle[self] = self._loop.time()
            waiting.watch(self._loop)

    def close(self) -> None:
        self._forget()
        if not self._transport.is_closing():
            self._transport.abort()  # frees the descriptor now, not after a graceful close

    def expire(self) -> None:
        """The keep-alive timeout passed: a graceful close, as uvicorn's own timer did."""
        self._forget()
        if not self._transport.is_closing():
            self._transport.close()

    def lost(self) -> None:
        self._forget()
        if self._counted:
            self._counted = False
            self._waiting.open -= 1

    def _forget(self) -> None:
        waiting = self._waiting
        waiting.guards.pop(self, None)
        waiting.reading.pop(self, None)
        waiting.idle.pop(self, None)

    def _wait(self) -> None:
        guards = self._waiting.guards
        guards.pop(self, None)
        guards[self] = None  # the end: the most recent to start waiting
