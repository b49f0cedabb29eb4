"""Named snapshots of the whole state, restore and reset: test suites start every test from a
known state (``zbmc admin snapshot save|restore|list|delete``, ``zbmc admin reset``, and the
same under ``/admin/v1``).

A snapshot is a copy of every table of the schema (``zbmc.db.tables``) with a note of when it
was taken, the billing time then and the schema revision. On SQLite it is a database file next
to the live one (``snapshots/NAME.sqlite3``, written with SQLite's online backup, so it is a
consistent copy taken without stopping writers); on PostgreSQL it is a schema
``zbmc_snapshot_NAME`` in the same database, its tables copied in one REPEATABLE READ
transaction.

Restore and reset are one transaction each: every table is emptied and refilled (rows, and
the sequences of generated ids), and the simulated clock is set back to the billing time of the
snapshot, so it commits whole or not at all, and concurrent API requests see the state before
or after, never a mixture. Neither runs under a worker tick: on PostgreSQL every write tick
holds a shared advisory lock (``hold_off_restores``) that a restore must take exclusively; on
SQLite a tick holds the database's write lock. On both, a restore waits for that lock only
``BUSY_WAIT`` seconds (the length of an ordinary tick) and is then refused (``Busy``), which
changes nothing.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from zbmc.clock import SIMULATED, Clock, iso, parse_iso
from zbmc.db.engine import unit_of_work
from zbmc.db.migrate import head_revision
from zbmc.db.tables import clock_state, metadata

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
PG_PREFIX = "zbmc_snapshot_"
INFO = "zbmc_snapshot_info"
# Any number of ticks hold it shared; a restore or reset holds it exclusively.
TICK_LOCK = 0x7A626D63
BUSY_WAIT = 1.0  # seconds a restore or reset waits for a running worker tick


class SnapshotError(ValueError):
    pass


class SnapshotNotFound(SnapshotError):
    pass


class Busy(SnapshotError):
    pass


@dataclass(frozen=True)
class Snapshot:
    name: str
    saved_at: str  # wall-clock time of the save
    billing_time: str  # the billing clock then; a restore brings it back
    clock_mode: str
    revision: str

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {
            "name": data["name"],
            "savedAt": data["saved_at"],
            "billingTime": data["billing_time"],
            "clockMode": data["clock_mode"],
            "revision": data["revision"],
        }


def hold_off_restores(conn: Connection) -> None:
    """A worker's write tick calls this first: no restore or reset starts until it commits."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": TICK_LOCK})


def _check_name(name: str) -> str:
    if not NAME.match(name):
        raise SnapshotError(
            f"snapshot name {name!r}: use 1 to 40 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def _tables() -> list[Table]:
    return list(metadata.sorted_tables)  # parents before children


def _columns(table: Table) -> str:
    return ", ".join(f'"{column.name}"' for column in table.columns)


def _info_row(conn: Connection, clock: Clock, name: str) -> dict[str, Any]:
    mode, _offset = clock.state(conn)
    return {
        "name": name,
        "saved_at": iso(clock.wall()),
        "billing_now": clock.now(conn),
        "clock_mode": mode,
        "revision": head_revision() or "",
    }


def _snapshot(row: Mapping[str, Any]) -> Snapshot:
    return Snapshot(
        name=str(row["name"]),
        saved_at=str(row["saved_at"]),
        billing_time=iso(int(row["billing_now"])) or "",
        clock_mode=str(row["clock_mode"]),
        revision=str(row["revision"]),
    )


_INFO_DDL = (
    "CREATE TABLE {info} (name VARCHAR(40) NOT NULL, saved_at VARCHAR(20) NOT NULL, "
    "billing_now BIGINT NOT NULL, clock_mode VARCHAR(20) NOT NULL, revision VARCHAR(40) NOT NULL)"
)
_INFO_INSERT = (
    "INSERT INTO {info} (name, saved_at, billing_now, clock_mode, revision) "
    "VALUES (:name, :saved_at, :billing_now, :clock_mode, :revision)"
)


class Snapshots:
    """Save, list, delete and restore snapshots of one database; reset it."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self.sqlite = engine.dialect.name == "sqlite"

    # --- SQLite files -----------------------------------------------------------------------

    def directory(self) -> Path:
        database = make_url(str(self.engine.url)).database
        if not self.sqlite or not database or database == ":memory:":
            raise SnapshotError("snapshots of SQLite need a database file")
        return Path(database).resolve().parent / "snapshots"

    def _file(self, name: str) -> Path:
        return self.directory() / f"{_check_name(name)}.sqlite3"

    # --- save, list, delete -----------------------------------------------------------------

    def save(self, name: str) -> Snapshot:
        _check_name(name)
        if self.sqlite:
            return self._save_sqlite(name)
        schema = f'"{PG_PREFIX}{name}"'
        with unit_of_work(self.engine) as conn:
            # every table as of one moment
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            for table in _tables():
                conn.exec_driver_sql(
                    f'CREATE TABLE {schema}."{table.name}" AS '
                    f'SELECT {_columns(table)} FROM "{table.name}"'
                )
            info = f"{schema}.{INFO}"
            conn.exec_driver_sql(_INFO_DDL.format(info=info))
            row = _info_row(conn, self.clock, name)
            conn.execute(text(_INFO_INSERT.format(info=info)), row)
        return self.get(name)

    def _save_sqlite(self, name: str) -> Snapshot:
        target = self._file(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        with self.engine.connect() as conn:
            copy = sqlite3.connect(partial)
            try:
                # One step: a consistent copy, writers carry on meanwhile (WAL).
                conn.connection.driver_connection.backup(copy)  # type: ignore[union-attr]
                copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                with unit_of_work(self.engine, write=False) as reading:
                    row = _info_row(reading, self.clock, name)
                copy.execute(_INFO_DDL.format(info=INFO))
                copy.execute(_INFO_INSERT.format(info=INFO), row)
                copy.commit()
            finally:
                copy.close()
        partial.replace(target)  # a crash mid-save leaves the older snapshot whole
        return self.get(name)

    def get(self, name: str) -> Snapshot:
        for snapshot in self.list():
            if snapshot.name == name:
                return snapshot
        raise SnapshotNotFound(f"snapshot {name!r} does not exist")

    def list(self) -> list[Snapshot]:
        found: list[Snapshot] = []
        if self.sqlite:
            directory = self.directory()
            for path in sorted(directory.glob("*.sqlite3")) if directory.is_dir() else []:
                with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                    db.row_factory = sqlite3.Row
                    row = db.execute(f"SELECT * FROM {INFO}").fetchone()
                found.append(_snapshot(dict(row)))
            return found
        with unit_of_work(self.engine, write=False) as conn:
            schemas = conn.execute(
                text(
                    "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, :prefix) "
                    "ORDER BY nspname"
                ),
                {"prefix": PG_PREFIX},
            ).scalars()
            for schema in list(schemas):
                row = conn.exec_driver_sql(f'SELECT * FROM "{schema}".{INFO}').first()
                if row is not None:
                    found.append(_snapshot(dict(row._mapping)))
        return found

    def delete(self, name: str) -> None:
        self.get(_check_name(name))
        if self.sqlite:
            self._file(name).unlink()
            return
        with unit_of_work(self.engine) as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{PG_PREFIX}{name}" CASCADE')

    # --- restore and reset ------------------------------------------------------------------

    def restore(self, name: str) -> Snapshot:
        snapshot = self.get(_check_name(name))
        if snapshot.revision != (head_revision() or ""):
            raise SnapshotError(
                f"snapshot {name!r} was taken at schema revision {snapshot.revision}; "
                f"the database is at {head_revision()}"
            )
        source = '"zbmc_source"' if self.sqlite else f'"{PG_PREFIX}{name}"'
        attach = self._file(name) if self.sqlite else None
        try:
            self._fill(snapshot, source, attach)
        except DBAPIError as exc:
            raise SnapshotError(
                f"snapshot {name!r} could not be restored, nothing changed: {exc.orig}"
            ) from None
        return snapshot

    def _fill(self, snapshot: Snapshot, source: str, attach: Path | None) -> None:
        with self._exclusive(attach) as conn:
            self._empty(conn)
            for table in _tables():
                columns = _columns(table)
                conn.exec_driver_sql(
                    f'INSERT INTO "{table.name}" ({columns}) '
                    f'SELECT {columns} FROM {source}."{table.name}"'
                )
            self._after_fill(conn)
            if snapshot.clock_mode == SIMULATED:
                # The billing time comes back with the data (simulated time = wall + offset).
                offset = parse_iso(snapshot.billing_time) - self.clock.wall()
                conn.execute(clock_state.update().values(offset_seconds=offset))

    def reset(self, demo: bool = False) -> dict[str, str]:
        """Empty every table (the system clock again); with ``demo``, set up the demo of
        ``zbmc serve --demo`` in the same transaction. Returns the demo's key, if any."""
        from zbmc.demo import ensure_demo

        with self._exclusive(None) as conn:
            self._empty(conn)
            self._after_fill(conn)
            if not demo:
                return {}
            key = ensure_demo(conn, self.clock).key
        return {
            "tenantId": key.tenant_id,
            "accessKeyId": key.access_key_id,
            "accessKeyPassword": key.access_key_password,
        }

    @contextlib.contextmanager
    def _exclusive(self, attach: Path | None) -> Iterator[Connection]:
        """One write transaction that no worker tick overlaps, with ``attach`` (SQLite) as
        the schema ``zbmc_source``; raises ``Busy`` rather than waiting for a tick."""
        with self.engine.connect() as conn:
            if not self.sqlite:
                with conn.begin():
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(BUSY_WAIT * 1000)}ms'")
                    try:
                        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": TICK_LOCK})
                    except OperationalError as exc:
                        if "lock timeout" in str(exc):
                            raise Busy(
                                "a worker tick is in progress; nothing changed, try again"
                            ) from None
                        raise
                    conn.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
                    try:
                        yield conn
                    except OperationalError as exc:
                        if "lock timeout" in str(exc):
                            raise Busy(
                                "the tables stayed locked by other transactions; "
                                "nothing changed, try again"
                            ) from None
                        raise
                return
            raw: Any = conn.connection.driver_connection
            raw.execute(f"PRAGMA busy_timeout={int(BUSY_WAIT * 1000)}")
            if attach is not None:
                raw.execute("ATTACH DATABASE ? AS zbmc_source", (str(attach),))
            try:
                try:
                    transaction = conn.begin()  # BEGIN IMMEDIATE (zbmc.db.engine)
                except (OperationalError, sqlite3.OperationalError) as exc:
                    if "locked" in str(exc) or "busy" in str(exc):
                        raise Busy(
                            "a worker tick (or another write) holds the database; "
                            "nothing changed, try again"
                        ) from None
                    raise
                with transaction:
                    conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
                    yield conn
            finally:
                if attach is not None:
                    raw.execute("DETACH DATABASE zbmc_source")
                raw.execute("PRAGMA busy_timeout=30000")

    def _empty(self, conn: Connection) -> None:
        if self.sqlite:
            for table in reversed(_tables()):
                conn.exec_driver_sql(f'DELETE FROM "{table.name}"')
        else:
            names = ", ".join(f'"{table.name}"' for table in _tables())
            conn.exec_driver_sql(f"TRUNCATE {names}")

    def _after_fill(self, conn: Connection) -> None:
        """Generated ids continue after the highest id present (SQLite's rowid tables do that
        by themselves; ``sqlite_sequence`` exists only for AUTOINCREMENT ones)."""
        sequences = not self.sqlite or bool(
            conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"
            ).first()
        )
        for table in _tables():
            column = table.autoincrement_column
            if column is None or not sequences:
                continue
            if self.sqlite:
                conn.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (table.name,))
                conn.exec_driver_sql(
                    "INSERT INTO sqlite_sequence (name, seq) "
                    f'SELECT ?, MAX("{column.name}") FROM "{table.name}" '
                    f'WHERE "{column.name}" IS NOT NULL',
                    (table.name,),
                )
            else:
                conn.execute(
                    text(
                        "SELECT setval(pg_get_serial_sequence(:table, :column), "
                        f'COALESCE(MAX("{column.name}"), 0) + 1, false) FROM "{table.name}"'
                    ),
                    {"table": table.name, "column": column.name},
                )
