"""The connection deadlines of ``zbmc.connections``, in process: one sweep per event loop closes
a connection whose request does not arrive in time (abort) or that stays idle after a response
(graceful close), and never one whose request has arrived.

``tests/test_slow_clients.py`` drives the same limits through ``zbmc serve`` over real sockets."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from tests.test_writes import Recording
from zbmc import connections
from zbmc.connections import ConnectionGuard, Limits

READ, KEEP_ALIVE = 0.2, 0.1  # seconds; the sweep looks every 50 ms


@pytest.fixture(autouse=True)
def short_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connections, "limits", lambda: Limits(READ, 3, KEEP_ALIVE))
    monkeypatch.setattr(connections._local, "waiting", connections._Waiting(), raising=False)


def guard() -> tuple[ConnectionGuard, Recording]:
    transport = Recording()
    made = ConnectionGuard(cast(asyncio.Transport, transport), asyncio.get_running_loop())
    assert made.admit()
    return made, transport


async def until(condition: Any, timeout: float = 5.0) -> None:
    """Wait (on the loop, so the sweep runs) until ``condition()`` holds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def run(main: Any) -> None:
    asyncio.run(asyncio.wait_for(main, timeout=10))


def test_a_connection_that_sends_nothing_is_aborted_at_the_read_deadline() -> None:
    async def main() -> None:
        _, transport = guard()
        await asyncio.sleep(READ / 2)
        assert not transport.aborted
        await until(lambda: transport.aborted)

    run(main())


def test_an_idle_connection_is_closed_gracefully_after_the_keep_alive_timeout() -> None:
    async def main() -> None:
        made, transport = guard()
        made.read()  # a request arrived ...
        made.idle()  # ... and was answered
        await until(lambda: transport.closed)
        assert not transport.aborted

    run(main())


def test_a_request_that_has_arrived_is_never_cut_off() -> None:
    async def main() -> None:
        made, transport = guard()
        made.read()
        await asyncio.sleep(READ * 2)
        assert not transport.is_closing()
        made.idle()  # its answer is complete: now the keep-alive timeout runs
        await until(lambda: transport.closed)

    run(main())


def test_a_new_request_stops_the_keep_alive_timeout_and_starts_the_read_deadline() -> None:
    async def main() -> None:
        made, transport = guard()
        made.read()
        made.idle()
        made.reading()  # the next request's first byte
        await asyncio.sleep(KEEP_ALIVE * 1.5)
        assert not transport.is_closing()  # not closed as idle
        await until(lambda: transport.aborted)  # but at its read deadline

    run(main())


def test_a_lost_connection_is_forgotten() -> None:
    async def main() -> None:
        made, transport = guard()
        made.lost()
        waiting = connections._waiting()
        assert made not in waiting.reading
        assert made not in waiting.guards
        assert waiting.open == 0
        await asyncio.sleep(READ * 1.5)
        assert not transport.aborted  # nothing left to close

    run(main())


def test_beyond_the_cap_the_connection_waiting_longest_makes_room() -> None:
    async def main() -> None:
        _first, first_transport = guard()
        second, _ = guard()
        third, _ = guard()
        second.read()
        third.read()
        _fourth, fourth_transport = guard()  # the cap is 3: the first (still silent) goes
        assert first_transport.aborted
        assert not fourth_transport.is_closing()

    run(main())
