"""The precompiled-statement layer (zbmc.db.direct) and the SQLite checkpointer, on real
databases: what the request path and the worker rely on beyond what the SDK tests show."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, bindparam, select

from zbmc.db.direct import DirectDb, InlineInt, Statement, Tx
from zbmc.db.engine import Checkpointer, WriteTurns, create_db_engine, unit_of_work
from zbmc.db.migrate import upgrade
from zbmc.db.tables import clock_state, instance_types

_TYPE = Statement(
    select(instance_types.c.instance_type_id, instance_types.c.is_ha).where(
        instance_types.c.instance_type_id == bindparam("type_id")
    )
)
_CLOCK = Statement(select(clock_state.c.mode, clock_state.c.offset_seconds))
_SET_OFFSET = Statement(
    clock_state.update()
    .where(clock_state.c.clock_id == bindparam("target"))
    .values(offset_seconds=bindparam("offset"))
)


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    with unit_of_work(migrated_engine) as conn:
        conn.execute(
            instance_types.insert(),
            [_instance_type("HA1", is_ha=True), _instance_type("STD", is_ha=False)],
        )
        conn.execute(clock_state.insert().values(clock_id=1, mode="system", offset_seconds=0))
    return migrated_engine


def _instance_type(type_id: str, *, is_ha: bool) -> dict[str, object]:
    return {
        "instance_type_id": type_id,
        "description": "test",
        "cpu_core_count": 1,
        "cpu_detail": "-",
        "cpu_cores": 1,
        "cpu_threads": 1,
        "base_frequency": "1 GHz",
        "memory_size": 1,
        "maximum_bandwidth": 100,
        "support_raids": [],
        "support_subnet": False,
        "is_ha": is_ha,
        "total_disk_size": 1,
        "disk_description": "-",
        "disks": [],
        "image_ids": [],
    }


def test_rows_have_names_and_column_types(engine: Engine) -> None:
    db = DirectDb(engine)
    try:
        with db.transaction(write=False) as tx:
            ha = tx.first(_TYPE, {"type_id": "HA1"})
            std = tx.first(_TYPE, {"type_id": "STD"})
            missing = tx.first(_TYPE, {"type_id": "NONE"})
        assert ha is not None
        assert std is not None
        # SQLite stores booleans as 0/1: the column's result processor turns them back
        assert (ha.instance_type_id, ha.is_ha, std.is_ha) == ("HA1", True, False)
        assert ha.is_ha is True
        assert std.is_ha is False
        assert missing is None
    finally:
        db.close()


def test_a_named_parameter_is_required(engine: Engine) -> None:
    db = DirectDb(engine)
    try:
        with pytest.raises(KeyError, match="type_id"), db.transaction(write=False) as tx:
            tx.first(_TYPE, {})
    finally:
        db.close()


_TYPES_PAGE = Statement(
    select(instance_types.c.instance_type_id)
    .order_by(instance_types.c.instance_type_id)
    .limit(InlineInt("limit"))
    .offset(InlineInt("offset"))
)


def test_inline_integers_are_written_into_the_sql_on_postgresql(engine: Engine) -> None:
    db = DirectDb(engine)
    try:
        with db.transaction(write=False) as tx:
            pages = [
                tx.tuples(_TYPES_PAGE.inline(limit=1, offset=n), {"limit": 1, "offset": n})
                for n in range(3)
            ]
            # the same values give the same statement (and so psycopg's prepared one)
            assert _TYPES_PAGE.inline(offset=1, limit=1) is _TYPES_PAGE.inline(limit=1, offset=1)
        assert pages == [[("HA1",)], [("STD",)], []]
        sql = _TYPES_PAGE.inline(limit=1, offset=2).compiled(engine.dialect).sql
        if engine.dialect.name == "postgresql":
            assert sql.rstrip().endswith("LIMIT 1 OFFSET 2"), sql
            with (
                pytest.raises(Exception, match="__zbmc_inline_limit__"),
                db.transaction(write=False) as tx,
            ):
                tx.tuples(_TYPES_PAGE, {"limit": 1, "offset": 0})  # not inlined: refused
        else:  # SQLite: ordinary parameters
            assert "LIMIT ? OFFSET ?" in sql, sql
    finally:
        db.close()


def test_a_failed_block_rolls_back_and_a_good_one_commits(engine: Engine) -> None:
    db = DirectDb(engine)

    def fail_after_writing() -> None:
        with db.transaction(write=True) as tx:
            assert tx.run(_SET_OFFSET, {"target": 1, "offset": 500}) == 1
            raise RuntimeError("the handler failed")

    try:
        with pytest.raises(RuntimeError):
            fail_after_writing()
        assert _offset(engine) == 0  # another connection sees nothing of it
        with db.transaction(write=True) as tx:
            tx.run(_SET_OFFSET, {"target": 1, "offset": 700})
        assert _offset(engine) == 700
    finally:
        db.close()


_SET_HA = Statement(
    instance_types.update()
    .where(instance_types.c.instance_type_id == bindparam("type_id"))
    .values(is_ha=bindparam("is_ha"))
)
_ADD_TYPE = Statement(instance_types.insert(), columns=list(_instance_type("X", is_ha=False)))


def test_writes_sent_later_keep_their_order(engine: Engine) -> None:
    """``Tx.later`` (PostgreSQL: a write that waits for the next statement): every statement
    still sees the writes called before it, and all of them commit."""
    db = DirectDb(engine)
    try:
        with db.transaction(write=True) as tx:
            tx.later(_SET_OFFSET, {"target": 1, "offset": 300})
            assert tx.writes == 1
            # the same table: the waiting write goes first
            assert tx.rows(_CLOCK)[0].offset_seconds == 300
            tx.later(_SET_OFFSET, {"target": 1, "offset": 400})
            # other tables: sent together with the waiting write, or after it
            assert tx.run(_SET_HA, {"type_id": "STD", "is_ha": True}) == 1
            tx.later(_SET_HA, {"type_id": "HA1", "is_ha": False})
            tx.later(_SET_OFFSET, {"target": 1, "offset": 500})
            assert tx.writes == 5
        assert _offset(engine) == 500
        with db.transaction(write=False) as tx:
            assert tx.rows(_TYPE, {"type_id": "STD"})[0].is_ha is True
            assert tx.rows(_TYPE, {"type_id": "HA1"})[0].is_ha is False
    finally:
        db.close()


def test_a_failing_write_sent_later_fails_its_transaction(engine: Engine) -> None:
    db = DirectDb(engine)
    duplicate = engine.dialect.loaded_dbapi.IntegrityError

    def insert_existing_type(then_update: bool) -> None:
        with db.transaction(write=True) as tx:
            tx.later(_SET_OFFSET, {"target": 1, "offset": 900})
            tx.later(_ADD_TYPE, _instance_type("STD", is_ha=False))  # the key exists
            if then_update:  # raised by the next statement, else by the commit at the latest
                tx.run(_SET_OFFSET, {"target": 1, "offset": 901})

    try:
        for then_update in (True, False):
            with pytest.raises(duplicate):
                insert_existing_type(then_update)
            assert _offset(engine) == 0
        with db.transaction(write=True) as tx:  # the connection is usable again
            tx.later(_SET_OFFSET, {"target": 1, "offset": 902})
        assert _offset(engine) == 902
    finally:
        db.close()


def _offset(engine: Engine) -> int:
    with unit_of_work(engine) as conn:
        return int(Tx.of(conn).rows(_CLOCK)[0].offset_seconds)


COMMITS = 20_000


def test_the_checkpointer_keeps_the_sqlite_log_bounded(tmp_path: Path) -> None:
    """Commits without pause never let a passive checkpoint find the log fully copied: without
    the hand-over to the writer, SQLite would never start the log again."""
    url = f"sqlite:///{tmp_path / 'zbmc.sqlite3'}"
    upgrade(create_db_engine(url))
    engine = create_db_engine(url, background_checkpoints=True)
    with unit_of_work(engine) as conn:
        conn.execute(clock_state.insert().values(clock_id=1, mode="system", offset_seconds=0))
    checkpointer = Checkpointer(engine, interval=0.01, restart_frames=64)
    db = DirectDb(engine, checkpointer)
    checkpointer.start()
    try:
        for offset in range(COMMITS):  # one page per commit
            with db.transaction(write=True) as tx:
                tx.run(_SET_OFFSET, {"target": 1, "offset": offset})
        wal_bytes = (tmp_path / "zbmc.sqlite3-wal").stat().st_size
    finally:
        checkpointer.stop()
        db.close()
        engine.dispose()
    # A log never started again would hold all 20 000 pages (80 MB): the file keeps its
    # high-water mark, which is what was committed between two of the thread's passes (about
    # 1 200 pages at 25 µs per commit; more when the thread waits long for the GIL).
    assert wal_bytes < COMMITS // 4 * 4096


def test_an_announced_worker_transaction_goes_before_the_next_api_write(tmp_path: Path) -> None:
    """WriteTurns: while the worker has announced a write transaction, the API's next write
    transaction waits for it to commit instead of taking the lock first."""
    url = f"sqlite:///{tmp_path / 'zbmc.sqlite3'}"
    upgrade(create_db_engine(url))
    engine = create_db_engine(url)
    with unit_of_work(engine) as conn:
        conn.execute(clock_state.insert().values(clock_id=1, mode="system", offset_seconds=0))
    turns = WriteTurns.of(engine)
    assert turns is not None
    db = DirectDb(engine, turns=turns)
    events: list[str] = []
    announced, api_started = threading.Event(), threading.Event()

    def worker() -> None:
        with turns.first():
            announced.set()
            api_started.wait(5)
            time.sleep(0.2)  # the API thread is at its BEGIN by now
            with unit_of_work(engine) as conn:
                conn.execute(clock_state.update().values(offset_seconds=1))
                events.append("worker committed")

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert announced.wait(5)
        api_started.set()
        with db.transaction(write=True) as tx:
            (_mode, offset) = tx.rows(_CLOCK)[0]
            events.append(f"api began, offset {offset}")
    finally:
        thread.join()
        db.close()
        engine.dispose()
    assert events == ["worker committed", "api began, offset 1"]


# A background writer in another process (``zbmc worker``): takes the turn, says so, holds it,
# then commits a clock offset; or dies while holding it.
_OTHER_PROCESS = """
import sys, time
from zbmc.db.engine import WriteTurns, create_db_engine, unit_of_work
from zbmc.db.tables import clock_state
engine = create_db_engine(sys.argv[1])
turns = WriteTurns.of(engine)
with turns.first():
    print("held", flush=True)
    time.sleep(0.3)
    if sys.argv[2] == "die":
        import os
        os._exit(3)
    with unit_of_work(engine) as conn:
        conn.execute(clock_state.update().values(offset_seconds=7))
"""


@pytest.mark.parametrize("ending", ["commits", "dies"])
def test_the_api_waits_for_a_worker_process_that_has_its_turn(tmp_path: Path, ending: str) -> None:
    """WriteTurns across processes: the API's write transaction waits in the kernel while a
    ``zbmc worker`` process has the turn, and begins the moment it ends, also when that
    process dies holding it (the kernel lets go of its locks)."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'zbmc.sqlite3'}"
    upgrade(create_db_engine(url))
    engine = create_db_engine(url)
    with unit_of_work(engine) as conn:
        conn.execute(clock_state.insert().values(clock_id=1, mode="system", offset_seconds=0))
    db = DirectDb(engine, turns=WriteTurns.of(engine))
    other = subprocess.Popen(
        [sys.executable, "-c", _OTHER_PROCESS, url, "die" if ending == "dies" else "commit"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None
        assert other.stdout.readline().strip() == "held"
        held = time.monotonic()
        with db.transaction(write=True) as tx:
            # the other process holds the turn for 0.3 s (a lower bound: a slow machine only
            # makes the wait longer)
            waited = time.monotonic() - held
            (_mode, offset) = tx.rows(_CLOCK)[0]
    finally:
        other.wait(10)
        if other.stdout is not None:
            other.stdout.close()
        db.close()
        engine.dispose()
    assert waited >= 0.25
    assert offset == (7 if ending == "commits" else 0)
    assert other.returncode == (0 if ending == "commits" else 3)


def test_turns_are_for_sqlite_files_only(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    assert WriteTurns.of(create_engine("sqlite://")) is None
    turns = WriteTurns.of(create_db_engine(f"sqlite:///{tmp_path / 'z.sqlite3'}"))
    assert turns is not None
    assert turns.turn_path == f"{(tmp_path / 'z.sqlite3').resolve()}-turn"


def test_closing_the_turns_closes_every_threads_files(tmp_path: Path) -> None:
    """Each thread that takes turns opens two files; ``close`` (at shutdown) closes them all."""
    import os

    turns = WriteTurns.of(create_db_engine(f"sqlite:///{tmp_path / 'z.sqlite3'}"))
    assert turns is not None
    before = len(os.listdir("/proc/self/fd"))

    def take() -> None:
        WriteTurns.done(turns.api())

    take()
    thread = threading.Thread(target=take)
    thread.start()
    thread.join()
    with turns.first():
        pass
    assert len(os.listdir("/proc/self/fd")) == before + 4
    turns.close()
    assert len(os.listdir("/proc/self/fd")) == before
