"""The statements of a batch of reports (projections.observations), each a few for any number of rows.

Two shapes, one per store, storing the same rows:

- SQLite: multi-row `INSERT ... VALUES` of at most `ledger.bulk.SQLITE_ROWS` rows
  (`bulk_insert`), the run tails as one `executemany` of a compiled UPDATE.
- PostgreSQL: one statement a table and kind, whatever the batch's size, its
  values sent as one array a column and taken apart by `unnest`. The server
  parses and plans it once (the text never changes, so psycopg prepares it),
  and runs one statement instead of one a row: that server work is done by a
  backend not niced like the report process, on the cores the daemon needs.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Table, and_, bindparam, update
from sqlalchemy.dialects.postgresql import insert as _pg_insert
from sqlalchemy.dialects.sqlite import insert as _sqlite_insert
from sqlalchemy.engine import Dialect

from ledger.persistence import bulk_insert

__all__ = ["add_to_runs", "upsert"]


def upsert(session: Any, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Insert `rows` (tuples in `columns` order) into `table`, a row whose primary key is
    stored already replacing that row's other `columns`. No two rows share a key."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql":
        connection.exec_driver_sql(_pg_upsert(table, columns, dialect), _arrays(rows, len(columns)))
        return
    statement = _sqlite_insert(table) if dialect.name == "sqlite" else _pg_insert(table)
    keys = [c.name for c in table.primary_key.columns]
    statement = statement.on_conflict_do_update(
        index_elements=keys,
        set_={name: statement.excluded[name] for name in columns if name not in keys},
    )
    bulk_insert(session, statement, columns, rows)


def add_to_runs(session: Any, table: Table, rows: list[tuple[str, str, str, int]]) -> None:
    """For each (client_id, started_at, last_reported_at, n): that stored run of `table` now
    ends at last_reported_at and counts n reports more."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql":
        connection.exec_driver_sql(_pg_tails(table, dialect), _arrays(rows, 4))
        return
    # Through the driver, compiled once: SQLAlchemy's per-row parameter processing cost more
    # than the UPDATE itself (strings and integers need no bind processing).
    sql, order = _compiled_tails(table, dialect)
    params: list[Any] = [dict(zip(("c", "s", "last", "n"), r, strict=True)) for r in rows]
    if order is not None:
        params = [tuple(p[name] for name in order) for p in params]
    connection.exec_driver_sql(sql, params)


def _arrays(rows: list[tuple[Any, ...]], width: int) -> tuple[list[Any], ...]:
    """The rows as one list a column (psycopg sends each as an array)."""
    return tuple([r[i] for r in rows] for i in range(width))


def _unnest(table: Table, columns: tuple[str, ...], dialect: Dialect) -> str:
    casts = ", ".join(f"%s::{table.c[name].type.compile(dialect=dialect)}[]" for name in columns)
    return f"unnest({casts})"


@functools.lru_cache(maxsize=16)  # a handful of (table, columns) pairs a dialect: one text each
def _pg_upsert(table: Table, columns: tuple[str, ...], dialect: Dialect) -> str:
    quote = dialect.identifier_preparer.quote
    keys = [c.name for c in table.primary_key.columns]
    names = ", ".join(quote(name) for name in columns)
    updates = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in columns if n not in keys)
    target = dialect.identifier_preparer.format_table(table)
    return (
        f"INSERT INTO {target} ({names}) SELECT * FROM {_unnest(table, columns, dialect)} "
        f"ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET {updates}"
    )


@functools.lru_cache(maxsize=16)
def _pg_tails(table: Table, dialect: Dialect) -> str:
    target = dialect.identifier_preparer.format_table(table)
    arrays = _unnest(table, ("client_id", "started_at", "last_reported_at", "reports"), dialect)
    return (
        f"UPDATE {target} AS o SET last_reported_at = u.last, reports = o.reports + u.n "
        f"FROM {arrays} AS u(c, s, last, n) WHERE o.client_id = u.c AND o.started_at = u.s"
    )


@functools.lru_cache(maxsize=16)
def _compiled_tails(table: Table, dialect: Dialect) -> tuple[str, tuple[str, ...] | None]:
    c = table.c
    statement = (
        update(table)
        .where(and_(c.client_id == bindparam("c"), c.started_at == bindparam("s")))
        .values(last_reported_at=bindparam("last"), reports=c.reports + bindparam("n"))
    )
    compiled = statement.compile(dialect=dialect)
    order = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
    return compiled.string, order
