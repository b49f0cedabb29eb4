"""Slow clients: how long a request may take to arrive, and how many connections a process keeps.

uvicorn closes a keep-alive connection that stays idle after a response (``timeout_keep_alive``),
but puts no deadline on reading a request: a connection that sends nothing, or trickles its
headers a byte at a time, stays open for ever, and 2 x 10 000 of them exhausted the server's
file descriptors (issue 16). So each connection of ``zbmc serve`` has a ``ConnectionGuard``:

- **Read deadline.** From the moment a connection opens, or a new request's first byte arrives,
  the whole request (headers and body) must arrive within ``request_read_timeout_seconds``
  (default 10; the SDKs send a request in one piece); otherwise the connection is closed.
- **Connection cap.** Each API process keeps at most ``max_connections`` open (default 1000,
  lowered to fit the process's file-descriptor limit). A new connection beyond the cap evicts the
  connection that has waited longest without a request being processed (still reading one, or
  idle between requests); a request that has fully arrived is never cut off. If every
  connection has a request in progress, the new connection is closed instead.

So slow or idle clients can hold at most the cap, and only until a quicker client needs their
place: a client that sends its request at once is served. The figures are in
docs/reliability.md; the limits are documented in docs/security.md and docs/operations.md.
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


@functools.cache
def limits() -> Limits:
    """The limits of this process, from its ``ZBMC_*`` environment (``zbmc serve`` exports its
    flags there before it starts the API processes)."""
    settings = load_settings()
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = settings.max_connections
    if soft != resource.RLIM_INFINITY:
        cap = max(1, min(cap, soft - RESERVED_FDS))
    return Limits(settings.request_read_timeout_seconds, cap)


class _Waiting:
    """The connections of this thread's event loop that have no request in progress, oldest
    first (a dict keeps insertion order)."""

    def __init__(self) -> None:
        self.guards: dict[ConnectionGuard, None] = {}
        self.open = 0
        self.admitted = 0  # connections admitted so far


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
    """The read deadline and the cap, for one connection (driven by the HTTP protocol)."""

    __slots__ = ("_busy", "_counted", "_loop", "_timer", "_transport", "_waiting")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None
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
        """A request is to begin or is arriving: the deadline runs."""
        if self._timer is None:
            self._timer = self._loop.call_later(limits().request_read_timeout, self.close)
        if not self._busy:
            self._wait()

    def read(self) -> None:
        """The request has arrived: it is processed, whatever the time."""
        self._stop_timer()
        self._busy = True
        self._waiting.guards.pop(self, None)

    def idle(self) -> None:
        """The response is complete (uvicorn's keep-alive timeout runs): the connection may be
        evicted until its next request has arrived."""
        self._busy = False
        self._wait()

    def close(self) -> None:
        self._stop_timer()
        self._waiting.guards.pop(self, None)
        if not self._transport.is_closing():
            self._transport.abort()  # frees the descriptor now, not after a graceful close

    def lost(self) -> None:
        self._stop_timer()
        self._waiting.guards.pop(self, None)
        if self._counted:
            self._counted = False
            self._waiting.open -= 1

    def _wait(self) -> None:
        guards = self._waiting.guards
        guards.pop(self, None)
        guards[self] = None  # the end: the most recent to start waiting

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
