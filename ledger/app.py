"""The application service: every change to the ledger goes through `Ledger`."""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    IntegrityError,
    Mapper,
    PersistenceError,
    StoredEvent,
    Transcoder,
    UUIDAsHex,
)
from eventsourcing.utils import get_topic
from sqlalchemy.exc import SQLAlchemyError

from ledger import commands as cmd
from ledger import events as ev
from ledger import series as srs
from ledger.codec import decode_issued_rows
from ledger.collector import paused_gc
from ledger.domain import IntentLog, Meta, TargetRef
from ledger.encoded import EncodedRows
from ledger.errors import LedgerBusy
from ledger.feed_sync import apply_feed, feed_aggregate_ids
from ledger.ics import IcsFeed
from ledger.intentlog import CurrentIntentAsDict
from ledger.logread import Decoding, read_pages, read_rows
from ledger.persistence import (
    SubclassAwareTranscoder,
    dispose,
    head_of,
    stream_rows,
    topics_after,
)
from ledger.plainjson import PlainJsonMapper
from ledger.preload import preloaded_workspace
from ledger.quickread import AggregateReads
from ledger.recurrence import Recurrence
from ledger.sync import Snapshot, apply_snapshot
from ledger.topics import INTENT_TOPICS, SCHEDULE_TOPICS, TIMELINE_TOPICS
from ledger.urls import database_env, parse_database_url, unreachable
from ledger.values import Window

__all__ = ["INTENT_TOPICS", "SCHEDULE_TOPICS", "TIMELINE_TOPICS", "Ledger", "Receipt"]

_ISSUED = get_topic(ev.IntentIssued)
_PAGE = 5_000
_MAX_ATTEMPTS = 40


@dataclass(frozen=True)
class Receipt:
    """What a change appended (or, for a dry run, would append)."""

    events: list[Any] = field(default_factory=list)
    last_notification_id: int | None = None

    @property
    def appended(self) -> int:
        return len(self.events)


class Ledger(Application[UUID], AggregateReads):
    """Appends schedule changes and issued intents; reads aggregates and the notification log."""

    name = "ledger"
    snapshotting_intervals = {IntentLog: 100}

    def __init__(
        self,
        db_url: str = "sqlite:///intent-ledger.db",
        env: dict[str, str] | None = None,
        *,
        create: bool = True,
    ) -> None:
        """Open the ledger at `db_url`; with `create=False` a missing ledger is an error, not created."""
        url = parse_database_url(db_url).checked(create=create)
        try:
            # Read-only: no tables are created either (an empty PostgreSQL database stays empty).
            tables = {} if create else {"CREATE_TABLE": "false"}
            super().__init__({**database_env(db_url), **tables, **(env or {})})
        except (SQLAlchemyError, PersistenceError) as e:  # the drivers' errors, said our way
            raise unreachable(url, e) from None
        self.db_url = db_url
        self.url = url
        # Intent logs that reached a snapshot version: (id, version), taken by `take_due_snapshots`.
        self.snapshots_due: deque[tuple[UUID, int]] = deque()

    def close(self) -> None:
        super().close()
        dispose(self)

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(transcoder=self.construct_transcoder(), mapper_class=PlainJsonMapper)

    def construct_transcoder(self) -> Transcoder:
        transcoder = SubclassAwareTranscoder()
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), CurrentIntentAsDict()):
            transcoder.register(transcoding)
        return transcoder

    # Membership.

    def add_client(self, client_id: str, group_id: str | None, meta: Meta) -> Receipt:
        return self._change(lambda ws: cmd.register_client(ws, client_id, group_id, meta))

    def assign_client(self, client_id: str, group_id: str | None, meta: Meta) -> Receipt:
        return self._change(lambda ws: cmd.assign_client(ws, client_id, group_id, meta))

    def remove_client(self, client_id: str, meta: Meta) -> Receipt:
        return self._change(lambda ws: cmd.remove_client(ws, client_id, meta))

    # Schedule.

    def add_event(self, event_id: str, target: TargetRef, window: Window, meta: Meta) -> Receipt:
        return self._change(lambda ws: cmd.add_event(ws, event_id, target, window, meta))

    def move_event(self, event_id: str, window: Window, meta: Meta) -> Receipt:
        return self._change(lambda ws: cmd.move_event(ws, event_id, window, meta))

    def cancel_event(self, event_id: str, meta: Meta) -> Receipt:
        return self._change(lambda ws: cmd.cancel_event(ws, event_id, meta))

    def add_override(
        self, override_id: str, target: TargetRef, state: str, window: Window, meta: Meta
    ) -> Receipt:
        return self._change(lambda ws: cmd.add_override(ws, override_id, target, state, window, meta))

    def clear_override(self, override_id: str, meta: Meta) -> Receipt:
        return self._change(lambda ws: cmd.clear_override(ws, override_id, meta))

    def schedule_series(
        self, series_id: str, target: TargetRef, recurrence: Recurrence, meta: Meta
    ) -> Receipt:
        """A new series (an identical repeat appends nothing; other content under its id is an error)."""
        return self._change(lambda ws: srs.add_series(ws, series_id, target, recurrence, meta))

    def change_series(self, series_id: str, recurrence: Recurrence, meta: Meta) -> Receipt:
        """Replace a series' rule (not its skips); reinstates a cancelled series."""
        return self._change(lambda ws: srs.change_series(ws, series_id, recurrence, meta))

    def skip_series(self, series_id: str, dates: Iterable[date], meta: Meta) -> Receipt:
        return self._change(lambda ws: srs.skip_series(ws, series_id, dates, meta))

    def unskip_series(self, series_id: str, dates: Iterable[date], meta: Meta) -> Receipt:
        return self._change(lambda ws: srs.unskip_series(ws, series_id, dates, meta))

    def cancel_series(self, series_id: str, meta: Meta) -> Receipt:
        return self._change(lambda ws: srs.cancel_series(ws, series_id, meta))

    def set_policy(self, changes: dict[str, int], meta: Meta) -> Receipt:
        return self._change(lambda ws: cmd.change_policy(ws, changes, meta))

    def sync(
        self,
        snapshot: Snapshot,
        *,
        prune: bool,
        now: datetime,
        meta: Meta,
        dry_run: bool = False,
        allow_empty: bool = False,
    ) -> Receipt:
        """Apply a snapshot in one transaction (all of it or nothing)."""
        return self._change(
            lambda ws: apply_snapshot(ws, snapshot, prune=prune, now=now, meta=meta, allow_empty=allow_empty),
            workspace=self._bulk_workspace,
            dry_run=dry_run,
        )

    def sync_feed(
        self,
        feed: IcsFeed,
        target: TargetRef,
        *,
        prefix: str,
        prune: bool,
        now: datetime,
        meta: Meta,
        dry_run: bool = False,
        allow_empty: bool = False,
    ) -> Receipt:
        """Apply an iCalendar feed to one target in one transaction (all of it or nothing)."""
        return self._change(
            lambda ws: apply_feed(
                ws, feed, target, prefix=prefix, prune=prune, now=now, meta=meta, allow_empty=allow_empty
            ),
            workspace=lambda: preloaded_workspace(self, feed_aggregate_ids(feed, target), self._load),
            dry_run=dry_run,
        )

    # Reads.

    def intent_log(self, log_name: str) -> IntentLog | None:
        log = self._load(IntentLog.id_for(log_name))
        return log if isinstance(log, IntentLog) else None

    def issued(self, log_name: str) -> list[ev.IntentIssued]:
        """Every intent recorded for a client (or `groups/<id>`), oldest first."""
        originator = IntentLog.id_for(log_name)
        if self.mapper.cipher is not None or self.mapper.compressor is not None:
            return [e for e in self.events.get(originator) if isinstance(e, ev.IntentIssued)]
        # The audit's event-store path: a Core SELECT of the stream and a typed decoder,
        # much faster than the repository for a long history.
        with paused_gc(promote=True):
            return decode_issued_rows(originator, stream_rows(self, originator, _ISSUED))

    def max_notification_id(self) -> int:
        return head_of(self)

    def appended(self, after: int, *, topics: Iterable[str], stop: int | None = None) -> bool:
        """Whether any event of `topics` was appended after position `after` (up to `stop`)."""
        return topics_after(self, after, topics, stop)

    def read(
        self, after: int = 0, *, topics: Iterable[str] = (), limit: int = _PAGE, stop: int | None = None
    ) -> Iterator[tuple[int, DomainEventProtocol[UUID]]]:
        """Domain events from the notification log after position `after` (up to `stop`), in order."""
        return read_rows(self, after, topics=tuple(topics), limit=limit, stop=stop)

    def read_pages(
        self, after: int = 0, *, topics: Iterable[str] = (), limit: int = _PAGE, stop: int | None = None
    ) -> tuple[Decoding, Iterator[list[Any]]]:
        """The rows `read` decodes, as the driver returns them, a page at a time, and what
        decodes them: for a fold that reads most rows without building their events."""
        return Decoding(self), read_pages(self, after, topics=tuple(topics), limit=limit, stop=stop)

    def aggregates(self, topics: Iterable[str] = SCHEDULE_TOPICS) -> dict[UUID, Aggregate]:
        """Every schedule-side aggregate, folded from the notification log in one pass."""
        found: dict[UUID, Any] = {}
        for _, event in self.read(topics=topics):
            found[event.originator_id] = event.mutate(found.get(event.originator_id))  # type: ignore[attr-defined]
        return found

    # Intent log.

    def record_intents(
        self, logs: Iterable[IntentLog], stored: Callable[[Any], StoredEvent | None] | None = None
    ) -> Receipt:
        """Save issued intents; the caller owns the logs (one writer: the projector).
        `stored`: an event's row encoded ahead (None: the mapper encodes it now)."""
        # Straight to the mapper and the recorder: `save()` checks every object against
        # runtime protocols, and the event store builds a Recording an event, for ids alone.
        events = [e for log in logs for e in log.collect_events()]
        if not events:
            return Receipt()
        to_stored = self.mapper.to_stored_event
        encode = to_stored if stored is None else lambda e: stored(e) or to_stored(e)
        # Encoded as the recorder writes them: a statement's rows at a time, not the batch's.
        ids = self.recorder.insert_events(EncodedRows(events, encode))
        # Noted, not taken: a fleet's logs move in step, so they reach a snapshot version in
        # the same boundary storm, and taking one reads the log's history back.
        every = self.snapshotting_intervals[IntentLog]
        self.snapshots_due.extend(
            (e.originator_id, e.originator_version) for e in events if e.originator_version % every == 0
        )
        return Receipt(events, ids[-1] if ids else None)

    def take_due_snapshots(self, limit: int | None = None) -> int:
        """Take the intent logs' due snapshots, oldest first, at most `limit`; returns how many.
        A snapshot only shortens later reads: one not taken (the process ended) is no loss."""
        taken = 0
        while self.snapshots_due and (limit is None or taken < limit):
            log_id, version = self.snapshots_due[0]
            self.take_snapshot(log_id, version=version)
            self.snapshots_due.popleft()  # after: a failed one is taken at the next call
            taken += 1
        return taken

    # Internals.

    def _load(self, aggregate_id: UUID) -> Aggregate | None:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def _bulk_workspace(self) -> cmd.Workspace:
        loaded = self.aggregates()
        ws = cmd.Workspace(loaded.get)
        for aggregate in loaded.values():
            ws.add(aggregate)
        return ws

    def _change(
        self,
        command: Callable[[cmd.Workspace], None],
        *,
        workspace: Callable[[], cmd.Workspace] | None = None,
        dry_run: bool = False,
    ) -> Receipt:
        # Optimistic concurrency: a stale aggregate makes the save raise
        # IntegrityError; reload everything and run the command again.
        for attempt in range(_MAX_ATTEMPTS):
            ws = workspace() if workspace else cmd.Workspace(self._load)
            command(ws)
            pending = ws.pending_events()
            if dry_run or not pending:
                return Receipt(pending)
            try:
                recordings = self.save(*ws.changed())
            except IntegrityError:
                time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))
                continue
            return Receipt(pending, recordings[-1].notification.id)
        raise LedgerBusy(
            f"gave up after {_MAX_ATTEMPTS} attempts: other writers kept changing the same records"
        )
