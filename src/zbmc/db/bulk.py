"""The worker's batch inserts and updates (thousands of rows per tick), done the fastest way per
dialect: the one place that chooses by dialect.

PostgreSQL: ``COPY ... FROM STDIN``, in the current transaction. In a 100 000 instance catch-up
(bench/worker_catchup.py) the renewals' order and ledger inserts took 15 s as psycopg's pipelined
executemany of the precompiled INSERT, about 1 s as COPY; multi-row ``INSERT ... VALUES`` (100 to
2000 rows a statement) was slower than executemany. SQLite: the precompiled INSERT's
executemany (``zbmc.db.direct``), one prepared statement stepped per row.

``NewRows`` inserts only the rows whose key is not stored yet (traffic samples, 10 000 a batch):
one ``INSERT ... ON CONFLICT DO NOTHING``, which on PostgreSQL takes all the rows as one array
per column (``unnest``), in one round trip.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ClauseElement

from zbmc.db.direct import Db, Statement, Tx

Processor = Callable[[Any], Any]


class Inserter:
    """Inserts rows into ``table``: dicts keyed by the names in ``columns`` (the columns left
    out take their defaults, as in an INSERT)."""

    def __init__(self, table: Table, columns: Sequence[str], *, row: str | None = None) -> None:
        self.table = table
        self.columns = list(columns)
        # ``row``: the key column, for ``Statement.row`` (the request path's one-row inserts)
        self.statement = Statement(table.insert(), columns=self.columns, row=row)
        self._values = operator.itemgetter(*self.columns)
        self._copy: dict[str, tuple[str, list[tuple[int, Processor]]]] = {}

    def insert(self, db: Db, rows: Sequence[Mapping[str, Any]]) -> None:
        tx = _on_postgres(db, self.statement, rows)
        if tx is None:
            return
        sql, processors = self._copy_for(tx.dialect)
        tx.writes += 1
        values = self._values
        with tx.dbapi.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                if not processors:
                    copy.write_row(values(row))
                    continue
                processed = list(values(row))
                for index, process in processors:
                    processed[index] = process(processed[index])
                copy.write_row(processed)

    def _copy_for(self, dialect: Dialect) -> tuple[str, list[tuple[int, Processor]]]:
        found = self._copy.get(dialect.name)
        if found is None:
            quote = dialect.identifier_preparer
            names = ", ".join(quote.quote(name) for name in self.columns)
            processors: list[tuple[int, Processor]] = []
            for index, name in enumerate(self.columns):
                process = self.table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                if process is not None:  # as the INSERT's parameters would be
                    processors.append((index, process))
            found = self._copy[dialect.name] = (
                f"COPY {quote.format_table(self.table)} ({names}) FROM STDIN",
                processors,
            )
        return found


def _on_postgres(db: Db, statement: Statement, rows: Sequence[Mapping[str, Any]]) -> Tx | None:
    """The transaction, for rows to write on PostgreSQL; None when there is nothing left to do
    (no rows, or SQLite, where the statement's executemany has written them)."""
    if not rows:
        return None
    tx = Tx.of(db)
    if tx.dialect.name != "postgresql":
        tx.run_many(statement, rows)
        return None
    return tx


class NewRows:
    """Inserts the rows (tuples in the order of ``columns``) whose ``key`` (a column, or the
    columns of a composite key) is not in ``table`` yet, in the order given; returns how many
    it inserted. A row whose key another transaction is inserting waits for it (PostgreSQL) and
    is left out if that one commits."""

    def __init__(self, table: Table, columns: Sequence[str], key: str | Sequence[str]) -> None:
        self.table = table
        self.columns = list(columns)
        self.key = (key,) if isinstance(key, str) else tuple(key)
        self._sql: dict[str, str] = {}

    def insert(self, db: Db, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        tx = Tx.of(db)
        sql = self._sql.get(tx.dialect.name) or self._compile(tx.dialect)
        if tx.dialect.name == "postgresql":
            arrays = [list(values) for values in zip(*rows, strict=True)]
            return tx.run_text(sql, arrays, self.table.name)
        tx.writes += 1
        cursor = tx.dbapi.cursor()
        try:
            cursor.executemany(sql, rows)
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def _compile(self, dialect: Dialect) -> str:
        for name in self.columns:  # the rows go to the driver as they are
            if self.table.c[name].type.dialect_impl(dialect).bind_processor(dialect) is not None:
                raise ValueError(f"{self.table.name}.{name} needs a bind processor")
        quote = dialect.identifier_preparer
        names = ", ".join(quote.quote(name) for name in self.columns)
        table = quote.format_table(self.table)
        conflict = f"ON CONFLICT ({', '.join(quote.quote(k) for k in self.key)}) DO NOTHING"
        if dialect.name == "postgresql":
            arrays = ", ".join(
                f"%s::{self.table.c[name].type.compile(dialect)}[]" for name in self.columns
            )
            sql = f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) {conflict}"
        else:
            marks = ", ".join("?" for _ in self.columns)
            sql = f"INSERT INTO {table} ({names}) VALUES ({marks}) {conflict}"
        self._sql[dialect.name] = sql
        return sql


class Updater:
    """Updates many rows, each picked by equality on ``keys`` and given ``values`` (both map a
    column to the name of its parameter in the row dicts); ``fixed`` columns get the same value
    in every row. The rows' keys must be distinct (each names one row to change).

    PostgreSQL: one ``UPDATE ... FROM unnest(...)`` with one array per parameter, one round
    trip. psycopg's executemany of the same UPDATE sends every row through its pipeline mode,
    which polls the socket while it waits: under the Modify load the worker thread's two
    executemany per tick (the due orders' instances and orders) took 7 % of the API process's
    CPU (docs/performance.md). SQLite: the precompiled statement's executemany.
    """

    def __init__(
        self,
        table: Table,
        keys: Mapping[str, str],
        values: Mapping[str, str],
        fixed: Mapping[str, Any] | None = None,  # values, or SQL expressions without parameters
    ) -> None:
        self.table = table
        self.keys = dict(keys)
        self.values = dict(values)
        self.fixed = dict(fixed or {})
        self.statement = Statement(
            table.update()
            .where(*(table.c[column] == bindparam(name) for column, name in self.keys.items()))
            .values({column: bindparam(name) for column, name in self.values.items()} | self.fixed)
        )
        self.names = [*self.keys.values(), *self.values.values()]
        self._sql: dict[str, str] = {}

    def update(self, db: Db, rows: Sequence[Mapping[str, Any]]) -> None:
        tx = _on_postgres(db, self.statement, rows)
        if tx is None:
            return
        sql = self._sql.get(tx.dialect.name) or self._compile(tx.dialect)
        params: dict[str, Any] = {name: [row[name] for row in rows] for name in self.names}
        params.update(
            {
                f"fixed_{column}": value
                for column, value in self.fixed.items()
                if not isinstance(value, ClauseElement)
            }
        )
        tx.writes += 1
        tx.dbapi.execute(sql, params)

    def _compile(self, dialect: Dialect) -> str:
        quote = dialect.identifier_preparer
        table = quote.format_table(self.table)
        columns = {**self.keys, **self.values}
        for column in columns:  # the arrays go to the driver as they are
            if self.table.c[column].type.dialect_impl(dialect).bind_processor(dialect):
                raise ValueError(f"{self.table.name}.{column} needs a bind processor")
        arrays = ", ".join(
            f"%({name})s::{self.table.c[column].type.compile(dialect)}[]"
            for column, name in columns.items()
        )
        aliases = ", ".join(quote.quote(name) for name in columns.values())
        sets = [f"{quote.quote(c)} = v.{quote.quote(n)}" for c, n in self.values.items()]
        for column, value in self.fixed.items():
            inline = isinstance(value, ClauseElement)
            given = str(value.compile(dialect=dialect)) if inline else f"%(fixed_{column})s"
            sets.append(f"{quote.quote(column)} = {given}")
        where = " AND ".join(
            f"{table}.{quote.quote(c)} = v.{quote.quote(n)}" for c, n in self.keys.items()
        )
        sql = (
            f"UPDATE {table} SET {', '.join(sets)}"
            f" FROM unnest({arrays}) AS v({aliases}) WHERE {where}"
        )
        self._sql[dialect.name] = sql
        return sql
