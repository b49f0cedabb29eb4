"""The batcher's wait (``zbmc.edge.Batcher``): under concurrent load a small batch waits for the
requests on their way, as many as the largest recent batch held; a lone client never waits.

Driven on a real event loop with a stand-in pipeline that records the batches it is given. The
waits used are either 60 s (a batch that waited when it should not would hang: each test has a
5 s guard) or short enough for the test to end."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable
from types import SimpleNamespace
from typing import Any, cast

import pytest

from zbmc.auth import Credentials
from zbmc.edge import BATCH_SECONDS, MAX_BATCH, Batcher
from zbmc.pipeline import Call, Outcome, Pipeline
from zbmc.settings import Settings, load_settings


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def handle_batch(self, calls: list[Any]) -> list[Outcome]:
        self.batches.append(list(calls))
        return [Outcome(200, call.encode(), "OK") for call in calls]


def run(main: Awaitable[None]) -> None:
    async def guarded() -> None:
        await asyncio.wait_for(main, timeout=5)

    asyncio.run(guarded())


async def together(batcher: Batcher, *names: str) -> list[Outcome]:
    """Calls submitted in the same turn of the event loop."""
    return list(await asyncio.gather(*(batcher.submit(cast(Any, name)) for name in names)))


async def turns(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


def test_a_small_batch_under_load_waits_for_as_many_as_the_last_batches_held() -> None:
    recorder = Recorder()
    batcher = Batcher(cast(Pipeline, recorder), wait=60)

    async def main() -> None:
        await together(batcher, "a", "b", "c")
        first = asyncio.ensure_future(batcher.submit(cast(Any, "d")))
        await turns(3)  # d waits: the last batch held three
        second = asyncio.ensure_future(batcher.submit(cast(Any, "e")))
        await turns(3)
        third = asyncio.ensure_future(batcher.submit(cast(Any, "f")))
        outcomes = await asyncio.gather(first, second, third)
        assert [o.body for o in outcomes] == [b"d", b"e", b"f"]

    run(main())
    assert recorder.batches == [["a", "b", "c"], ["d", "e", "f"]]


def test_a_lone_client_never_waits() -> None:
    recorder = Recorder()
    batcher = Batcher(cast(Pipeline, recorder), wait=60)

    async def main() -> None:
        for name in ("a", "b", "c"):
            assert (await batcher.submit(cast(Any, name))).body == name.encode()

    run(main())
    assert recorder.batches == [["a"], ["b"], ["c"]]


def test_the_wait_ends_after_its_time_and_without_it_nothing_waits() -> None:
    for wait, expected in ((0.01, [["a", "b", "c"], ["d"]]), (0.0, [["a", "b", "c"], ["d"]])):
        recorder = Recorder()
        batcher = Batcher(cast(Pipeline, recorder), wait=wait)

        async def main(batcher: Batcher = batcher) -> None:
            await together(batcher, "a", "b", "c")
            assert (await batcher.submit(cast(Any, "d"))).body == b"d"  # nobody else comes

        run(main())
        assert recorder.batches == expected


def test_without_the_wait_calls_of_later_turns_form_their_own_batches() -> None:
    recorder = Recorder()
    batcher = Batcher(cast(Pipeline, recorder), wait=0.0)

    async def main() -> None:
        await together(batcher, "a", "b", "c")
        first = asyncio.ensure_future(batcher.submit(cast(Any, "d")))
        await turns(3)
        second = asyncio.ensure_future(batcher.submit(cast(Any, "e")))
        await asyncio.gather(first, second)

    run(main())
    assert recorder.batches == [["a", "b", "c"], ["d"], ["e"]]


def test_a_batch_never_exceeds_the_maximum_and_the_rest_runs_next() -> None:
    recorder = Recorder()
    batcher = Batcher(cast(Pipeline, recorder), wait=0.01)  # the rest waits for up to 64
    names = [f"c{i}" for i in range(MAX_BATCH + 5)]

    async def main() -> None:
        outcomes = await together(batcher, *names)
        assert [o.body.decode() for o in outcomes] == names

    run(main())
    assert [len(batch) for batch in recorder.batches] == [MAX_BATCH, 5]


@pytest.mark.parametrize(
    ("name", "default", "wrong"),
    [
        ("group_commit_wait_seconds", 0.0005, ("-1", "0.5", "soon")),
        ("reader_threads", 2, ("-1", "33", "two")),
    ],
)
def test_the_batcher_s_settings_have_bounds(
    name: str, default: float, wrong: tuple[str, ...]
) -> None:
    """The batch wait and the reader threads: their defaults, 0 turns them off, and values
    out of bounds or not numbers stop the server."""
    variable = f"ZBMC_{name.upper()}"
    assert getattr(Settings(), name) == default
    assert getattr(load_settings({variable: "0"}), name) == 0
    for value in wrong:
        with pytest.raises(ValueError, match=variable):
            load_settings({variable: value})


class Slow(Recorder):
    """Each call costs ``seconds`` of this thread's CPU time."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def handle_batch(self, calls: list[Any]) -> list[Outcome]:
        until = time.thread_time() + self.seconds * len(calls)
        while time.thread_time() < until:
            pass
        return super().handle_batch(calls)


def test_costly_calls_go_in_batches_that_fit_the_time_budget() -> None:
    """Calls costing a 4.5th of ``BATCH_SECONDS`` each run four at a time, so the event loop
    reads and writes between them; a batch at that limit does not wait for more."""
    recorder = Slow(BATCH_SECONDS / 4.5)
    batcher = Batcher(cast(Pipeline, recorder), wait=60)
    batcher._per_call = BATCH_SECONDS / 4.5  # as measured on the batches before

    async def main() -> None:
        outcomes = await together(batcher, *"abcdefgh")
        assert [o.body for o in outcomes] == [name.encode() for name in "abcdefgh"]

    run(main())
    assert recorder.batches == [list("abcd"), list("efgh")]


class Arrivals:
    """The count of connections admitted, as the HTTP protocol's guards would raise it."""

    def __init__(self) -> None:
        self.made = 0

    def __call__(self) -> int:
        return self.made


def test_a_batch_waits_while_a_burst_of_connections_is_let_in() -> None:
    """A connection admitted since the last look makes the batch wait a turn of the event loop
    (uvloop accepts one connection per turn): the burst's first requests join it; once a turn
    brings no new connection, it runs."""
    recorder, arrivals = Recorder(), Arrivals()
    batcher = Batcher(cast(Pipeline, recorder), wait=0.0, connections_made=arrivals)

    async def main() -> None:
        futures = []
        for name in "abcd":  # each turn: a connection is let in and its request arrives
            arrivals.made += 1
            futures.append(asyncio.ensure_future(batcher.submit(cast(Any, name))))
            await turns(1)
        outcomes = await asyncio.gather(*futures)
        assert [o.body for o in outcomes] == [b"a", b"b", b"c", b"d"]
        assert (await batcher.submit(cast(Any, "e"))).body == b"e"  # no new connection

    run(main())
    assert recorder.batches == [["a", "b", "c", "d"], ["e"]]


def test_connections_arriving_without_end_delay_a_batch_by_accept_seconds_at_most(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("zbmc.edge.ACCEPT_SECONDS", 0.05)
    recorder, arrivals = Recorder(), Arrivals()
    batcher = Batcher(cast(Pipeline, recorder), wait=0.0, connections_made=arrivals)

    async def main() -> None:
        submitted = time.perf_counter()
        future = asyncio.ensure_future(batcher.submit(cast(Any, "a")))
        while not future.done():  # a new connection on every turn
            arrivals.made += 1
            await turns(1)
        waited = time.perf_counter() - submitted
        assert 0.05 <= waited < 4  # it ran, after the bound (the guard of run() is 5 s)

    run(main())
    assert recorder.batches == [["a"]]


def test_the_count_of_connections_made_is_what_the_guards_admitted() -> None:
    """What the batcher looks at by default: each connection the HTTP protocol's guard admits
    (zbmc.connections) counts once, on the event loop's thread; closing one does not lower it."""
    from zbmc import connections

    class Transport:
        def is_closing(self) -> bool:
            return False

        def abort(self) -> None:
            pass

    async def main() -> None:
        loop = asyncio.get_running_loop()
        before = connections.admitted()
        guards = [connections.ConnectionGuard(cast(Any, Transport()), loop) for _ in range(3)]
        assert all(guard.admit() for guard in guards)
        assert connections.admitted() == before + 3
        for guard in guards:
            guard.close()
            guard.lost()
        assert connections.admitted() == before + 3

    run(main())


class Readers:
    """A stand-in pipeline with one reader action (``Describe``) and one other (``Modify``):
    records which thread ran each batch; ``gate`` (when set) is what reader batches wait at."""

    def __init__(self, gate: threading.Barrier | None = None, fail: bool = False) -> None:
        self.actions = {
            ("bmc", "Describe"): SimpleNamespace(reader=True),
            ("bmc", "Modify"): SimpleNamespace(reader=False),
        }
        self.gate = gate
        self.fail = fail
        self.batches: list[tuple[str, list[str]]] = []  # (thread name, request ids)
        self.lock = threading.Lock()

    def handle_batch(self, calls: list[Call]) -> list[Outcome]:
        with self.lock:
            self.batches.append((threading.current_thread().name, [c.request_id for c in calls]))
        if calls[0].action == "Describe":
            if self.fail:
                raise RuntimeError("the database went away")
            if self.gate is not None:
                self.gate.wait()  # BrokenBarrierError unless another reader batch comes
        return [Outcome(200, call.request_id.encode(), "OK") for call in calls]


def call(request_id: str, action: str) -> Call:
    return Call(request_id, "bmc", action, None, Credentials(None, None, "", "", b""))


def readers_batcher(pipeline: Readers, threads: int = 2) -> Batcher:
    return Batcher(cast(Pipeline, pipeline), readers=threads)


def test_reader_calls_run_in_reader_threads_and_the_others_on_the_loop() -> None:
    pipeline = Readers()
    batcher = readers_batcher(pipeline)

    async def main() -> None:
        outcomes = await asyncio.gather(
            batcher.submit(call("r1", "Describe")),
            batcher.submit(call("w1", "Modify")),
            batcher.submit(call("r2", "Describe")),
        )
        assert [o.body for o in outcomes] == [b"r1", b"w1", b"r2"]

    try:
        run(main())
    finally:
        batcher.close()
    ran = {tuple(ids): name for name, ids in pipeline.batches}
    assert set(ran) == {("w1",), ("r1", "r2")}
    assert ran["w1",] == threading.current_thread().name  # the event loop's
    assert ran["r1", "r2"].startswith("zbmc-reader")


def test_two_reader_batches_run_at_once() -> None:
    """Each reader batch waits at a barrier for the other: they only finish if two threads run
    them at the same time (one at a time, the barrier breaks and both answer 500)."""
    pipeline = Readers(gate=threading.Barrier(2, timeout=3))
    batcher = readers_batcher(pipeline)

    async def main() -> None:
        first = asyncio.ensure_future(batcher.submit(call("r1", "Describe")))
        await turns(2)  # r1 left for a thread: r2 forms a batch of its own
        second = asyncio.ensure_future(batcher.submit(call("r2", "Describe")))
        outcomes = await asyncio.gather(first, second)
        assert [(o.status, o.body) for o in outcomes] == [(200, b"r1"), (200, b"r2")]

    try:
        run(main())
    finally:
        batcher.close()
    assert len({name for name, _ in pipeline.batches}) == 2


def test_while_every_reader_thread_is_busy_the_reader_calls_wait_as_one_batch() -> None:
    gate = threading.Event()

    class Slow(Readers):
        def handle_batch(self, calls: list[Call]) -> list[Outcome]:
            if calls[0].request_id == "r1":
                gate.wait(3)
            return super().handle_batch(calls)

    pipeline = Slow()
    batcher = readers_batcher(pipeline, threads=1)

    async def main() -> None:
        first = asyncio.ensure_future(batcher.submit(call("r1", "Describe")))
        await turns(2)  # r1 holds the only thread
        rest = [asyncio.ensure_future(batcher.submit(call(f"r{n}", "Describe"))) for n in (2, 3)]
        await turns(2)
        gate.set()
        outcomes = await asyncio.gather(first, *rest)
        assert [o.body for o in outcomes] == [b"r1", b"r2", b"r3"]

    try:
        run(main())
    finally:
        batcher.close()
    assert [ids for _, ids in pipeline.batches] == [["r1"], ["r2", "r3"]]


def test_a_reader_batch_that_fails_answers_500_and_frees_its_thread() -> None:
    pipeline = Readers(fail=True)
    batcher = readers_batcher(pipeline, threads=1)

    async def main() -> None:
        for request_id in ("r1", "r2"):  # the second finds the thread free again
            outcome = await batcher.submit(call(request_id, "Describe"))
            assert outcome.status == 500
            assert json.loads(outcome.body)["requestId"] == request_id

    try:
        run(main())
    finally:
        batcher.close()
    assert [ids for _, ids in pipeline.batches] == [["r1"], ["r2"]]
