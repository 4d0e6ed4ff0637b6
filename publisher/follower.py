"""Following the ledger: the start (from a checkpoint or the whole log), each step, idle work, checkpoints.

The follower records the transitions that are due (the projector's job) and
hands them to the daemon to publish. While the database is away it backs off
and the daemon keeps refreshing what it holds; nothing is lost, the same
evaluations are retried. The projector's checkpoint is saved at shutdown, after
--once, and while running at most every `checkpoint_every` seconds, after a
quiet spell.
"""

from __future__ import annotations

import gc
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from ledger.app import Ledger
from ledger.collector import paused_gc
from ledger.events import IntentIssued
from ledger.values import floor_second, format_instant
from ledger.writelock import WAL_PAGES, checkpoint_wal, wal_pages
from projections.checkpoint import CheckpointStore
from projections.projector import Projector
from publisher.logs import Episode, EventLog
from publisher.metrics import Metrics
from publisher.settings import DB_ERRORS, Backoff, RunSettings, one_line

__all__ = ["Follower"]

QUIET = timedelta(seconds=5)  # no transitions for this long before a periodic checkpoint
BURST_POLL = timedelta(seconds=0.25)  # ledger polls while a burst is in flight, at most
# Transitions recorded per round at most: paho publishes one chunk while the next is evaluated
# and recorded (a boundary of the whole fleet starts publishing after its first chunk).
CHUNK = 1_000
# The start's chunks, smaller: it evaluates every target at once, and what a chunk holds
# until it is published (its issued logs and events, their rows, the payloads in flight) sets
# the start's peak memory, which the view it builds never gives back. A larger fleet's chunks
# are a START_SHARE-th of it (CHUNK at most): a chunk is one transaction, and SQLite's work a
# row falls with the rows a transaction (the random index pages each commit writes), while
# those chunks' memory stays small beside the larger view's.
START_CHUNK = 250
START_SHARE = 40
# The start's records are a burst: the write-ahead log checkpointed past this many pages
# meanwhile, not SQLite's WAL_PAGES (each index page copied back once, not once a few commits),
# and copied back on a thread of its own once they are recorded, not by the next commit.
START_WAL_PAGES = 10_000
CLOSE_WAIT = 30.0  # seconds the shutdown waits for that copy at most (a disk that hangs)
# A boundary this close is evaluated ahead while idle, this many targets a round (a change
# arriving meanwhile waits for one round of it, not for the whole fleet's).
AHEAD = timedelta(seconds=30)
AHEAD_BUDGET = 500
SNAPSHOTS_A_ROUND = 20  # due intent log snapshots taken per idle round (each reads a log back)
SNAPSHOT_RETRY = 30.0  # seconds after a failed snapshot (a lock held elsewhere) before the next try


class Follower:
    """Reads the ledger through the projector; owns the database backoff, the lag and the checkpoints."""

    def __init__(
        self,
        ledger: Ledger,
        projector: Projector,
        settings: RunSettings,
        backoff: Backoff,
        started_at: datetime,
        metrics: Metrics,
        log: EventLog,
    ) -> None:
        self.ledger, self.projector, self.settings = ledger, projector, settings
        self.metrics, self.log = metrics, log
        self.checkpoints = CheckpointStore(ledger)
        self.started = False
        self.once = False  # --once: the view dies with the process, the collector may stay off
        self.chunk: int | None = CHUNK
        self._freeze = False  # the start's chunks are recorded: freeze the view then
        self._start_chunk: int | None = None  # the start's chunk, sized by its targets
        self._wal_checkpoint: threading.Thread | None = None  # the start's log copied back
        self.next_lag = started_at
        self._backoff = backoff
        self._next_db: datetime | None = None  # retry the ledger then (None: it answers)
        self._next_snapshot: float | None = None  # monotonic: after a failed snapshot, not before
        self._snapshot_backoff = Backoff(SNAPSHOT_RETRY, 300.0)
        self.away = Episode(log, "ledger")  # the database failing: one line when, one when back
        self._next_checkpoint = started_at + timedelta(seconds=settings.checkpoint_every)
        self._last_transition = started_at
        self._next_follow = started_at
        self.preparing = False  # the next boundary's evaluations are not all done: idle again soon

    def due(self, now: datetime, *, busy: bool) -> bool:
        """Whether to read the ledger this round. While a burst is in flight (`busy`) the loop
        wakes to refill paho's queue, not to poll the ledger: every query gives the GIL to paho's
        thread and waits for it back. Changes then wait at most BURST_POLL; a due boundary does not."""
        if not self.started or not busy or self.projector.pending:
            return True
        timer = self.projector.next_wakeup()
        if now >= self._next_follow or (timer is not None and timer <= now):
            self._next_follow = now + BURST_POLL
            return True
        return False

    def follow(self, now: datetime, *, strict: bool = False) -> list[IntentIssued]:
        """The transitions recorded now (the start's, then each step's); [] while the ledger is away."""
        if self._next_db is not None and now < self._next_db and not strict:
            return []
        head = None
        try:
            if now >= self.next_lag:
                # The lag: what existed before this read. A whole step reads the head itself and
                # moves past it (the lag after it is 0); a start or a step's next chunk does not.
                full_step = self.started and not self.projector.pending
                head = 0 if full_step else self.ledger.max_notification_id()
            issued = self._read(now)
        except DB_ERRORS as e:
            if strict:
                raise
            # Keep refreshing what we hold; retry the ledger after a backoff.
            self._failed(now, e)
            return []
        self._answered(now, head)
        counts: dict[tuple[str, str], int] = {}
        for event in issued:
            counted = (event.reason, event.desired_state)
            counts[counted] = counts.get(counted, 0) + 1
        for (reason, state), count in counts.items():  # one increment per batch
            self.metrics.transition(reason, state).inc(count)
        if issued:
            # A batch recorded together, logged together: one instant, one take of the lock.
            texts: dict[datetime, str] = {}  # of the effective instants, a few a batch
            self.log.write_all([("transition", _transition_fields(e, texts)) for e in issued])
            self.log.flush()
            self._last_transition = now
        return issued

    def _read(self, now: datetime) -> list[IntentIssued]:
        with paused_gc():  # a boundary of thousands: no collector passes mid-way
            if self.started:
                issued = self.projector.step(now, self._limit())
            else:
                # The start too goes in chunks (--once as well): paho publishes each while the
                # next is evaluated and recorded, and only a chunk's events wait to be written.
                wal_pages(self.ledger, START_WAL_PAGES)
                issued = self._start(now)
                self.started = self._freeze = True
        if self._freeze and not self.projector.pending:
            self._freeze = False
            # --once keeps the larger log to its end: the ledger's close copies it back, and
            # neither a thread nor its connection is added to the burst's peak memory.
            if not self.once:
                self._wal_checkpoint = checkpoint_wal(self.ledger, WAL_PAGES)
                # The rebuilt view lives as long as the process: keep the collector off it.
                gc.collect()
                gc.freeze()
        return issued

    def _limit(self) -> int | None:
        """This round's chunk: the start's until the start's chunks are recorded."""
        if (not self.started or self._freeze) and self._start_chunk is not None:
            return self._start_chunk
        return self.chunk

    def _size_start(self) -> None:
        """The start's chunk: START_CHUNK, or a START_SHARE-th of a larger shard's targets (the
        chunk at most)."""
        if self.chunk is not None:
            targets = len(self.projector.names())
            self._start_chunk = min(self.chunk, max(START_CHUNK, targets // START_SHARE))

    def close(self) -> None:
        """Wait for the start's write-ahead log to be copied back (before the ledger closes),
        CLOSE_WAIT seconds at most: a copy still going on then is left to SQLite's own."""
        if self._wal_checkpoint is not None:
            self._wal_checkpoint.join(CLOSE_WAIT)

    @property
    def pending(self) -> bool:
        """A step recorded in chunks goes on: the loop must not sleep."""
        return self.projector.pending

    def _answered(self, now: datetime, head: int | None) -> None:
        """The ledger answered: end a backoff, update the lag."""
        self.away.ended("follow")
        self._next_db = None
        self._backoff.reset()
        if head is not None:
            self.next_lag = now + timedelta(seconds=1)
            self.metrics.ledger_lag.set(max(0, head - self.projector.view.position))

    def read_ahead(self) -> None:
        """What the start reads before it records anything: the checkpoint resumed or, without
        one, the ledger folded (--once, while the broker's answer is awaited). Raises on
        database errors; the start then reads it again."""
        if self.started:
            return
        with paused_gc():
            self._resume()
            if not self.projector.partial:
                self.projector.pull()

    def _resume(self) -> None:
        # From the checkpoint when nothing overtook it: every current intent is known
        # without folding the ledger (a target whose boundary passed is simply due).
        # A retry after a database error goes on from wherever the last attempt got to.
        if not self.projector.partial and self.projector.view.position == 0:
            saved = self.checkpoints.load(self.projector.key)
            if saved is not None and self.projector.resume(saved):
                self.log.emit("checkpoint", state="resumed", position=saved.position, logs=len(saved.logs))

    def _start(self, now: datetime) -> list[IntentIssued]:
        self._resume()
        if self.projector.partial:
            self._size_start()
            return self.projector.step(now, self._limit())
        self.projector.pull()  # the fleet first (if not read ahead): its size sets the chunks
        self._size_start()
        return self.projector.start(now, self._limit())

    def _failed(self, now: datetime, e: BaseException) -> None:
        self._next_db = now + timedelta(seconds=self._backoff.next())
        self.metrics.ledger_errors.inc()  # every failed attempt; the log says each episode once
        self.away.failed("follow", one_line(e), retry_at=format_instant(self._next_db))

    def idle(self, now: datetime) -> None:
        """Housekeeping while nothing is in flight: fold the schedule after a resume, checkpoint,
        evaluate the next boundary ahead."""
        if self.projector.partial:
            if self._next_db is not None and now < self._next_db:
                return  # the ledger is away: retried with follow's backoff, not every round
            try:
                with paused_gc():
                    self.projector.complete()
            except DB_ERRORS as e:
                self._failed(now, e)
                return
        if now >= self._next_checkpoint and now - self._last_transition >= QUIET:
            self.save_checkpoint(now)
        self.take_snapshots(SNAPSHOTS_A_ROUND)
        with paused_gc():
            self.preparing = self.projector.prepare(now, AHEAD, AHEAD_BUDGET)

    def take_snapshots(self, limit: int | None = None) -> None:
        """Take intent log snapshots that fell due (at most `limit`). Never while the ledger is
        away, and after a failure only past its own backoff: a snapshot can wait, the loop can't."""
        if not self.projector.ledger.snapshots_due or self._next_db is not None:
            return
        if self._next_snapshot is not None and time.monotonic() < self._next_snapshot:
            return
        try:
            self.projector.ledger.take_due_snapshots(limit)
        except DB_ERRORS as e:
            self._next_snapshot = time.monotonic() + self._snapshot_backoff.next()
            self.away.failed("snapshot", one_line(e))
            return
        self._next_snapshot = None
        self._snapshot_backoff.reset()
        self.away.ended("snapshot")

    def save_checkpoint(self, now: datetime, *, force: bool = False) -> None:
        """Save the projector's checkpoint if anything changed (and it is due, unless `force`)."""
        if not self.projector.dirty or not (force or now >= self._next_checkpoint):
            return
        self._next_checkpoint = now + timedelta(seconds=self.settings.checkpoint_every)
        checkpoint = self.projector.checkpoint(floor_second(now))
        if checkpoint is None:
            return
        try:
            size = self.checkpoints.save(checkpoint)
        except DB_ERRORS as e:
            self.projector.dirty = True  # saved later
            self.metrics.ledger_errors.inc()
            self.log.emit("checkpoint", state="error", error=one_line(e))
            return
        self.log.emit(
            "checkpoint", state="saved", position=checkpoint.position, logs=len(checkpoint.logs), bytes=size
        )


def _transition_fields(e: IntentIssued, texts: dict[datetime, str]) -> dict[str, Any]:
    """The fields of a transition's log line (`texts`: instants formatted so far)."""
    effective = texts.get(e.effective_at)
    if effective is None:
        effective = texts[e.effective_at] = format_instant(e.effective_at)
    return {
        "client_id": e.client_id,
        "group_id": e.group_id,
        "intent_id": e.intent_id,
        "seq": e.seq,
        "desired_state": e.desired_state,
        "reason": e.reason,
        "effective_at": effective,
        "event_window": e.event_window,
        "cause": e.cause,
    }
