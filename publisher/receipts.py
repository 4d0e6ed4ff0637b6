"""Delivery receipts: what the daemon published and the broker acknowledged, in the ledger's database.

The first successful PUBACK of each intent id, the latest publish per log with
the largest age its retained payload reached, and failures: buffered per round,
written in bulk, and kept (bounded) while the database is away. The tables are
the read model's (projections.readmodel), which the audit reads them from.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import func, insert
from sqlalchemy.dialects.postgresql import insert as _pg_insert
from sqlalchemy.dialects.sqlite import insert as _sqlite_insert

from ledger.app import Ledger
from ledger.intent import CurrentIntent
from ledger.persistence import bulk_insert, engine_of, transaction
from projections.readmodel import deliveries, failures, metadata, refreshes
from publisher.logs import Episode, EventLog
from publisher.metrics import Metrics
from publisher.settings import DB_ERRORS, one_line

__all__ = ["Batch", "DeliveryLog", "ReceiptWriter", "stamp_ms"]


@functools.lru_cache(maxsize=256)
def stamp_ms(t: datetime) -> str:
    # Cached: the receipts of one settled batch share their instant.
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@functools.lru_cache(maxsize=256)
def _issued_instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Batch(NamedTuple):
    """Buffered receipts taken for one write: (key, row) pairs of each table, failure rows."""

    firsts: list[tuple[str, tuple[Any, ...]]]
    latest: list[tuple[str, tuple[Any, ...]]]
    failed: list[dict[str, Any]]


class DeliveryLog:
    """Delivery receipts the daemon writes: the first successful PUBACK of each intent id,
    the latest publish per client with the largest age its retained payload reached, failures.

    Receipts are buffered and written once per daemon round; if the database is
    away they stay buffered (bounded) and are written later.
    """

    LIMIT = 200_000

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.engine = engine_of(ledger)
        metadata.create_all(self.engine, checkfirst=True)
        # Buffered rows are tuples in column order, smaller than dicts: a burst of a large
        # fleet buffers many of them.
        self._firsts: dict[str, tuple[Any, ...]] = {}
        self._latest: dict[str, tuple[Any, ...]] = {}
        self._failures: list[dict[str, Any]] = []
        self._last_issued: dict[str, datetime] = {}
        # The age a retained payload reaches is measured between this process's own publishes
        # of a client; one that publishes each client once (--once) keeps no per-client state.
        self.track_ages = True

    def acked(
        self,
        name: str,
        intent: CurrentIntent,
        issued: str,
        expires: str,
        kind: str,
        acked_at: datetime,
        latency_ms: float | None,
        intent_id: str | None = None,
    ) -> None:
        """A PUBACK of `intent` published (to log `name`) stamped `issued`, expiring `expires`
        (`intent_id`: its id, if the caller derived it already)."""
        acked = stamp_ms(acked_at)
        if intent_id is None:
            intent_id = intent.intent_id
        if intent_id not in self._firsts:  # _FIRSTS order; the latency as the JSON text stored
            latency = "null" if latency_ms is None else repr(float(latency_ms))
            self._firsts[intent_id] = (
                intent_id,
                name,
                intent.seq,
                acked,
                issued,
                expires,
                str(kind),
                latency,
            )
        age = 0
        if self.track_ages:
            issued_at = _issued_instant(issued)
            previous = self._last_issued.get(name)
            age = 0 if previous is None else int((issued_at - previous).total_seconds())
            self._last_issued[name] = issued_at
        latest = self._latest.get(name)
        # _LATEST order; the last column is max_age_seconds.
        self._latest[name] = (name, intent_id, issued, acked, max(age, latest[-1] if latest else 0))

    def failed(self, name: str, intent_id: str | None, at: datetime, error: str) -> None:
        if len(self._failures) < self.LIMIT:
            self._failures.append(
                {"log_name": name, "intent_id": intent_id, "at": stamp_ms(at), "error": error}
            )

    def pending(self) -> int:
        return len(self._firsts) + len(self._latest) + len(self._failures)

    def publishes(self) -> int:
        """How many publishes the buffered receipts are of (each has up to two rows)."""
        return max(len(self._firsts), len(self._latest)) + len(self._failures)

    def flush(self, limit: int | None = None) -> None:
        """Write what is buffered (at most `limit` of each kind) in one transaction.

        Raises on database errors, keeping the buffer.
        """
        if not self.pending():
            return
        batch = self.take(limit)
        self.store(batch)
        self.forget(batch)

    def take(self, limit: int | None = None) -> Batch:
        """What `flush` would write (at most `limit` of each kind); it stays buffered until `forget`."""
        return Batch(
            list(itertools.islice(self._firsts.items(), limit)),
            list(itertools.islice(self._latest.items(), limit)),
            self._failures[:limit],
        )

    def store(self, batch: Batch) -> None:
        """Write `batch` in one transaction (raises on database errors). Reads no buffer: another
        thread may run it while the owner thread buffers more."""
        firsts, latest, failed = batch
        dialect = self.engine.dialect.name
        upsert = _sqlite_insert if dialect == "sqlite" else _pg_insert
        with transaction(self.ledger, commit=True) as session:
            if firsts:
                statement = upsert(deliveries).on_conflict_do_nothing()
                bulk_insert(session, statement, _FIRSTS, [row for _, row in firsts], encoded=("latency_ms",))
            if latest:
                statement = upsert(refreshes)
                bigger = func.max if dialect == "sqlite" else func.greatest
                statement = statement.on_conflict_do_update(
                    index_elements=[refreshes.c.log_name],
                    set_={
                        "intent_id": statement.excluded.intent_id,
                        "last_issued_at": statement.excluded.last_issued_at,
                        "last_acked_at": statement.excluded.last_acked_at,
                        "max_age_seconds": bigger(
                            refreshes.c.max_age_seconds, statement.excluded.max_age_seconds
                        ),
                    },
                )
                bulk_insert(session, statement, _LATEST, [row for _, row in latest])
            if failed:
                session.execute(insert(failures), failed)

    def forget(self, batch: Batch) -> None:
        """`batch` was written: drop it from the buffers (the owner thread is their only writer),
        keeping a client's latest row that was replaced since it was taken."""
        firsts, latest, failed = batch
        for key, _ in firsts:
            del self._firsts[key]
        for key, row in latest:
            if self._latest.get(key) is row:
                del self._latest[key]
        del self._failures[: len(failed)]


_FIRSTS = ("intent_id", "log_name", "seq", "first_acked_at", "issued_at", "expires_at", "kind", "latency_ms")
_LATEST = ("log_name", "intent_id", "last_issued_at", "last_acked_at", "max_age_seconds")

RECEIPTS_TICK = 250  # receipts written per round after a burst (a short hold of the loop)
RECEIPTS_BATCH = 2_000  # publishes whose receipts are buffered during a burst at most (bounded memory)
RETRY = 1.0  # seconds between two attempts to write receipts while the database fails


class ReceiptWriter:
    """When the daemon writes its receipts: a database error keeps them buffered, logged once an episode.

    With `background` (PostgreSQL by default), a burst's batches are written by a thread of
    their own, one at a time: the write is nearly all waiting for the server, which held the
    loop (and so the window's refill) for as long. The rows stay buffered until the owner
    thread collects the write (`forget`), so a failed one is written again as any other.
    SQLite writes in the loop: a second writer would only wait for the recorder's lock.
    """

    def __init__(
        self,
        receipts: DeliveryLog,
        metrics: Metrics,
        log: EventLog,
        away: Episode | None = None,
        *,
        background: bool | None = None,
    ) -> None:
        self.receipts, self.metrics, self.log = receipts, metrics, log
        self.ok = True  # the last write succeeded
        self._retry_at = 0.0  # after a failed write, not before (monotonic)
        self._failing = away or Episode(log, "ledger")  # shared with the follower: one database
        self.background = receipts.engine.dialect.name == "postgresql" if background is None else background
        self._writing: _Writing | None = None  # the batch a thread is writing

    def due(self) -> bool:
        """Receipts to write and the database answering: the loop should not sleep."""
        return bool(self.receipts.pending()) and self.ok

    def write(self, *, during_burst: bool = False, complete: bool = False) -> None:
        writing = self._writing
        if writing is not None:
            # During a burst, a write in progress is waited for only once twice a batch is
            # buffered (bounded memory); otherwise (after the burst, at the end) always.
            if during_burst and writing.is_alive() and self.receipts.publishes() < 2 * RECEIPTS_BATCH:
                return
            self.wait()
        pending = self.receipts.pending()
        # While paho's thread is busy, a database write per row gives the GIL away and waits
        # for it back (a convoy): during a burst, only a large buffer (bounded memory) is
        # written. After it, RECEIPTS_TICK a round: a burst's receipts in one write would
        # hold the loop (docs/performance.md).
        if not pending or (during_burst and self.receipts.publishes() < RECEIPTS_BATCH):
            return
        if not self.ok and time.monotonic() < self._retry_at and not complete:
            return  # the database is away (or full): retried every RETRY, not every round
        if during_burst and self.background:
            self._writing = _Writing(self.receipts, self.receipts.take())
            self._writing.start()
            return
        try:
            self.receipts.flush(None if during_burst or complete else RECEIPTS_TICK)
        except DB_ERRORS as e:
            self._failed(e)
        else:
            self._written()

    def wait(self) -> None:
        """Wait for the write in progress, if any, and take its outcome (no new write)."""
        writing, self._writing = self._writing, None
        if writing is None:
            return
        writing.join()
        if writing.error is None:
            self.receipts.forget(writing.batch)
            self._written()
        elif isinstance(writing.error, DB_ERRORS):
            self._failed(writing.error)  # still buffered: written again later
        else:
            raise writing.error

    def _written(self) -> None:
        self.ok = True
        self._failing.ended("receipts", pending=self.receipts.pending())

    def _failed(self, error: BaseException) -> None:
        self.ok = False
        self._retry_at = time.monotonic() + RETRY
        self.metrics.ledger_errors.inc()
        self._failing.failed("receipts", one_line(error), pending=self.receipts.pending())


class _Writing(threading.Thread):
    """One batch written by a thread of its own; its error, if any, for the owner to handle."""

    def __init__(self, receipts: DeliveryLog, batch: Batch) -> None:
        super().__init__(name="receipts", daemon=True)
        self.receipts, self.batch = receipts, batch
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.receipts.store(self.batch)
        except BaseException as e:  # handed to the owner thread at its next write
            self.error = e
