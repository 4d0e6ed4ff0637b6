"""A boundary's evaluations, prepared while idle before it comes.

A boundary is known in advance (the projector's timer heap): what the step at that
instant will evaluate for the targets due then is a pure function of the fleet view
and the instant. `Prepared` holds those evaluations, computed ahead a few at a time;
the step at the boundary uses them instead of evaluating the timelines again, and
records and publishes as it would have. Nothing is recorded ahead: an evaluation is
only a value in memory until the step issues it.

An evaluation stays valid while nothing the target's timeline or intent log depends
on changes: every fold marks whose timeline it changed (`Affected`), and the
projector forgets those targets (and any target it evaluates or whose record fails).

A transition due to an existing log is built ahead too (`Ahead`): its event's state,
the log's next `last` and its stored state around the record instant, which only the
boundary's step knows. That step takes the instant, splices its encoding in, records
and publishes; what is recorded is byte for byte what `IntentLog.issue` and the mapper
would have made then. A log that moved meanwhile (its version or `last`) is issued anew.
What its publisher builds ahead for publishing it (`ExtraOf`: the payload without its stamps)
is held with it, and goes with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from ledger import events as ev
from ledger.intent import CurrentIntent, IntentFields
from ledger.intentlog import IntentLog
from ledger.names import log_name
from ledger.plainjson import PlainJsonMapper, SplitState
from projections.causes import Cause, CauseOf, boundary_cause
from projections.fleet import Affected
from projections.timeline import Timeline

__all__ = ["Ahead", "Built", "Evaluation", "ExtraOf", "Prepared", "evaluate", "issue", "rows_of", "splitter"]

# A target's evaluation at an instant: its next boundary after it, and, if a transition
# is due (the semantic intent differs from the last one issued), the intent's fields,
# its cause and the target's ids (for a log opened by it).
Evaluation = tuple[datetime | None, IntentFields | None, Cause | None, tuple[str | None, str | None]]


def evaluate(timeline: Timeline, now: datetime, cause_of: CauseOf, last: IntentFields | None) -> Evaluation:
    """The evaluation of `timeline` at `now` against the last issued fields `last` (pure)."""
    intent = timeline.at(now)
    after = timeline.next_boundary(now)
    fields = intent.semantic()
    ids = (timeline.client_id, None if timeline.client_id else timeline.group_id)
    if last == fields:
        return after, None, None, ids
    return after, fields, cause_of(timeline, intent), ids


class Ahead:
    """A transition built ahead for an intent log at its current version."""

    __slots__ = ("current", "extra", "last", "split", "state", "topic")

    def __init__(
        self,
        log: IntentLog,
        fields: IntentFields,
        cause: Cause,
        split_of: SplitOf,
        extra_of: ExtraOf | None = None,
    ) -> None:
        self.last = log.last
        self.state = state = log.next_state(fields, *cause)
        issued = ev.new_event(ev.IntentIssued, state)
        self.current: CurrentIntent = issued.current()
        self.split = split_of(issued)
        self.topic = _ISSUED
        # What the publisher builds ahead for publishing this intent (None: nothing).
        self.extra: Any = None if extra_of is None else extra_of(state["intent_id"], fields)

    def issue(self, log: IntentLog, stamp: datetime) -> ev.IntentIssued | None:
        """Append the transition to `log` recorded at `stamp` (None: the log moved; issue it anew)."""
        state = self.state
        if log.last is not self.last or log.version + 1 != state["originator_version"]:
            return None
        state["timestamp"] = stamp
        issued = ev.new_event(ev.IntentIssued, state)
        log.issue_built(issued, self.current)
        return issued

    def stored(self, instant: bytes) -> StoredEvent | None:
        """The row of the issued event, with its record instant's encoding (None: not plain)."""
        if self.split is None:
            return None
        state = self.state
        head, tail = self.split
        return StoredEvent(
            state["originator_id"], state["originator_version"], self.topic, head + instant + tail
        )


SplitOf = Callable[[ev.IntentIssued], SplitState | None]
# What a publisher builds ahead for publishing a transition, of its intent's id and fields.
ExtraOf = Callable[[str, IntentFields], Any]
_ISSUED = get_topic(ev.IntentIssued)


class Prepared:
    """The evaluations of the targets due at one boundary `at`, at that instant."""

    def __init__(self, at: datetime | None = None, due: Mapping[str, datetime] | None = None) -> None:
        self.at = at
        # The cause of every target due on time at `at`: one object, so the step can
        # tell an on-time boundary (whose evaluation may be prepared) from any other cause.
        self.cause: CauseOf | None = None if at is None else boundary_cause(at, at)
        self.todo = [name for name, when in (due or {}).items() if when == at]
        self.done: dict[str, Evaluation] = {}
        self.ahead: dict[str, Ahead] = {}  # of the done ones that issue a transition to a log

    def want(self, name: str) -> None:
        """`name` is due at `at`: evaluate it ahead (again, if it was)."""
        self.done.pop(name, None)
        self.ahead.pop(name, None)
        self.todo.append(name)

    def forget(self, names: Iterable[str]) -> None:
        """Drop the evaluations of `names` (their timeline or log changed); they are evaluated
        at the boundary as they would have been."""
        done, ahead = self.done, self.ahead
        if done:
            for name in names:
                done.pop(name, None)
                ahead.pop(name, None)

    def forget_affected(self, affected: Affected) -> None:
        """Drop the evaluations of every target whose timeline a fold may have changed."""
        self.forget(affected.clients)
        self.forget(log_name(None, g) for g in affected.groups)

    def take(self, name: str, now: datetime, cause_of: CauseOf) -> tuple[Evaluation, Ahead | None] | None:
        """The prepared evaluation of `name` for a step at `now` with `cause_of` and its transition
        built ahead, and forget them (None: evaluate it; the step is at another instant, or for
        another cause)."""
        if not self.done:
            return None
        evaluation = self.done.pop(name, None)
        ahead = self.ahead.pop(name, None) if self.ahead else None
        if evaluation is None or cause_of is not self.cause or now != self.at:
            return None
        return evaluation, ahead

    def advance(
        self,
        due: Mapping[str, datetime],
        timeline_of: Callable[[str], Timeline],
        log_of: Callable[[str], IntentLog | None],
        budget: int,
        split_of: SplitOf | None = None,
        extra_of: ExtraOf | None = None,
    ) -> bool:
        """Evaluate up to `budget` of the targets still to do that are still `due` at `at`, and
        build their transitions to existing logs ahead (with `split_of`: their stored states
        too; with `extra_of`: what publishing them takes); True while some are left."""
        todo, done, ahead, at, cause = self.todo, self.done, self.ahead, self.at, self.cause
        assert at is not None
        assert cause is not None
        split = split_of or _unsplit
        while todo and budget > 0:
            name = todo.pop()
            if name not in done and due.get(name) == at:
                log = log_of(name)
                last = None if log is None or log.last is None else log.last.fields
                evaluation = done[name] = evaluate(timeline_of(name), at, cause, last)
                _, fields, caused, _ = evaluation
                if log is not None and fields is not None and caused is not None:
                    ahead[name] = Ahead(log, fields, caused, split, extra_of)
                budget -= 1
        return bool(todo)


Built = list[tuple[ev.IntentIssued, Ahead]]  # a chunk's events issued as built ahead


def issue(
    log: IntentLog, ahead: Ahead | None, fields: IntentFields, caused: Cause, stamp: datetime, built: Built
) -> Ahead | None:
    """Issue the transition to `log` at `stamp`: as built ahead (noted in `built`, and returned)
    while the log is as it was then, else anew from its evaluation (None)."""
    event = None if ahead is None else ahead.issue(log, stamp)
    if event is None or ahead is None:
        log.issue(fields, *caused, stamp)
        return None
    built.append((event, ahead))
    return ahead


def splitter(mapper: Any) -> SplitOf | None:
    """How `mapper` encodes a stored state ahead of its record instant (None: it does not)."""
    return mapper.split_state if isinstance(mapper, PlainJsonMapper) and mapper.splits else None


def rows_of(mapper: Any, built: Built, stamp: datetime) -> Callable[[Any], StoredEvent | None] | None:
    """The stored rows of the events `built` (issued as built ahead), their record instant
    `stamp` spliced in: the rows `Ledger.record_intents` takes (None: the mapper encodes them)."""
    if not built or splitter(mapper) is None:
        return None
    instant = mapper.encoded_instant(stamp)
    rows = {id(event): ahead.stored(instant) for event, ahead in built}  # the logs hold the events
    return lambda event: rows.get(id(event))


def _unsplit(_issued: ev.IntentIssued) -> None:
    return None
