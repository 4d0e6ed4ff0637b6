"""Shared by the benchmarks: the generated fleet, database set-up, the report.

Not a benchmark itself. The benchmark scripts put this directory on sys.path
when they run, so they import it as `_common`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
import sqlalchemy

from ledger.persistence import dispose as release_engine
from ledger.sync import Snapshot, SnapshotClient, SnapshotEvent, parse_snapshot
from ledger.values import format_instant
from projections.tables import ALL_TABLES

PG_URL = os.environ.get("INTENT_LEDGER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_SCHEMA = "intent_ledger_bench"
# The ledger's tables and everything the daemon writes beside them (checkpoint, audit read
# model, delivery receipts): a PostgreSQL run starts from none of them.
LEDGER_TABLES = ALL_TABLES

# The generated week starts on a Monday at 00:00 UTC.
WEEK_START = datetime(2026, 3, 30, tzinfo=UTC)
CLIENTS_PER_GROUP = 50
GROUP_EVENTS_PER_WEEK = 60
CLIENT_EVENTS_PER_1000_CLIENTS = 30


@dataclass(frozen=True)
class Fleet:
    snapshot: Snapshot
    clients: int
    groups: int
    group_events: int
    client_events: int
    adjacent: int  # group events starting exactly when the previous one ends
    overlapping: int  # group events starting before the previous one ends

    @property
    def rows(self) -> int:
        """Snapshot rows: clients + events + overrides."""
        s = self.snapshot
        return len(s.clients) + len(s.events) + len(s.overrides)

    def describe(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "groups": self.groups,
            "group_events": self.group_events,
            "client_events": self.client_events,
            "adjacent_group_events": self.adjacent,
            "overlapping_group_events": self.overlapping,
            "snapshot_rows": self.rows,
            "week_start": format_instant(WEEK_START),
        }


def generate_fleet(clients: int, groups: int | None = None, seed: int = 42) -> Fleet:
    """A deterministic fleet and one week of schedule.

    `clients` clients spread evenly over `groups` groups (default: one group per
    50 clients). Each group gets 60 events across the week, placed one after the
    other during the day with mostly a gap between them, some adjacent (the next
    starts when the previous ends) and some overlapping. On top of that, 30
    client events per 1,000 clients (300 for 10,000) on random clients.
    """
    rng = random.Random(seed)
    groups = groups or max(1, clients // CLIENTS_PER_GROUP)
    group_ids = [f"g{g:04d}" for g in range(groups)]
    client_rows = [
        SnapshotClient(client_id=f"c{c:06d}", group_id=group_ids[c % groups]) for c in range(clients)
    ]
    events: list[SnapshotEvent] = []
    adjacent = overlapping = 0
    minute = timedelta(minutes=1)
    for group_id in group_ids:
        # 60 events over 7 days: 9 on four days, 8 on three, shuffled per group.
        per_day = [9, 9, 9, 9, 8, 8, 8]
        rng.shuffle(per_day)
        n = 0
        for day, count in enumerate(per_day):
            t = WEEK_START + timedelta(days=day, hours=7) + rng.randrange(0, 60, 5) * minute
            for _ in range(count):
                start = t
                end = start + rng.randrange(30, 95, 5) * minute
                events.append(
                    SnapshotEvent(
                        event_id=f"{group_id}-e{n:03d}",
                        group_id=group_id,
                        start=format_instant(start),
                        end=format_instant(end),
                    )
                )
                n += 1
                roll = rng.random()
                if roll < 0.15:
                    t = end  # adjacent: must not produce an intermediate off
                    adjacent += 1
                elif roll < 0.25:
                    t = end - rng.randrange(5, 25, 5) * minute  # overlapping
                    overlapping += 1
                else:
                    t = end + rng.randrange(10, 65, 5) * minute
        assert n == GROUP_EVENTS_PER_WEEK
    client_events = max(1, clients * CLIENT_EVENTS_PER_1000_CLIENTS // 1000)
    for k in range(client_events):
        client_id = client_rows[rng.randrange(clients)].client_id
        start = (
            WEEK_START
            + timedelta(days=rng.randrange(7), hours=rng.randrange(6, 20))
            + rng.randrange(0, 60, 15) * minute
        )
        end = start + rng.randrange(1, 4) * timedelta(hours=1)
        events.append(
            SnapshotEvent(
                event_id=f"{client_id}-x{k:04d}",
                client_id=client_id,
                start=format_instant(start),
                end=format_instant(end),
            )
        )
    snapshot = Snapshot(clients=client_rows, events=events)
    return Fleet(
        snapshot, clients, groups, groups * GROUP_EVENTS_PER_WEEK, client_events, adjacent, overlapping
    )


def snapshot_json(fleet: Fleet) -> bytes:
    """The fleet as a snapshot file, exactly what `intent-ledger sync FILE` reads."""
    return msgspec.json.encode(fleet.snapshot)


def validated(fleet: Fleet) -> Snapshot:
    """The snapshot after a round trip through the CLI's parser (validates every row)."""
    return parse_snapshot(snapshot_json(fleet))


# Databases.


@dataclass(frozen=True)
class Database:
    """An empty database for one measurement: its URL and the eventsourcing settings."""

    url: str
    schema: str | None = None  # PostgreSQL schema of the tables (None: SQLite)

    def env(self) -> dict[str, str]:
        """Extra settings for `Ledger(url, env)` and `database_env(url) | env`."""
        return {"SQLALCHEMY_SCHEMA": self.schema} if self.schema else {}

    def table(self, name: str) -> str:
        """A table name as plain SQL must spell it."""
        return f"{self.schema}.{name}" if self.schema else name


def scoped(db: Database) -> Database:
    """PostgreSQL: put the benchmark schema first on the search path of every connection.

    The ledger's own tables honour SQLALCHEMY_SCHEMA, but the read model and a
    daemon in another process (which gets the URL alone) create theirs unqualified:
    without this they would land in `public`, next to the tests'.
    """
    if db.schema is None:
        return db
    sep = "&" if "?" in db.url else "?"
    return Database(f"{db.url}{sep}options={quote(f'-csearch_path={db.schema}')}", db.schema)


def drop_tables(url: str, schema: str, tables: tuple[str, ...], create_schema: bool) -> None:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as conn:
            if create_schema:
                conn.execute(sqlalchemy.text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
            for table in tables:
                conn.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {schema}.{table}"))
    finally:
        engine.dispose()


@contextmanager
def database(
    kind: str, pg_url: str, pg_schema: str, name: str, extra_tables: tuple[str, ...] = ()
) -> Iterator[Database]:
    """An empty database: a fresh SQLite file, or PostgreSQL with our tables dropped.

    `name` names the SQLite file. On PostgreSQL the ledger's tables and
    `extra_tables` are dropped (in `pg_schema`) before and after. The default
    schema is not `public`, so a benchmark does not drop the tables of a test
    run that uses the same database at the same time (and vice versa).
    """
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="intent-ledger-bench-") as tmp:
            yield Database(f"sqlite:///{Path(tmp) / name}.db")
        return
    tables = (*LEDGER_TABLES, *extra_tables)
    drop_tables(pg_url, pg_schema, tables, create_schema=True)
    try:
        yield Database(pg_url, pg_schema)
    finally:
        drop_tables(pg_url, pg_schema, tables, create_schema=False)


def dispose(app: Any) -> None:
    """Close an eventsourcing application and its SQLAlchemy engine."""
    app.close()
    release_engine(app)


# Command line and report.


def arg_parser(description: str, default_clients: int = 10_000) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--clients", type=int, default=default_clients, help=f"fleet size (default {default_clients:,})"
    )
    p.add_argument(
        "--groups", type=int, default=None, help=f"number of groups (default: clients / {CLIENTS_PER_GROUP})"
    )
    p.add_argument(
        "--db",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="sqlite: a fresh file in a temporary directory; postgres: --pg-url, "
        "whose ledger tables in --pg-schema are DROPPED first",
    )
    p.add_argument("--pg-url", default=PG_URL, help=f"PostgreSQL URL (default {PG_URL})")
    p.add_argument(
        "--pg-schema",
        default=PG_SCHEMA,
        help=f"PostgreSQL schema of the benchmark's tables (default {PG_SCHEMA}; "
        "'public' is where the tests' ledger lives)",
    )
    p.add_argument(
        "--repeat", type=int, default=1, help="measure this many times on fresh databases, report the median"
    )
    p.add_argument("--seed", type=int, default=42, help="seed of the generated fleet")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    return p


def median(values: list[float]) -> float:
    return statistics.median(values)


def environment() -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "eventsourcing": version("eventsourcing"),
        "eventsourcing_sqlalchemy": version("eventsourcing-sqlalchemy"),
        "sqlalchemy": version("sqlalchemy"),
    }


def emit(result: dict[str, Any], lines: list[str], as_json: bool) -> None:
    if as_json:
        json.dump(result, sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
    else:
        print("\n".join(lines))


def progress(_as_json: bool, message: str) -> None:
    """Progress goes to stderr so that stdout stays one JSON object with --json."""
    print(message, file=sys.stderr, flush=True)
