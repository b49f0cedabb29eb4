"""Engine creation and the unit of work: one transaction per request, CLI command or worker tick.

SQLite runs in WAL mode with SQLAlchemy's implicit BEGIN replaced by ``BEGIN IMMEDIATE`` for
writing units, so two writers never both read and then fail to upgrade their lock; PostgreSQL uses
READ COMMITTED with explicit ``FOR UPDATE`` row locks taken by the queries that decide.

In the API server, SQLite connections never checkpoint the write-ahead log themselves: a commit
that crosses SQLite's automatic threshold would copy the log into the database and fsync it on
the request path (measured: 150 µs per commit on average instead of 60, plus the p99 tail). A
``Checkpointer`` thread runs passive checkpoints instead, with the GIL released while SQLite does
the I/O. Other processes (the CLI, ``zbmc worker``) keep SQLite's automatic checkpoints.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.pool import ConnectionPoolEntry

_WRITE_OPTION = "zbmc_write"
log = logging.getLogger("zbmc.db")


def _prepare_sqlite(engine: Engine, background_checkpoints: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        if background_checkpoints:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, True)
        # Straight to the driver: this runs once per request, and SQLAlchemy's statement
        # machinery would cost as much as a query here.
        conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            "BEGIN IMMEDIATE" if write else "BEGIN"
        )


class MissingDriver(RuntimeError):
    """The database URL names a driver that is not installed (the message says what to do)."""


# Drivers that an extra of the zbmc package installs.
_EXTRAS = {"postgresql": "postgres"}


def create_db_engine(url: str, *, background_checkpoints: bool = False) -> Engine:
    """``background_checkpoints``: SQLite only; the caller runs a ``Checkpointer``."""
    parsed = make_url(url)
    try:
        return _create(url, parsed, background_checkpoints)
    except ModuleNotFoundError as exc:
        backend = parsed.get_backend_name()
        extra = _EXTRAS.get(backend)
        advice = f"pip install 'zbmc[{extra}]'" if extra else f"install the {exc.name} package"
        raise MissingDriver(
            f"the database driver {exc.name!r} for {parsed.drivername} URLs is not installed; "
            f"run: {advice}"
        ) from None


def _create(url: str, parsed: URL, background_checkpoints: bool) -> Engine:
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            max_overflow=16,
        )
        _prepare_sqlite(engine, background_checkpoints)
        return engine
    return create_engine(url, pool_size=8, max_overflow=16, pool_pre_ping=True)


@contextmanager
def unit_of_work(engine: Engine, *, write: bool = True) -> Iterator[Connection]:
    """One transaction, committed when the block ends normally and rolled back otherwise."""
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE_OPTION: write})
        with conn.begin():
            yield conn


class Checkpointer(threading.Thread):
    """Checkpoints of the SQLite write-ahead log, mostly off the request path.

    Every ``interval`` seconds a passive checkpoint copies the log into the database and fsyncs
    it without blocking anyone. SQLite starts the log from its beginning again only when a
    writer finds it fully copied; under a steady stream of commits that never happens by itself,
    and the log would grow without bound (slowing every statement down). A RESTART checkpoint
    forces it, but holds writers back while it waits for readers (measured: up to 300 ms under
    load). So once the log holds more than ``restart_frames`` pages, the thread catches up with
    the writers, sets ``restart_wanted`` and pauses; the API process's writer
    (``zbmc.db.direct``) runs one passive checkpoint right after its next commit, when no commit
    of its own can slip in: it copies what was committed since this thread's last pass, and
    its next transaction starts the log again. If no API write takes it within ``handover`` seconds
    (only the worker is writing), this thread runs the RESTART itself.
    """

    def __init__(
        self,
        engine: Engine,
        interval: float = 0.25,
        # Each restart costs the API's writes one fsync of the database (27-30 ms measured on
        # one machine): 16384 pages (64 MiB) of log between restarts, not 4096, cut SQLite
        # Modify's p99 by a fifth on a grown database (docs/performance.md).
        restart_frames: int = 16384,
        handover: float = 1.0,
    ) -> None:
        super().__init__(name="zbmc-wal-checkpoint", daemon=True)
        self.engine = engine
        self.interval = interval
        self.restart_frames = restart_frames
        self.handover = handover
        self.restart_wanted = False
        self._wanted_since = 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        connection = self.engine.raw_connection()
        try:
            while not self._stop_event.wait(self.interval):
                try:
                    self._step(connection.driver_connection)
                except Exception:
                    log.exception("WAL checkpoint failed; retrying")
            checkpoint(connection.driver_connection)  # leave a short log behind
        finally:
            connection.close()

    def _step(self, dbapi_connection: Any) -> None:
        if self.restart_wanted:
            if time.monotonic() - self._wanted_since < self.handover:
                return  # the API's next write takes it
            dbapi_connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
            self.restart_wanted = False
            return
        if checkpoint(dbapi_connection) <= self.restart_frames:
            return
        # Shorten the tail the writer will copy: each pass copies what was committed during the
        # one before, until a pass is quick (copying is much faster than committing).
        for _ in range(10):
            started = time.monotonic()
            checkpoint(dbapi_connection)
            if time.monotonic() - started < 0.01:
                break
        self._wanted_since = time.monotonic()
        self.restart_wanted = True

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


class WriteTurns:
    """SQLite: the writers of one database file take turns, across threads and processes,
    and a background worker's write transaction goes before the API's next one.

    SQLite's busy handler retries a locked database after growing sleeps (1, 2, 5, 10 ... 100
    ms). A writer that finds the lock taken therefore keeps losing it to one that commits and
    begins again at once: under a steady API load (group commit keeps the lock taken most of
    the time) the worker's tick waited hundreds of milliseconds, and every change it was to
    finish stayed Processing as long; API processes of ``--workers N`` slept in turn. So the
    writers that take part wait in the kernel instead, on two ``flock`` locks of files beside
    the database (``<database>-turn`` and ``<database>-turn-wanted``), and are woken the moment
    the holder lets go:

    * an API write transaction (``api``) waits while a background writer wants its turn (a
      shared lock on the "wanted" file, let go at once), then takes the turn (an exclusive
      lock on the "turn" file) until it commits or rolls back;
    * a background writer (``first``: the worker's tick, thread or ``zbmc worker`` process)
      holds "wanted" exclusively while it waits for the turn and runs: the API transaction
      under way ends, and no new one begins until the worker's has committed.

    The locks are the open files' (``flock``): two threads with files of their own exclude
    each other like two processes, and a process that dies lets go of them. Every thread opens
    its own files. Writers that do not take part (``zbmc admin``, the API's SQLAlchemy
    transactions) still meet SQLite's lock, as before; nobody waits for a turn while holding
    SQLite's lock, so no wait can close a cycle.
    """

    def __init__(self, database: str) -> None:
        self.turn_path = f"{database}-turn"
        self.wanted_path = f"{database}-turn-wanted"
        self._local = threading.local()
        self._opened: list[int] = []  # every thread's files, for ``close``
        self._lock = threading.Lock()

    @staticmethod
    def of(engine: Engine) -> WriteTurns | None:
        """The turns of a SQLite database file (None for PostgreSQL or an in-memory one)."""
        database = engine.url.database
        if engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return None
        return WriteTurns(str(Path(database).resolve()))

    def _files(self) -> tuple[int, int]:
        files: tuple[int, int] | None = getattr(self._local, "files", None)
        if files is None:
            files = self._local.files = (_lock_file(self.turn_path), _lock_file(self.wanted_path))
            with self._lock:
                self._opened.extend(files)
        return files

    def api(self) -> int:
        """Wait for the turn of an API write transaction and take it; returns the file to
        pass to ``done`` when the transaction has ended."""
        turn, wanted = self._files()
        fcntl.flock(wanted, fcntl.LOCK_SH)
        fcntl.flock(wanted, fcntl.LOCK_UN)
        fcntl.flock(turn, fcntl.LOCK_EX)
        return turn

    @staticmethod
    def done(turn: int) -> None:
        fcntl.flock(turn, fcntl.LOCK_UN)

    @contextmanager
    def first(self) -> Iterator[None]:
        """A background writer's transaction, before any API transaction that has not begun."""
        turn, wanted = self._files()
        fcntl.flock(wanted, fcntl.LOCK_EX)
        try:
            fcntl.flock(turn, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(turn, fcntl.LOCK_UN)
        finally:
            fcntl.flock(wanted, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close every thread's files (at shutdown, when no writer runs any more)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for descriptor in opened:
            os.close(descriptor)
        self._local = threading.local()


def _lock_file(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def checkpoint(dbapi_connection: Any) -> int:
    """One passive checkpoint; returns the number of pages in the log."""
    _busy, frames, _copied = dbapi_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(frames)
