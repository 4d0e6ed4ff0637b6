"""Reading what the screens reported: runs in a period, first and latest reports (DESIGN section 13).

A ledger no daemon has observed has no observation tables: the reads then
answer "no observations" and create nothing (they serve read-only commands).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, and_, func, inspect, select
from sqlalchemy.engine import Engine

from ledger.persistence import driver_rows
from projections.observations import Run, observations, reports

__all__ = [
    "fetch",
    "first_reports",
    "grouped",
    "last_before",
    "latest_reports",
    "present",
    "run_rows",
    "runs_between",
]


def present(engine: Engine, table: Table = observations) -> bool:
    """Whether the ledger has the observation table `table` (created by the first daemon that observes)."""
    return inspect(engine).has_table(table.name)


def last_before(key: Any, order: Any, condition: Any) -> Any:
    """A subquery (key, order): per key, the largest `order` of the rows meeting `condition`."""
    return select(key.label("key"), func.max(order).label("order")).where(condition).group_by(key).subquery()


def fetch(engine: Engine, query: Any) -> list[tuple[Any, ...]]:
    """The rows of `query` as plain tuples from the driver (SQLAlchemy's rows cost twice the fetch)."""
    compiled = query.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.params
    driver_params: Any = tuple(params[n] for n in compiled.positiontup) if compiled.positional else params
    with engine.connect() as conn:
        # Executed through SQLAlchemy (its errors, as every other query's), read from the cursor.
        return driver_rows(conn.exec_driver_sql(compiled.string, driver_params))


def grouped(
    engine: Engine, query: Any, key: Any, clients: Iterable[str] | None
) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of `query` by their first column, only those of `clients` (None: all)."""
    wanted = None if clients is None else set(clients)
    if wanted is not None and len(wanted) <= 500:
        query = query.where(key.in_(sorted(wanted)))
    # The query orders by its first column: each key's rows are neighbours, taken at once.
    groups = itertools.groupby(fetch(engine, query), _first)
    return {k: list(rows) for k, rows in groups if wanted is None or k in wanted}


_first = operator.itemgetter(0)


def runs_between(
    engine: Engine, start: str, end: str, clients: Iterable[str] | None = None
) -> dict[str, list[Run]]:
    """Per screen, its runs that started before `end`: the last one started before `start`
    and every one started in `[start, end)`, oldest first."""
    found = _runs(engine, start, end, clients, Run._fields)
    return {client_id: [Run._make(row[1:]) for row in rows] for client_id, rows in found.items()}


_SPAN = Run._fields[: Run._fields.index("last_reported_at") + 1]


def run_rows(
    engine: Engine, start: str, end: str, clients: Iterable[str] | None = None
) -> dict[str, list[tuple[Any, ...]]]:
    """The runs of `runs_between` as plain rows of the fields of `Run` up to `last_reported_at`,
    in its order: what the compliance fold reads of a run."""
    found = _runs(engine, start, end, clients, _SPAN)
    return {client_id: [row[1:] for row in rows] for client_id, rows in found.items()}


def _runs(
    engine: Engine, start: str, end: str, clients: Iterable[str] | None, fields: tuple[str, ...]
) -> dict[str, list[tuple[Any, ...]]]:
    if not present(engine):
        return {}
    o = observations.c
    before = last_before(o.client_id, o.started_at, o.started_at < start)
    query = (
        select(*(o[name] for name in ("client_id", *fields)))
        .outerjoin(before, and_(before.c.key == o.client_id, before.c.order == o.started_at))
        .where(o.started_at < end)
        .where((o.started_at >= start) | before.c.order.is_not(None))
        .order_by(o.client_id, o.started_at)
    )
    return grouped(engine, query, o.client_id, clients)


def first_reports(engine: Engine, client_id: str) -> dict[tuple[str | None, str], str]:
    """The first report of each (intent_id, tv_state) of one screen: its reported_at."""
    if not present(engine):
        return {}
    o = observations.c
    query = (
        select(o.intent_id, o.tv_state, func.min(o.started_at))
        .where(o.client_id == client_id)
        .group_by(o.intent_id, o.tv_state)
    )
    with engine.connect() as conn:
        return {(intent_id, state): first for intent_id, state, first in conn.execute(query)}


def latest_reports(engine: Engine) -> dict[str, dict[str, Any]]:
    """The latest accepted report of every screen."""
    if not present(engine, reports):
        return {}
    with engine.connect() as conn:
        return {r.client_id: dict(r._mapping) for r in conn.execute(select(reports))}
