"""Many rows in few statements, through the driver (SQLAlchemy's public API only).

SQLAlchemy processes every parameter of every row in Python before it reaches the
driver; these helpers compile a statement once and send hundreds of rows a
statement. SQLite: multi-row VALUES with the columns' own bind processors.
PostgreSQL: the rows as one JSON array (msgspec, in C) taken apart by the server
(`jsonb_array_elements`), one parameter for any number of rows: the driver's
per-value dumping (a Python loop over every array or row) was most of a write's
client CPU, on the daemon's thread.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

import msgspec
from sqlalchemy import JSON, LargeBinary, String, Table

from ledger.batching import pieces

__all__ = [
    "SQLITE_ROWS",
    "SQLITE_STATEMENT_ROWS",
    "bind_processors",
    "bulk_insert",
    "insert_many_returning",
    "insert_many_rowids",
]

# Rows a batch on SQLite at most: it binds at most 32,766 parameters per statement since
# 3.32, 999 before (a Python built against an older system library).
SQLITE_ROWS = 500 if sqlite3.sqlite_version_info >= (3, 32) else 999 // 8

# Rows per multi-row INSERT statement on SQLite (a power of two). sqlite3 keeps every
# distinct statement prepared for the life of the connection, with the values it last
# bound: memory in proportion to its rows, for each table and piece length, while a
# statement of this many rows already takes the GIL once per that many rows.
SQLITE_STATEMENT_ROWS = min(128, SQLITE_ROWS)

# Rows per INSERT on PostgreSQL (one JSON array of this many rows).
_PG_ROWS = 5000
_JSON = msgspec.json.Encoder()  # str as is, UUIDs as their text, bytes as base64


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
    On PostgreSQL the rows go as one JSON array; the stored values are the same.
    """
    connection = session.connection()
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(columns))
    table = statement.table
    if dialect.name == "postgresql":
        # JSON columns are serialised here as SQLAlchemy would (the generic type's processor:
        # the driver's wraps the text), their text stored as it is; other values go as they are.
        for i, name in enumerate(columns):
            if name not in encoded and isinstance(table.c[name].type, JSON):
                process = table.c[name].type.bind_processor(dialect)  # not dialect_impl
                rows = [(*r[:i], process(r[i]), *r[i + 1 :]) for r in rows]
        sql = re.sub(r"%\((\w+)\)s", "%s", compiled.string) if not compiled.positional else compiled.string
        _pg_json(connection, table, sql, rows, columns)
        return
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
    connection: Any, statement: Any, columns: tuple[str, ...], count: int, values: Callable[[int], list[Any]]
) -> list[Any]:
    """Execute the one-row INSERT `statement` (with RETURNING) for each of `count` rows; the
    rows it returns, in no particular order. `values(n)`: the next n rows' values, flat
    (columns in `columns` order; on SQLite with the bind processors applied, on PostgreSQL
    the values themselves: they go as JSON). On SQLite it is asked a statement's rows at a
    time, so only those need to exist while the statement runs."""
    sql = _positional(connection, statement, columns)
    if connection.dialect.name == "postgresql":
        width = len(columns)
        rows = list(zip(*[iter(values(count))] * width, strict=True))
        return _pg_json(connection, statement.table, sql, rows, columns)
    return _many_values(connection, sql, count, values, SQLITE_STATEMENT_ROWS)


def insert_many_rowids(
    connection: Any, statement: Any, columns: tuple[str, ...], count: int, values: Callable[[int], list[Any]]
) -> list[int]:
    """SQLite: execute the one-row INSERT `statement` (no RETURNING) for each of `count` rows,
    as `insert_many_returning` does; the rowids of the rows, in insertion order.

    A statement's rows get consecutive rowids, each one more than the largest before (SQLite's
    rowid rule, with or without AUTOINCREMENT, within a write transaction), so its last row's
    rowid gives them all, as the stock SQLite recorder takes a row's from `lastrowid`. Without
    RETURNING a statement is one step of the driver: RETURNING's rows are stepped one at a
    time, each giving the GIL away and waiting for it back while another thread runs Python.
    (Only a table whose rowids reached 2**63 - 1 would get random ones.)"""
    sql = _positional(connection, statement, columns)
    ids: list[int] = []
    for text, n in _statements(sql, count, SQLITE_STATEMENT_ROWS):
        last: int = connection.exec_driver_sql(text, tuple(values(n))).lastrowid
        ids += range(last - n + 1, last + 1)
    return ids


def _positional(connection: Any, statement: Any, columns: tuple[str, ...]) -> str:
    compiled = statement.compile(dialect=connection.dialect, column_keys=list(columns))
    sql: str = compiled.string
    if not compiled.positional:  # psycopg's "%(name)s": VALUES names the columns in order
        sql = re.sub(r"%\((\w+)\)s", "%s", sql)
    return sql


def _pg_json(
    connection: Any, table: Table, sql: str, rows: list[tuple[Any, ...]], columns: tuple[str, ...]
) -> list[Any]:
    # The rows as one JSON array, taken apart by the server: a short statement, the same text
    # for any number of rows (psycopg parses a long one on every call: it caches only short
    # ones), one round trip for up to _PG_ROWS rows, and no per-value dumping in the driver.
    # jsonb, not json: each row is parsed once, not once a field. WITH ORDINALITY keeps the
    # rows in order (RETURNING ids in insertion order).
    head, _, tail = sql.partition(" VALUES ")
    rest = tail[tail.index(")") + 1 :]
    names = re.search(r"\(([^)]*)\)\s*$", head)
    assert names is not None
    keys = [k.strip().strip('"') for k in names.group(1).split(",")]
    values = ", ".join(_pg_value(table.c[k].type, connection.dialect, columns.index(k)) for k in keys)
    rows_of = "jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS u(x, n)"
    statement = f"{head} SELECT {values} FROM {rows_of} ORDER BY n{rest}"
    returned: list[Any] = []
    for a in range(0, len(rows), _PG_ROWS):
        result = connection.exec_driver_sql(statement, (_JSON.encode(rows[a : a + _PG_ROWS]).decode(),))
        if result.returns_rows:
            returned += result.fetchall()
    return returned


def _pg_value(column_type: Any, dialect: Any, i: int) -> str:
    """The SQL of field `i` of a JSON row `x` as a value of `column_type`."""
    if isinstance(column_type, JSON):
        return f"CAST(x->>{i} AS JSON)"  # JSON text, stored as it is
    if isinstance(column_type, String):
        return f"x->>{i}"  # no cast: too long a value is an error, not truncated
    if isinstance(column_type, LargeBinary):
        return f"decode(x->>{i}, 'base64')"
    return f"CAST(x->>{i} AS {column_type.compile(dialect=dialect)})"


def _identity(value: Any) -> Any:
    return value


def _sqlite_many(connection: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
    # Many rows per statement: sqlite3's executemany releases and retakes the GIL for every
    # row, and while paho's thread is busy each retake waits (a convoy). Always the same
    # number of rows per statement (the rest row by row): sqlite3 caches every distinct
    # statement, and one per burst size would cost memory in proportion to the fleet.
    size = SQLITE_STATEMENT_ROWS
    full = len(rows) - len(rows) % size
    if full:
        taken = iter(rows)
        _many_values(connection, sql, full, lambda n: [v for r in islice(taken, n) for v in r], size)
    if full < len(rows):
        connection.exec_driver_sql(sql, rows[full:])


def _many_values(
    connection: Any, sql: str, count: int, values: Callable[[int], list[Any]], size: int
) -> list[Any]:
    # At most `size` rows a statement, in pieces of a few fixed lengths: a bounded set of
    # distinct statements (each one cached by the driver), however many rows come. Each
    # statement's values are asked for as it is sent.
    returned: list[Any] = []
    for statement, n in _statements(sql, count, size):
        result = connection.exec_driver_sql(statement, tuple(values(n)))
        if result.returns_rows:
            returned += result.fetchall()
    return returned


def _statements(sql: str, count: int, size: int) -> Iterator[tuple[str, int]]:
    """The one-row INSERT `sql` as multi-row statements for `count` rows (at most `size` a
    statement, in pieces of a few fixed lengths), each with its number of rows."""
    head, _, tail = sql.partition(" VALUES ")
    end = tail.index(")") + 1  # "(?, ?, ...)": no nested parentheses
    group, rest = tail[:end], tail[end:]
    for a, b in pieces(count, size):
        yield f"{head} VALUES {', '.join([group] * (b - a))}{rest}", b - a
