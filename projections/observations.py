"""What the screens reported, stored beside the delivery receipts (DESIGN section 13).

Accepted reports are facts from outside, not ledger events: `projections
rebuild` keeps these tables. They hold each change of a screen's `intent_id`
or `tv_state` as a *run* (its first report, its last, how many), and the latest
report per screen. A run also ends when a screen was silent longer than
`split_after` seconds (the daemon's `--report-stale`), so the audit can tell
when a screen went quiet without storing every periodic report.

`ObservationLog` is the writer: reports are buffered (bounded), written in
batches (the statements of each store in projections.observation_writes), and
stay buffered while the database is away. The reads are in
projections.observation_reads.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import DDL, Column, Integer, MetaData, String, Table, event, select
from sqlalchemy.engine import Engine

from ledger.app import Ledger
from ledger.bulk import SQLITE_ROWS, SQLITE_STATEMENT_ROWS
from ledger.persistence import engine_of, transaction
from ledger.values import parse_instant
from projections.observation_writes import add_to_runs, upsert

__all__ = [
    "SQLITE_TRANSACTION",
    "TABLES",
    "ObservationLog",
    "Run",
    "Seen",
    "metadata",
    "observations",
    "reports",
]

# Screens a write transaction on SQLite: four whole multi-row statements a table (ledger.bulk).
# Rows beyond the last whole statement go one a statement, and each gives the GIL away and takes
# it back while the batch holds SQLite's one write lock: with paho's thread parsing a burst, each
# retake waits, and the daemon waits for the lock meanwhile.
SQLITE_TRANSACTION = 4 * SQLITE_STATEMENT_ROWS

metadata = MetaData()
observations = Table(
    "audit_observations",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("started_at", String(20), primary_key=True),  # reported_at of the run's first report
    Column("since", String(20), nullable=False),
    Column("intent_id", String(36)),
    Column("tv_state", String(7), nullable=False),
    Column("detail", String(200)),
    Column("last_reported_at", String(20), nullable=False),
    Column("reports", Integer, nullable=False),
    Column("received_at", String(24), nullable=False),  # server time of the first, ...T12:00:00.123Z
)
reports = Table(
    "audit_reports",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("reported_at", String(20), nullable=False),
    Column("since", String(20), nullable=False),
    Column("intent_id", String(36)),
    Column("tv_state", String(7), nullable=False),
    Column("detail", String(200)),
    Column("received_at", String(24), nullable=False),
    Column("run_started_at", String(20), nullable=False),
)
TABLES = (observations, reports)
# A screen's latest report is replaced every 300 s: with room left in its page PostgreSQL writes
# the new version there (a HOT update), the primary key's index untouched, and prunes the old one.
event.listen(
    reports,
    "after_create",
    DDL("ALTER TABLE %(fullname)s SET (fillfactor = 50)").execute_if(dialect="postgresql"),  # type: ignore[no-untyped-call]
)
_RUN = ("client_id", "started_at", "since", "intent_id", "tv_state", "detail", "last_reported_at", "reports")
_RUN_ALL = (*_RUN, "received_at")
_LATEST = ("client_id", "reported_at", "since", "intent_id", "tv_state", "detail", "received_at")
_LATEST_ALL = (*_LATEST, "run_started_at")


@dataclass(frozen=True, slots=True)
class Seen:
    """One accepted report (instants as stored: `YYYY-MM-DDTHH:MM:SSZ`, received_at with ms)."""

    client_id: str
    reported_at: str
    since: str
    intent_id: str | None
    tv_state: str
    detail: str | None
    received_at: str


class Run(NamedTuple):
    """Consecutive reports of one screen with the same intent_id and tv_state, without a long silence."""

    started_at: str
    since: str
    intent_id: str | None
    tv_state: str
    last_reported_at: str
    reports: int
    detail: str | None = None


@functools.lru_cache(maxsize=4096)  # a burst's reports share a handful of instants
def _seconds(text: str) -> int:
    return int(parse_instant(text).timestamp())


class _Fragment:
    """Buffered reports of one screen that continue each other (written as one run or its tail)."""

    __slots__ = ("first", "last", "n")

    def __init__(self, seen: Seen) -> None:
        self.first = self.last = seen
        self.n = 1

    def continues(self, seen: Seen, split_after: int) -> bool:
        last = self.last
        return (
            seen.intent_id == last.intent_id
            and seen.tv_state == last.tv_state
            and _seconds(seen.reported_at) - _seconds(last.reported_at) <= split_after
        )


class ObservationLog:
    """The writer of accepted reports. One writer per database (the active daemon)."""

    LIMIT = 200_000  # buffered fragments; beyond it the oldest are dropped, and counted

    def __init__(self, ledger: Ledger, split_after: int = 900) -> None:
        self.engine: Engine = engine_of(ledger)
        self._ledger = ledger
        self.split_after = split_after
        metadata.create_all(self.engine, checkfirst=True)
        self._pending: dict[str, list[_Fragment]] = {}
        self._count = 0
        # Per screen, the run the next report may continue: (started_at, intent_id, tv_state, last).
        self._open: dict[str, tuple[str, str | None, str, str]] = {}
        self.dropped = 0
        # Screens a write transaction takes (`flush(self.batch)`): PostgreSQL writes a batch of
        # any size in three statements; on SQLite, see SQLITE_TRANSACTION.
        self.batch = SQLITE_TRANSACTION if self.engine.dialect.name == "sqlite" else SQLITE_ROWS

    def add(self, seen: Seen) -> None:
        """Buffer one accepted report (the caller checked it is newer than the screen's last)."""
        fragments = self._pending.get(seen.client_id)
        if fragments is None:
            fragments = self._pending[seen.client_id] = []
        if fragments and fragments[-1].continues(seen, self.split_after):
            fragment = fragments[-1]
            fragment.last = seen
            fragment.n += 1
            return
        fragments.append(_Fragment(seen))
        self._count += 1
        if self._count > self.LIMIT:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        client_id, fragments = next(iter(self._pending.items()))
        fragments.pop(0)
        self._count -= 1
        self.dropped += 1
        if not fragments:
            del self._pending[client_id]

    def pending(self) -> int:
        """Buffered fragments (a run's worth of reports of one screen counts once)."""
        return self._count

    def flush(self, limit: int | None = None) -> None:
        """Write the buffered reports of at most `limit` screens in one transaction.

        Raises on database errors, keeping the buffer.
        """
        if not self._pending:
            return
        batch = list(itertools.islice(self._pending.items(), limit))
        clients = [client_id for client_id, _ in batch]
        with transaction(self._ledger, commit=True) as session:
            self._load_open(session, [c for c in clients if c not in self._open])
            opened = dict(self._open)
            new_runs: dict[tuple[str, str], list[Any]] = {}
            tails: dict[tuple[str, str], list[Any]] = {}
            latest = []
            for client_id, fragments in batch:
                for f in fragments:
                    self._fold(client_id, f, opened, new_runs, tails)
                last = fragments[-1].last
                latest.append(_latest_row(last, opened[client_id][0]))
            upsert(session, observations, _RUN_ALL, [tuple(r) for r in new_runs.values()])
            add_to_runs(session, observations, [(*k, *v) for k, v in tails.items()])
            upsert(session, reports, _LATEST_ALL, latest)
        # Written: remember the open runs, forget the buffer.
        self._open.update({c: opened[c] for c in clients})
        for client_id, fragments in batch:
            self._count -= len(fragments)
            del self._pending[client_id]

    def _fold(
        self,
        client_id: str,
        f: _Fragment,
        opened: dict[str, tuple[str, str | None, str, str]],
        new_runs: dict[tuple[str, str], list[Any]],
        tails: dict[tuple[str, str], list[Any]],
    ) -> None:
        first, last = f.first, f.last
        run = opened.get(client_id)
        if (
            run is not None
            and (first.intent_id, first.tv_state) == (run[1], run[2])
            and _seconds(first.reported_at) - _seconds(run[3]) <= self.split_after
        ):
            key = (client_id, run[0])
            if key in new_runs:
                new_runs[key][6] = last.reported_at
                new_runs[key][7] += f.n
            else:
                tail = tails.setdefault(key, [last.reported_at, 0])
                tail[0] = last.reported_at
                tail[1] += f.n
            opened[client_id] = (run[0], run[1], run[2], last.reported_at)
            return
        key = (client_id, first.reported_at)
        tails.pop(key, None)  # a change within the same second replaces that run
        row = [
            client_id,
            first.reported_at,
            first.since,
            first.intent_id,
            first.tv_state,
            first.detail,
            last.reported_at,
            f.n,
            first.received_at,
        ]
        new_runs[key] = row
        opened[client_id] = (first.reported_at, first.intent_id, first.tv_state, last.reported_at)

    def _load_open(self, session: Any, clients: list[str]) -> None:
        c = reports.c
        for start in range(0, len(clients), 500):
            chunk = clients[start : start + 500]
            query = select(c.client_id, c.run_started_at, c.intent_id, c.tv_state, c.reported_at).where(
                c.client_id.in_(chunk)
            )
            for client_id, started, intent_id, state, reported in session.execute(query):
                self._open[client_id] = (started, intent_id, state, reported)


def _latest_row(s: Seen, run_started_at: str) -> tuple[Any, ...]:
    """The `audit_reports` row of a screen's latest report, in `_LATEST_ALL` order."""
    return (
        s.client_id,
        s.reported_at,
        s.since,
        s.intent_id,
        s.tv_state,
        s.detail,
        s.received_at,
        run_started_at,
    )
