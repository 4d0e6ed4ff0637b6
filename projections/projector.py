"""The intent projector: turns the fleet view into recorded `IntentIssued` transitions.

It never reads a clock: the caller (the daemon, a test, the demo) passes `now`.
A transition is recorded only when a target's semantic intent differs from the
last one recorded for it; `intent_id = uuid5(NS, "{client_id}/{seq}")` then
follows from the log's next `seq`, so a rebuild re-reads the very same ids.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ledger import events as ev
from ledger.app import INTENT_TOPICS, TIMELINE_TOPICS, Ledger, Receipt
from ledger.domain import IntentLog
from ledger.intent import CurrentIntent, IntentFields
from ledger.names import group_of
from ledger.values import floor_second
from projections.boundaries import Boundaries
from projections.causes import CauseOf, boundary_cause, describe_cause, fixed_cause
from projections.checkpoint import Checkpoint, LiveLogs
from projections.chunks import Chunk, Write
from projections.fleet import Affected, FleetView
from projections.followers import Shared, follower_evaluation
from projections.prepared import Built, ExtraOf, Prepared, evaluate, issue, splitter
from projections.resume import resumed_view
from projections.rowfold import fold_rows
from projections.shard import Shard
from projections.timeline import Timeline

__all__ = ["Projector", "describe_cause"]

PULLED = TIMELINE_TOPICS + INTENT_TOPICS
# A step's shared follower evaluations kept at most (a key a group and cause): a start's
# causes are one, a boundary's one a target, so only the latter would grow with the fleet.
SHARED = 4_096


class Projector:
    """Follows a ledger and records the transitions that are due at `now`."""

    def __init__(self, ledger: Ledger, *, group_topics: bool = False, shard: Shard | None = None) -> None:
        self.ledger = ledger
        self.group_topics = group_topics
        self.shard = shard or Shard()
        self.view = FleetView()
        self._boundaries = Boundaries()
        self._affected = Affected()
        self._retry: dict[str, CauseOf] = {}
        # A step committed in chunks: what is still to evaluate and record, at the step's `now`.
        self._rest: list[tuple[str, CauseOf]] = []
        self._rest_now: datetime | None = None
        self._ahead: Chunk | None = None  # the next chunk, evaluated while the last was written
        # A group's followers evaluated once a step, not once a chunk: nothing between a step's
        # chunks changes a timeline (they go on before anything new is read).
        self._shared: Shared = {}
        self._prepared = Prepared()  # the next boundary's evaluations, ahead of it
        # What the publisher builds ahead for publishing a prepared transition (its payload
        # without stamps), and, once issued, each one's by target with its intent (see `built`).
        self.extra_of: ExtraOf | None = None
        self._extras: dict[str, tuple[CurrentIntent, Any]] = {}
        self._partial = False  # resumed from a checkpoint: intent logs only, schedule not folded yet
        self.dirty = False  # evaluated something since the last checkpoint

    # Reading the ledger.

    def pull(self, affected: Affected | None = None) -> None:
        """Fold the notifications appended since the last pull into the view, marking `affected`."""
        # Small pages: a whole ledger read in large ones leaves their rows' memory resident.
        if affected is None:  # nobody marked, so no cause's event is held: rows folded as they are
            fold_rows(self.view, *self.ledger.read_pages(self.view.position, topics=PULLED, limit=1_000))
            return
        for position, event in self.ledger.read(self.view.position, topics=PULLED, limit=1_000):
            self.view.apply(position, event, affected)
        self._prepared.forget_affected(affected)

    # Recording transitions.

    def start(self, now: datetime, limit: int | None = None) -> list[ev.IntentIssued]:
        """Rebuild from the ledger, record a catch-up transition where one is due (`limit`: as `step`)."""
        now = floor_second(now)
        self.pull()  # nobody marked: every target is evaluated (marks would hold an event each)
        start = fixed_cause(now, {"kind": "start"})
        return self._commit(dict.fromkeys(self.names(), start), now, limit)

    @property
    def key(self) -> str:
        """The name of this projector's checkpoint: its shard and its kind of topics."""
        kind = "groups" if self.group_topics else "clients"
        return f"projector/{self.shard.index}-of-{self.shard.count}/{kind}"

    @property
    def partial(self) -> bool:
        """Resumed from a checkpoint, and the schedule side not folded yet (see `complete`)."""
        return self._partial

    def resume(self, saved: Checkpoint) -> bool:
        """Start from a checkpoint instead of the whole ledger; False (nothing changed) if it
        is overtaken (projections.resume). Targets whose boundary passed meanwhile are simply
        due: the next `step` records them."""
        if saved.key != self.key or self.view.position:
            return False
        resumed = resumed_view(self.ledger, saved, self.shard)
        if resumed is None:
            return False
        self.view, due = resumed
        self._partial, self._boundaries = True, Boundaries(due)
        return True

    def complete(self) -> None:
        """Fold the schedule side up to the position, after a resume (else a no-op)."""
        if not self._partial:
            return
        # Everything up to the position was evaluated when the checkpoint was taken:
        # fold it without marking anyone affected.
        fold_rows(self.view, *self.ledger.read_pages(0, topics=TIMELINE_TOPICS, stop=self.view.position))
        self._partial, self._prepared = False, Prepared()

    def checkpoint(self, now: datetime) -> Checkpoint | None:
        """Every log with its next boundary, as of the position (None while anything is unsettled)."""
        if self._retry or self._affected or self.pending:
            return None
        names = self.names()
        logs = [log for log in map(self.view.logs.get, names) if log is not None and log.last is not None]
        if len(logs) != len(names):
            return None  # one never evaluated: a checkpoint without it would never publish it
        self.dirty = False
        saved = LiveLogs(logs, self._boundaries.due)  # each log saved as it is encoded
        return Checkpoint(key=self.key, position=self.view.position, saved_at=now, logs=saved)

    def step(self, now: datetime, limit: int | None = None) -> list[ev.IntentIssued]:
        """Record the transitions caused by new ledger changes and by boundaries up to `now`.

        If recording fails (the database is away) nothing is lost: the view is
        rolled back and the same evaluations are retried by the next step.
        With a `limit`, at most that many are recorded and returned; the rest of
        the step stays `pending`, and the next calls go on with it (at the same
        `now`, so the chunks record what one step would) before reading anything new.
        """
        if self.pending:
            assert self._rest_now is not None
            return self._commit_chunk(self._rest_now, limit)
        now = floor_second(now)
        # Marks survive a pull that fails half-way: what was folded stays to be evaluated.
        # Only the schedule side: this projector is the one writer of the intent logs,
        # so reading its own records back would only cost time. `head` is read first:
        # every id up to it is committed (ids are handed out in commit order), so the
        # position can move past the intents in between and the next scan stays short.
        head = self.ledger.max_notification_id()
        if self._partial:
            wake = self.next_wakeup()
            if (wake is None or wake > now) and not self.ledger.appended(
                self.view.position, topics=TIMELINE_TOPICS, stop=head
            ):
                self.view.position = max(self.view.position, head)
                return []
            self.complete()  # a change or a boundary to evaluate: the schedule is needed now
        if head > self.view.position:  # nothing appended: no read (a poll of an idle ledger)
            for position, event in self.ledger.read(self.view.position, topics=TIMELINE_TOPICS, stop=head):
                self.view.apply(position, event, self._affected)
            self.view.position = head
        affected, self._affected = self._affected, Affected()
        self._prepared.forget_affected(affected)
        pending, self._retry = self._retry, {}
        for name, (position, event) in self._names_of(affected):
            when = floor_second(event.timestamp)
            pending[name] = fixed_cause(when, describe_cause(position, event))
        if self._prepared.at is not None and self._prepared.at < now:
            self._prepared = Prepared()  # a boundary passed unstepped: evaluated as it would be
        on_time = self._prepared.cause if self._prepared.at == now else None
        for boundary, name in self._boundaries.pop_due(now):
            cause = on_time if on_time is not None and boundary == now else boundary_cause(boundary, now)
            pending.setdefault(name, cause)
        return self._commit(pending, now, limit)

    def prepare(self, now: datetime, ahead: timedelta, budget: int) -> bool:
        """Evaluate ahead, `budget` targets at a time, the step of the next boundary if it is
        within `ahead` of `now` (nothing is recorded); True while there is more to evaluate."""
        at = self.next_wakeup()
        unsettled = self._partial or self.pending or self._retry or self._affected
        if unsettled or at is None or not now < at <= now + ahead:
            return False
        if self._prepared.at != at:
            self._prepared = Prepared(at, self._boundaries.due)
        return self._prepared.advance(
            self._boundaries.due,
            self.timeline,
            self.view.logs.get,
            budget,
            splitter(self.ledger.mapper),
            self.extra_of,
        )

    def _last_fields(self, name: str) -> IntentFields | None:
        log = self.view.logs.get(name)
        return None if log is None or log.last is None else log.last.fields

    @property
    def pending(self) -> bool:
        """A step committed in chunks is not finished: call `step` again (soon)."""
        return bool(self._rest or self._ahead)

    def next_wakeup(self) -> datetime | None:
        """The earliest pending boundary of any target (the daemon sleeps until then)."""
        return self._boundaries.next()

    def names(self) -> list[str]:
        """Every intent log this projector keeps: clients, and groups with group topics."""
        if self._partial:
            return [n for n in self.view.logs if self.shard.owns(n)]
        names = [c for c, client in self.view.clients.items() if client.registered or c in self.view.logs]
        if self.group_topics:
            names += [IntentLog.name_for(None, g) for g in self.view.groups]
        return [n for n in names if self.shard.owns(n)]

    def timeline(self, name: str) -> Timeline:
        group = group_of(name)
        return self.view.timeline(name) if group is None else self.view.group_timeline(group)

    def current(self, name: str) -> CurrentIntent | None:
        """The intent last recorded for log `name` (None: none yet, or not ours)."""
        if self._ahead is not None and self._ahead.holds(name):
            return self._ahead.recorded(name)  # issued in memory, not recorded yet
        log = self.view.logs.get(name)
        return None if log is None else log.last

    def built(self, name: str, intent: CurrentIntent) -> Any:
        """What the publisher built ahead for publishing `intent`, the current intent of `name`
        (None: nothing, or for another intent); given once. Kept while `name`'s issue is not
        recorded yet (its current intent is still the one before)."""
        extras = self._extras
        held = extras.get(name) if extras else None
        if held is None:
            return None
        if held[0] is intent:
            del extras[name]
            return held[1]
        if self._ahead is None or not self._ahead.holds(name):
            del extras[name]  # for an intent that will never be current again
        return None

    def _names_of(self, affected: Affected) -> list[tuple[str, tuple[int, Any]]]:
        found = [
            (c, cause)
            for c, cause in affected.clients.items()
            if c in self.view.logs or self.view.clients[c].registered
        ]
        if self.group_topics:
            found += [(IntentLog.name_for(None, g), cause) for g, cause in affected.groups.items()]
        return [(n, cause) for n, cause in found if self.shard.owns(n)]

    def _commit(
        self, pending: dict[str, CauseOf], now: datetime, limit: int | None = None
    ) -> list[ev.IntentIssued]:
        self._rest, self._rest_now = list(pending.items()), now
        self._shared = {}  # a new step: another instant, other causes
        self.dirty = self.dirty or bool(pending)
        return self._commit_chunk(now, limit)

    def _commit_chunk(self, now: datetime, limit: int | None) -> list[ev.IntentIssued]:
        """Record the next `limit` transitions of the step, evaluated in order; while they are
        written (on a thread), evaluate the chunk after them."""
        chunk, self._ahead = self._ahead, None
        if chunk is None:
            chunk = self._evaluate_chunk(now, limit)
        if not self._rest:
            return self._recorded(chunk, now, lambda: chunk.record(self.ledger))
        write = Write(chunk, self.ledger)
        try:
            self._ahead = self._evaluate_chunk(now, limit)
        finally:
            issued = self._recorded(chunk, now, write.result)
        return issued

    def _evaluate_chunk(self, now: datetime, limit: int | None) -> Chunk:
        """Evaluate the rest of the step in order until `limit` transitions are due."""
        rest = self._rest
        chunk = Chunk(IntentLog.stamp())  # one record instant for the chunk (one transaction)
        done = 0
        if len(self._shared) > SHARED:
            self._shared = {}
        shared = self._shared
        for name, cause_of in rest:
            done += 1
            evaluated = self._evaluate(name, now, cause_of, chunk.stamp, shared, chunk.built)
            if evaluated is not None:
                chunk.issued[name] = (*evaluated, cause_of)
                if limit is not None and len(chunk.issued) >= limit:
                    break
        self._rest = rest[done:]  # sliced once per chunk, not popped once per name
        return chunk

    def _recorded(self, chunk: Chunk, now: datetime, record: Callable[[], Receipt]) -> list[ev.IntentIssued]:
        try:
            # Our own writes come back through the next read; the fold skips what it holds.
            receipt = record()
        except Exception:
            # Retried by the next step as one would be: this chunk and everything after it,
            # re-evaluated at that step's `now` with whatever the ledger says by then.
            for undone in filter(None, (chunk, self._ahead)):
                for name, (log, before, cause_of) in undone.issued.items():
                    self._undo(log, before)
                    self._retry[name] = cause_of
                    self._extras.pop(name, None)
            self._retry.update(self._rest)
            self._rest, self._ahead, self._prepared, self._shared = [], None, Prepared(), {}
            raise
        if not self._rest and self._ahead is None:
            self._shared = {}  # the step is recorded
            if self._prepared.at == now:
                self._prepared = Prepared()  # its boundary is stepped
        return [e for e in receipt.events if isinstance(e, ev.IntentIssued)]

    def _evaluate(
        self,
        name: str,
        now: datetime,
        cause_of: CauseOf,
        stamp: datetime,
        shared: Shared,
        built: Built,
    ) -> tuple[IntentLog, tuple[Any, ...] | None] | None:
        taken = self._prepared.take(name, now, cause_of)
        if taken is None:
            last = self._last_fields(name)
            evaluation = follower_evaluation(self.view, self.timeline, name, now, cause_of, last, shared)
            if evaluation is None:
                evaluation = evaluate(self.timeline(name), now, cause_of, last)
            ahead = None
        else:
            evaluation, ahead = taken
        after, fields, caused, ids = evaluation
        self._boundaries.schedule(name, after)
        if after is not None and after == self._prepared.at:
            self._prepared.want(name)  # due at the prepared boundary: evaluated ahead again
        if fields is None or caused is None:
            return None
        log = self.view.logs.get(name)
        if log is None:
            log = IntentLog.open(*ids, stamp)
            self.view.hold(log)
            log.issue(fields, *caused, stamp)
            return log, None
        before = (log.version, log.modified_on, log.seq, log.last)
        used = issue(log, ahead, fields, caused, stamp, built)
        if used is not None and used.extra is not None:
            self._extras[name] = (used.current, used.extra)
        elif self._extras:
            self._extras.pop(name, None)  # issued anew: what was built for an earlier one is stale
        return log, before

    def _undo(self, log: IntentLog, before: tuple[Any, ...] | None) -> None:
        """Put a log back as it was before an issue whose save failed."""
        log.collect_events()
        if before is None:
            self.view.release(log)
        else:
            log.version, log.modified_on, log.seq, log.last = before
