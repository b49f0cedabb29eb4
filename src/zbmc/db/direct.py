"""Statements run straight on the DBAPI connection: the request path's hot actions and the
worker's batches.

SQLAlchemy's ``Connection`` costs about 100 µs per statement and 150 µs per transaction
(checkout, events, transaction objects) on the project's machine, against about 10 µs for the
SQLite statement itself; the whole budget of a ModifyInstanceBandwidth request is about 400 µs
(docs/performance.md). So a hot statement is still written once, as SQLAlchemy Core (portable,
typed against ``zbmc.db.tables``), but it is compiled once per dialect by ``Statement`` and run by
``Tx`` on the raw DBAPI cursor, with the column types' bind and result processors applied (so a
SQLite Boolean still reads as ``bool``). On PostgreSQL each round trip through psycopg's Python
layers is most of a statement's client cost: the parameters are positional (psycopg takes them as
they are), a transaction reuses one cursor, and ``Tx.later`` sends a write with the next
statement.

``DirectDb`` holds one DBAPI connection per thread, checked out of the engine's pool once, and
runs transactions on it the way ``zbmc.db.engine.unit_of_work`` does (``BEGIN IMMEDIATE`` for
writes on SQLite, READ COMMITTED with explicit row locks on PostgreSQL).
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import re
import threading
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import JSON, BigInteger, Engine, Integer, String, Table, bindparam
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import Executable, TableClause
from sqlalchemy.sql.sqltypes import NullType
from sqlalchemy.sql.util import find_tables

from zbmc.db.engine import Checkpointer, WriteTurns, checkpoint

Params = Mapping[str, Any]
Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Bind:
    name: str
    required: bool  # a named parameter (else a literal of the statement, bound to ``default``)
    default: Any
    process: Processor | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positional: bool
    binds: tuple[_Bind, ...]
    row_type: Callable[..., Any] | None
    processors: tuple[tuple[int, Processor], ...]
    dml: bool  # INSERT, UPDATE or DELETE (counted in ``Tx.writes``, RETURNING or not)
    # What ``Tx.later`` needs to know: the tables the statement writes, and every table it
    # reads or writes (including, for a write, the tables that a foreign key links to its
    # table in either direction); None when unknown (text).
    writes: frozenset[str]
    touches: frozenset[str] | None
    # The usual case on SQLite: no bind processor. Then the arguments are the parameters in
    # order, picked in C (set from the binds); the statement's literals are merged in last, so
    # a parameter can never replace one.
    pick: Callable[[Params], Sequence[Any]] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        names = [b.name for b in self.binds]
        if not names or not self.positional or any(b.process for b in self.binds):
            return
        get: Callable[[Params], Sequence[Any]]
        if len(names) == 1:
            name = names[0]
            get = lambda params: (params[name],)  # noqa: E731
        else:
            get = operator.itemgetter(*names)
        literals = {b.name: b.default for b in self.binds if not b.required}
        pick = (lambda params: get({**params, **literals})) if literals else get
        object.__setattr__(self, "pick", pick)

    def args(self, params: Params) -> Sequence[Any] | dict[str, Any]:
        if self.pick is not None:
            return self.pick(params)
        values = []
        for bind in self.binds:
            value = params[bind.name] if bind.required else bind.default
            values.append(value if bind.process is None else bind.process(value))
        if self.positional:
            return values
        return dict(zip((b.name for b in self.binds), values, strict=True))

    def rows(self, raws: list[Sequence[Any]]) -> list[Any]:
        assert self.row_type is not None
        if not self.processors:
            return [self.row_type(*raw) for raw in raws]
        rows = []
        for raw in raws:
            values = list(raw)
            for index, process in self.processors:
                values[index] = process(values[index])
            rows.append(self.row_type(*values))
        return rows


class InList(ColumnElement[bool]):
    """``column IN`` the strings of one list parameter (``name``), which a ``Statement`` can
    precompile, unlike ``in_``'s expanding parameter: ``= ANY(array)`` on PostgreSQL,
    ``IN (SELECT value FROM json_each(?))`` on SQLite (the list goes as one JSON text)."""

    inherit_cache = True
    # not Boolean: on SQLite a Boolean expression in WHERE becomes ``(...) = 1``, which no index
    # serves
    type = NullType()  # type: ignore[assignment]

    def __init__(self, column: ColumnElement[Any], name: str) -> None:
        self.column = column
        self.name = name


@compiles(InList, "postgresql")
def _in_list_postgres(element: InList, compiler: SQLCompiler, **kw: Any) -> str:
    # Imported here: the PostgreSQL dialect costs a SQLite command (the admin CLI) ~35 ms.
    from sqlalchemy.dialects.postgresql import ARRAY

    values = compiler.process(bindparam(element.name, type_=ARRAY(String)), **kw)
    return f"{compiler.process(element.column, **kw)} = ANY({values})"


@compiles(InList, "sqlite")
def _in_list_sqlite(element: InList, compiler: SQLCompiler, **kw: Any) -> str:
    values = compiler.process(bindparam(element.name, type_=JSON), **kw)
    return f"{compiler.process(element.column, **kw)} IN (SELECT value FROM json_each({values}))"


class InlineInt(ColumnElement[int]):
    """A named integer (a LIMIT or OFFSET) that ``Statement.inline`` writes into the SQL text on
    PostgreSQL, and that is an ordinary parameter elsewhere. PostgreSQL prepares a statement
    psycopg has run five times, and then plans it once for any parameters (a generic plan)
    when that looks as cheap as planning each call: with LIMIT and OFFSET unknown, the generic
    plan of a DescribeInstances page joins every instance of the tenant (12 ms instead of
    0.4 ms, docs/performance.md), and the cost estimate then keeps it planning every call
    (0.6 ms of planning for 0.4 ms of work). Written into the text, the numbers are known to
    the plan, which is made once per page size and offset."""

    inherit_cache = True
    type = Integer()

    def __init__(self, name: str) -> None:
        self.name = name


_INLINE = "__zbmc_inline_{}__"  # not valid SQL: a statement run without ``inline`` fails


@compiles(InlineInt, "postgresql")
def _inline_int_postgres(element: InlineInt, compiler: SQLCompiler, **kw: Any) -> str:
    return _INLINE.format(element.name)


@compiles(InlineInt)
def _inline_int_default(element: InlineInt, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(bindparam(element.name, type_=Integer), **kw)


class NewRowVersion(ColumnElement[int]):
    """A new random ``row_version`` (migration 0010's triggers set one on every write). A
    frequent UPDATE sets it itself: on SQLite the trigger, which fires only when a write left
    the version as it was, then has nothing to do (its own UPDATE of the row cost about 3 µs)."""

    inherit_cache = True
    type = BigInteger()


@compiles(NewRowVersion, "postgresql")
def _new_row_version_postgres(element: NewRowVersion, compiler: SQLCompiler, **kw: Any) -> str:
    return "(random() * 9.2e18)::bigint"


@compiles(NewRowVersion, "sqlite")
def _new_row_version_sqlite(element: NewRowVersion, compiler: SQLCompiler, **kw: Any) -> str:
    return "random()"


class Statement:
    """A Core statement compiled once per dialect. Its bind parameters are named
    (``bindparam("x")``); literal values in it are bound from the statement itself. ``columns``
    names the columns an INSERT without ``values()`` sets (default: all of the table's)."""

    def __init__(
        self, clause: Executable, columns: Sequence[str] | None = None, *, row: str | None = None
    ) -> None:
        self.clause = clause
        self.columns = None if columns is None else list(columns)
        # A write of exactly one row, named by this parameter (the INSERT's key, the UPDATE's
        # WHERE key = :row): two of its writes of different rows may wait together (Tx.later)
        self.row = row
        self._compiled: dict[str, _Compiled] = {}
        self._last: tuple[Dialect, _Compiled] | None = None

    def compiled(self, dialect: Dialect) -> _Compiled:
        last = self._last
        if last is not None and last[0] is dialect:
            return last[1]
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = self._build(dialect)
        self._last = (dialect, found)
        return found

    def _build(self, dialect: Dialect) -> _Compiled:
        return _compile(self.clause, dialect, self.columns)

    def inline(self, **values: int) -> Statement:
        """This statement with the named ``InlineInt`` values written into its SQL text on
        PostgreSQL; elsewhere the statement itself (the values are then parameters, which the
        caller passes as usual). One statement per set of values, the last few hundred kept."""
        return _inlined(self, tuple(sorted((name, int(value)) for name, value in values.items())))


class _Inlined(Statement):
    def __init__(self, base: Statement, values: tuple[tuple[str, int], ...]) -> None:
        super().__init__(base.clause, base.columns)
        self._base = base
        self._values = values

    def _build(self, dialect: Dialect) -> _Compiled:
        found = self._base.compiled(dialect)
        if dialect.name != "postgresql":
            return found
        sql = found.sql
        for name, value in self._values:
            sql = sql.replace(_INLINE.format(name), str(value))
        return dataclasses.replace(found, sql=sql)


@functools.lru_cache(maxsize=512)
def _inlined(base: Statement, values: tuple[tuple[str, int], ...]) -> Statement:
    return _Inlined(base, values)


def _compile(clause: Executable, dialect: Dialect, columns: list[str] | None) -> _Compiled:
    compiled = clause.compile(dialect=dialect, column_keys=columns)  # type: ignore[attr-defined]
    sql = compiled.string
    if "POSTCOMPILE" in sql:
        raise ValueError("expanding (IN) parameters cannot be precompiled: use OR")
    defaults = compiled.params
    positional = bool(compiled.positional)
    names = compiled.positiontup if positional else list(compiled.binds)
    if not positional and dialect.paramstyle == "pyformat":
        # psycopg: ``%(name)s`` -> ``%s`` with the arguments in order, which psycopg takes
        # without matching names per call, and which ``Tx.later`` can put side by side.
        found = _NAMED.findall(sql)
        if all(name in compiled.binds for name in found):
            sql, names, positional = _NAMED.sub("%s", sql), found, True
    binds = []
    for name in names:
        bind = compiled.binds[name]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        binds.append(_Bind(name, bool(bind.required), defaults.get(name), process))
    selected = list(getattr(clause, "exported_columns", ()))
    row_type: Callable[..., Any] | None = None
    processors: list[tuple[int, Processor]] = []
    if selected:
        row_type = namedtuple("Row", [c.key for c in selected])  # type: ignore[misc,no-redef]
        for index, column in enumerate(selected):
            process = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if process is not None:
                processors.append((index, process))
    dml = bool(getattr(clause, "is_dml", False))
    writes, touches = _tables(clause, dml)
    return _Compiled(
        sql, positional, tuple(binds), row_type, tuple(processors), dml, writes, touches
    )


_NAMED = re.compile(r"%\((\w+)\)s")


def _tables(clause: Executable, dml: bool) -> tuple[frozenset[str], frozenset[str] | None]:
    found = find_tables(
        clause,  # type: ignore[arg-type]
        check_columns=True,
        include_aliases=True,
        include_joins=True,
        include_selects=True,
        include_crud=True,
    )
    touches = {table.name for table in found if isinstance(table, TableClause)}
    if not touches:
        return frozenset(), None
    writes: set[str] = set()
    target = getattr(clause, "table", None)
    if dml and isinstance(target, Table):
        writes.add(target.name)
        # a foreign key's check reads the other table (and a cascade would write it). Triggers
        # are not seen: the only ones (row_version, migrations 0010-0011) set their own row.
        touches.update(key.column.table.name for key in target.foreign_keys)
        for other in target.metadata.tables.values():
            if any(key.column.table is target for key in other.foreign_keys):
                touches.add(other.name)
    elif dml:
        return frozenset(), None
    return frozenset(writes), frozenset(touches)


def _independent(one: _Compiled, other: _Compiled) -> bool:
    """Neither writes a table the other reads or writes (both known)."""
    if one.touches is None or other.touches is None:
        return False
    return not (one.writes & other.touches or other.writes & one.touches)


class _Waiting(NamedTuple):
    """A write waiting to be sent (``Tx.later``)."""

    compiled: _Compiled
    args: Sequence[Any]
    row: tuple[Statement, Any] | None  # its Statement and the row it writes (``Statement.row``)


def _other_rows(one: tuple[Statement, Any] | None, other: tuple[Statement, Any] | None) -> bool:
    """The same one-row write (``Statement.row``) of two different rows: e.g. two orders'
    INSERTs or two instances' UPDATEs of a batch, which one statement can carry (neither reads
    what the other writes)."""
    return one is not None and other is not None and one[0] is other[0] and one[1] != other[1]


def _in_front(pending: Sequence[_Waiting], sql: str, args: Iterable[Any]) -> tuple[str, list[Any]]:
    """``sql`` with the ``pending`` writes in front (``_with``) and the arguments of all, in
    order."""
    merged = [value for waiting in pending for value in waiting.args]
    merged.extend(args)
    return _with(tuple(waiting.compiled.sql for waiting in pending), sql), merged


@functools.cache
def _with(pending: tuple[str, ...], main: str) -> str:
    """The SQL of ``main`` with the ``pending`` writes in front as data-modifying CTEs
    (PostgreSQL; positional parameters, so the arguments go in the same order)."""
    parts = ", ".join(f"_w{index} AS ({sql})" for index, sql in enumerate(pending))
    return f"WITH {parts} {main}"


class Tx:
    """Statements inside a transaction that someone else owns (``DirectDb.transaction`` or a
    SQLAlchemy unit of work, through ``Tx.of``). ``writes`` counts the statements run through
    it that may have changed rows (an ``UPDATE ... RETURNING`` that returned nothing did not):
    unchanged since a point means nothing to undo since then (``zbmc.pipeline``'s shared
    transactions on PostgreSQL).

    ``later``: a write whose outcome its caller does not need. In a ``DirectDb`` transaction on
    PostgreSQL it waits, and goes to the server with the next statement, as a data-modifying
    CTE in front of it (one round trip instead of two), when neither writes a table the other
    reads or writes (foreign keys count as reads of both tables), or both are the same one-row
    write (``Statement.row``) of different rows: the parts of one statement see the same
    snapshot, so they must not depend on each other's changes. So the orders' INSERTs and the
    instances' UPDATEs of a batch of ModifyInstanceBandwidth calls reach the server together
    with the replay guard's records (``run_text``).
    Otherwise the waiting writes go first, on their own. Anything that reaches the DBAPI
    connection (``dbapi``) or ends the transaction sends them first. So every statement sees
    the writes called before it, as if each had been sent at once, and an error of a waiting
    write is raised by a later statement (or the commit) of the same transaction. Elsewhere
    (SQLite, a SQLAlchemy connection through ``Tx.of``) ``later`` is ``run``.
    """

    __slots__ = ("_cursor", "_dbapi", "_waiting", "dialect", "memo", "writes")

    def __init__(self, dbapi_connection: Any, dialect: Dialect, *, defer: bool = False) -> None:
        self._dbapi = dbapi_connection
        self.dialect = dialect
        self.writes = 0
        # the writes waiting (``later``); None: never wait
        self._waiting: list[_Waiting] | None = [] if defer else None
        # psycopg: one cursor for the transaction's statements (``connection.execute`` makes
        # one per statement)
        self._cursor: Any = dbapi_connection.cursor() if defer else None
        # Rows read ahead for later statements of this transaction, by whoever reads them
        # (``zbmc.store.instances.prefetch_for_change``), who also drops them when written.
        self.memo: dict[Any, Any] = {}

    @classmethod
    def of(cls, db: Connection | Tx) -> Tx:
        if isinstance(db, Tx):
            return db
        return cls(db.connection.driver_connection, db.dialect)

    @property
    def dbapi(self) -> Any:
        """The DBAPI connection, with every waiting write sent."""
        if self._waiting:
            self.flush()
        return self._dbapi

    # ``connection.execute`` (sqlite3 and psycopg both have it; sqlite3 opens the cursor in C)
    # closes the cursor when the last reference goes, at the end of the caller.
    def _execute(self, compiled: _Compiled, params: Params | None) -> Any:
        args = compiled.args(params or {})
        waiting = self._waiting
        if waiting is None:
            return self._dbapi.execute(compiled.sql, args)
        if waiting:
            if (
                compiled.positional
                and not compiled.sql.startswith("WITH")
                and all(_independent(compiled, pending.compiled) for pending in waiting)
            ):
                return self._behind_waiting(compiled.sql, args)
            self.flush()
        return self._cursor.execute(compiled.sql, args)

    def rows(self, statement: Statement, params: Params | None = None) -> list[Any]:
        compiled = statement.compiled(self.dialect)
        raws = self._execute(compiled, params).fetchall()
        if compiled.dml and raws:  # RETURNING gives one row per row changed
            self.writes += 1
        return compiled.rows(raws)

    def tuples(self, statement: Statement, params: Params | None = None) -> list[Any]:
        """The result rows as the driver gives them (plain tuples), for a query whose columns
        need no result processing: a named tuple per row costs about 0.4 µs."""
        compiled = statement.compiled(self.dialect)
        if compiled.processors:
            raise ValueError("this query's columns need processing: use rows()")
        return self._execute(compiled, params).fetchall()  # type: ignore[no-any-return]

    def first(self, statement: Statement, params: Params | None = None) -> Any | None:
        found = self.rows(statement, params)
        return found[0] if found else None

    def run(self, statement: Statement, params: Params | None = None) -> int:
        """Execute a statement without result rows; return the number of rows it touched."""
        compiled = statement.compiled(self.dialect)
        self.writes += 1
        return int(self._execute(compiled, params).rowcount)

    def later(self, statement: Statement, params: Params | None = None) -> None:
        """Execute a write without result rows now or with the next statement (see above)."""
        waiting = self._waiting
        compiled = statement.compiled(self.dialect)
        if waiting is None or compiled.touches is None or not compiled.positional:
            self.run(statement, params)
            return
        row = None if statement.row is None else (statement, (params or {})[statement.row])
        if not all(
            _independent(compiled, pending.compiled) or _other_rows(row, pending.row)
            for pending in waiting
        ):
            self.flush()
        self.writes += 1
        waiting.append(_Waiting(compiled, compiled.args(params or {}), row))  # type: ignore[arg-type]

    def run_text(self, sql: str, args: Sequence[Any], table: str) -> int:
        """A write of ``table`` given as SQL with positional parameters (``zbmc.db.bulk``); on
        PostgreSQL the waiting writes go in front of it when none of them touches ``table``.
        Returns the number of rows it changed."""
        self.writes += 1
        waiting = self._waiting
        if waiting and all(
            w.compiled.touches is not None and table not in w.compiled.touches for w in waiting
        ):
            return int(self._behind_waiting(sql, args).rowcount)
        return int(self.dbapi.execute(sql, args).rowcount)

    def _behind_waiting(self, sql: str, args: Iterable[Any]) -> Any:
        """Send ``sql`` with every waiting write in front of it, as one statement."""
        assert self._waiting
        merged_sql, merged = _in_front(self._waiting, sql, args)
        self._waiting.clear()
        return self._cursor.execute(merged_sql, merged)

    def flush(self) -> None:
        """Send the waiting writes (one statement)."""
        waiting = self._waiting
        if not waiting:
            return
        *pending, last = waiting
        waiting.clear()
        if not pending:
            self._cursor.execute(last.compiled.sql, last.args)
            return
        self._cursor.execute(*_in_front(pending, last.compiled.sql, last.args))

    def run_many(self, statement: Statement, params: Sequence[Params]) -> int:
        """Execute a statement once per parameter set; return the rows touched in all."""
        if not params:
            return 0
        compiled = statement.compiled(self.dialect)
        self.writes += 1
        cursor = self.dbapi.cursor()
        try:
            cursor.executemany(compiled.sql, [compiled.args(p) for p in params])
            return int(cursor.rowcount)
        finally:
            cursor.close()


Db = Connection | Tx  # what the functions shared by both kinds of transaction accept


class DirectDb:
    """Transactions on one long-lived DBAPI connection per thread."""

    def __init__(
        self,
        engine: Engine,
        checkpointer: Checkpointer | None = None,
        turns: WriteTurns | None = None,
    ) -> None:
        self.engine = engine
        self.checkpointer = checkpointer  # SQLite: see zbmc.db.engine.Checkpointer
        self.turns = turns  # SQLite: see zbmc.db.engine.WriteTurns
        self.dialect = engine.dialect
        self._sqlite = engine.dialect.name == "sqlite"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._held: list[PoolProxiedConnection] = []

    def _connection(self) -> PoolProxiedConnection:
        held: PoolProxiedConnection | None = getattr(self._local, "connection", None)
        # psycopg marks a connection whose server went away as closed
        if held is None or getattr(held.driver_connection, "closed", False):
            held = self.engine.raw_connection()
            self._local.connection = held
            with self._lock:
                self._held.append(held)
        return held

    def transaction(self, *, write: bool) -> Transaction:
        """One transaction (a context manager giving the ``Tx``), committed when the block
        ends normally and rolled back otherwise."""
        return Transaction(self, write)

    def _rollback(self, held: PoolProxiedConnection) -> None:
        try:
            held.driver_connection.rollback()  # type: ignore[union-attr]
        except Exception:
            # The connection is unusable (the server went away): the next transaction opens
            # a new one.
            held.invalidate()
            self._local.connection = None

    def close(self) -> None:
        """Close every thread's connection (at shutdown)."""
        with self._lock:
            held, self._held = self._held, []
        for connection in held:
            if connection.dbapi_connection is not None:  # not invalidated
                connection.close()


class Transaction:
    """``DirectDb.transaction``: a class rather than a generator-based context manager, which
    costs measurably more on the request path."""

    __slots__ = ("_db", "_held", "_turn", "_tx", "_write", "lost")

    def __init__(self, db: DirectDb, write: bool) -> None:
        self._db = db
        self._write = write
        self._held: PoolProxiedConnection | None = None
        self._tx: Tx | None = None
        self._turn: int | None = None  # SQLite: the writers' turn held (zbmc.db.engine)
        # The transaction failed before its COMMIT was sent because the connection broke
        # (PostgreSQL restarted or ended the session): nothing of it was committed, and the
        # next transaction gets a new connection.
        self.lost = False

    def __enter__(self) -> Tx:
        db = self._db
        held = self._held = db._connection()
        dbapi = held.driver_connection
        if db._sqlite:
            if self._write and db.turns is not None:
                self._turn = db.turns.api()
            try:
                dbapi.execute("BEGIN IMMEDIATE" if self._write else "BEGIN")  # type: ignore[union-attr]
            except BaseException:
                self._end_turn()
                raise
            tx = self._tx = Tx(dbapi, db.dialect)
        else:
            tx = self._tx = Tx(dbapi, db.dialect, defer=True)
        return tx

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        held = self._held
        assert held is not None
        if kind is not None:
            self._failed(held)
            return
        dbapi = held.driver_connection
        try:
            assert self._tx is not None
            self._tx.flush()
        except BaseException:
            self._failed(held)
            raise
        try:
            dbapi.commit()  # type: ignore[union-attr]
        except BaseException:
            self._db._rollback(held)  # whether it committed is unknown: not "lost"
            self._end_turn()
            raise
        checkpointer = self._db.checkpointer
        if checkpointer is not None and checkpointer.restart_wanted:
            # before the turn goes: the writers that take turns wait meanwhile (Checkpointer)
            checkpointer.restart_wanted = False
            checkpoint(dbapi)
        self._end_turn()

    def _end_turn(self) -> None:
        if self._turn is not None:
            WriteTurns.done(self._turn)
            self._turn = None

    def _failed(self, held: PoolProxiedConnection) -> None:
        self.lost = bool(getattr(held.driver_connection, "broken", False))  # psycopg's flag
        try:
            self._db._rollback(held)
        finally:
            self._end_turn()
