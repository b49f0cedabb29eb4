"""The worker's batch inserts (thousands of rows per tick), done the fastest way per dialect: the
one place that chooses by dialect.

PostgreSQL: ``COPY ... FROM STDIN``, in the current transaction. In a 100 000 instance catch-up
(bench/worker_catchup.py) the renewals' order and ledger inserts took 15 s as psycopg's pipelined
executemany of the precompiled INSERT, about 1 s as COPY; multi-row ``INSERT ... VALUES`` (100 to
2000 rows a statement) was slower than executemany. SQLite: the precompiled INSERT's
executemany (``zbmc.db.direct``), one prepared statement stepped per row.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect

from zbmc.db.direct import Db, Statement, Tx

Processor = Callable[[Any], Any]


class Inserter:
    """Inserts rows into ``table``: dicts keyed by the names in ``columns`` (the columns left
    out take their defaults, as in an INSERT)."""

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = list(columns)
        self.statement = Statement(table.insert(), columns=self.columns)
        self._values = operator.itemgetter(*self.columns)
        self._copy: dict[str, tuple[str, list[tuple[int, Processor]]]] = {}

    def insert(self, db: Db, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        tx = Tx.of(db)
        if tx.dialect.name != "postgresql":
            tx.run_many(self.statement, rows)
            return
        sql, processors = self._copy_for(tx.dialect)
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
