"""Many rows in few statements, through the driver (SQLAlchemy's public API only).

SQLAlchemy processes every parameter of every row in Python before it reaches the
driver; these helpers compile a statement once, apply the columns' own bind
processors, and send hundreds of rows a statement.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table

from ledger.batching import pieces

__all__ = ["SQLITE_ROWS", "bind_processors", "bulk_insert", "insert_many_returning"]

# Rows per multi-row INSERT: SQLite binds at most 32,766 parameters per statement since
# 3.32, 999 before (a Python built against an older system library).
SQLITE_ROWS = 500 if sqlite3.sqlite_version_info >= (3, 32) else 999 // 8

# Rows per multi-row INSERT on PostgreSQL (SQLAlchemy's own page size; the server binds
# at most 65,535 parameters per statement).
_PG_ROWS = 1000


def bulk_insert(
    session: Any,
    statement: Any,
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    encoded: tuple[str, ...] = (),
) -> None:
    """Execute `statement` for every row (tuples in `columns` order) in one driver call.

    Skips SQLAlchemy's per-row parameter processing; the columns' bind processors still
    apply (JSON serialised as SQLAlchemy would), except to `encoded` ones (JSON text).
    """
    connection = session.connection()
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(columns))
    table = statement.table
    for i, name in enumerate(columns):
        if name in encoded:
            continue
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            rows = [(*r[:i], process(r[i]), *r[i + 1 :]) for r in rows]
    if compiled.positional:
        order = [columns.index(name) for name in compiled.positiontup]
        params: list[Any] = rows
        if order != list(range(len(columns))):
            params = [tuple(r[i] for i in order) for r in rows]
    else:
        params = [dict(zip(columns, r, strict=True)) for r in rows]
    if dialect.name == "sqlite":
        _sqlite_many(connection, compiled.string, params)
    else:
        connection.exec_driver_sql(compiled.string, params)


def bind_processors(connection: Any, table: Table, columns: tuple[str, ...]) -> list[Callable[[Any], Any]]:
    """The bind processor of each of `columns` on this connection's dialect (identity if none)."""
    dialect = connection.dialect
    return [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) or _identity for name in columns]


def insert_many_returning(
    connection: Any, statement: Any, columns: tuple[str, ...], params: list[Any]
) -> list[Any]:
    """Execute the one-row INSERT `statement` (with RETURNING) for every `len(columns)`
    values of `params` (bind processors applied, columns in `columns` order); the rows
    it returns, in no particular order."""
    compiled = statement.compile(dialect=connection.dialect, column_keys=list(columns))
    sql = compiled.string
    if not compiled.positional:  # psycopg's "%(name)s": VALUES names the columns in order
        sql = re.sub(r"%\((\w+)\)s", "%s", sql)
    size = SQLITE_ROWS if connection.dialect.name == "sqlite" else _PG_ROWS
    return _many_values(connection, sql, params, len(columns), size)


def _identity(value: Any) -> Any:
    return value


def _sqlite_many(connection: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
    # Hundreds of rows per statement: sqlite3's executemany releases and retakes the GIL for
    # every row, and while paho's thread is busy each retake waits (a convoy). Always the
    # same number of rows per statement (the rest row by row): sqlite3 caches every distinct
    # statement, and one per burst size would cost memory in proportion to the fleet.
    full = len(rows) - len(rows) % SQLITE_ROWS
    if full:
        _many_values(connection, sql, [v for r in rows[:full] for v in r], len(rows[0]), SQLITE_ROWS)
    if full < len(rows):
        connection.exec_driver_sql(sql, rows[full:])


def _many_values(connection: Any, sql: str, params: list[Any], width: int, size: int) -> list[Any]:
    # At most `size` rows a statement, in pieces of a few fixed lengths: a bounded set of
    # distinct statements (each one cached by the driver), however many rows come.
    head, _, tail = sql.partition(" VALUES ")
    end = tail.index(")") + 1  # "(?, ?, ...)": no nested parentheses
    group, rest = tail[:end], tail[end:]
    returned: list[Any] = []
    for a, b in pieces(len(params) // width, size):
        statement = f"{head} VALUES {', '.join([group] * (b - a))}{rest}"
        result = connection.exec_driver_sql(statement, tuple(params[a * width : b * width]))
        if result.returns_rows:
            returned += result.fetchall()
    return returned
