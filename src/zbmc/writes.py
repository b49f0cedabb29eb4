"""A batch's responses, held while its handlers send them and then written back to back.

A write to a TCP connection whose reader sleeps waiting for it pays for waking the reader: on
this project's machine (a 2-vCPU VM, loopback) 12 µs for a write that wakes the reader and
under 1 µs for each write right after it (docs/performance.md). The handlers of one batch
(``zbmc.edge.Batcher``) send their responses one after the other, with uvicorn's work for each
in between, and a load generator that is quicker than that gap sleeps again before every
response: the first write of each response cost the API thread 13 µs on average, a tenth of its
time under the benchmark's Modify load.

So ``zbmc serve``'s HTTP protocol (``zbmc.protocol``) wraps its transport in a
``HeldTransport``: while a batch's handlers run (``Hold.start`` to ``Hold.release``, within one
turn of the event loop), a connection's writes are kept, and the release writes every
connection's bytes (status line, headers and body in one piece) in one tight loop. Outside a
hold, writes go straight through. The wrapper relies only on the asyncio transport interface:
uvicorn's protocol keeps the transport given to ``connection_made``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any


class Hold:
    """The writes of this thread's event loop between ``start`` and ``release``."""

    def __init__(self) -> None:
        self.holding: list[HeldTransport] | None = None

    def start(self) -> None:
        if self.holding is None:
            self.holding = []

    def release(self) -> None:
        held, self.holding = self.holding, None
        for transport in held or ():
            transport.flush()


_local = threading.local()


def hold() -> Hold:
    """The hold of the calling thread (an event loop runs in one thread)."""
    found: Hold | None = getattr(_local, "hold", None)
    if found is None:
        found = _local.hold = Hold()
    return found


class HeldTransport(asyncio.Transport):
    """An asyncio transport whose writes wait for the release of a ``Hold`` while it is held."""

    def __init__(self, real: asyncio.Transport, hold: Hold) -> None:
        super().__init__()
        self._real = real
        self._hold = hold
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        holding = self._hold.holding
        if holding is None:
            self.flush()  # nothing is pending: a release flushes every transport it held
            self._real.write(data)
            return
        if not self._pending:
            holding.append(self)
        self._pending.append(bytes(data))

    def flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if not self._real.is_closing():
            self._real.write(data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def close(self) -> None:
        self.flush()
        self._real.close()

    def abort(self) -> None:
        self._pending.clear()
        self._real.abort()

    def write_eof(self) -> None:
        self.flush()
        self._real.write_eof()

    def can_write_eof(self) -> bool:
        return self._real.can_write_eof()

    def is_closing(self) -> bool:
        return self._real.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._real.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._real.pause_reading()

    def resume_reading(self) -> None:
        self._real.resume_reading()

    def is_reading(self) -> bool:
        return self._real.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._real.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._real.get_protocol()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._real.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._real.get_write_buffer_size() + sum(len(data) for data in self._pending)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._real.get_write_buffer_limits()
