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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from ledger.intent import IntentFields
from ledger.names import log_name
from projections.causes import Cause, CauseOf, boundary_cause
from projections.fleet import Affected
from projections.timeline import Timeline

__all__ = ["Evaluation", "Prepared", "evaluate"]

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


class Prepared:
    """The evaluations of the targets due at one boundary `at`, at that instant."""

    def __init__(self, at: datetime | None = None, due: Mapping[str, datetime] | None = None) -> None:
        self.at = at
        # The cause of every target due on time at `at`: one object, so the step can
        # tell an on-time boundary (whose evaluation may be prepared) from any other cause.
        self.cause: CauseOf | None = None if at is None else boundary_cause(at, at)
        self.todo = [name for name, when in (due or {}).items() if when == at]
        self.done: dict[str, Evaluation] = {}

    def want(self, name: str) -> None:
        """`name` is due at `at`: evaluate it ahead (again, if it was)."""
        self.done.pop(name, None)
        self.todo.append(name)

    def forget(self, names: Iterable[str]) -> None:
        """Drop the evaluations of `names` (their timeline or log changed); they are evaluated
        at the boundary as they would have been."""
        done = self.done
        if done:
            for name in names:
                done.pop(name, None)

    def forget_affected(self, affected: Affected) -> None:
        """Drop the evaluations of every target whose timeline a fold may have changed."""
        self.forget(affected.clients)
        self.forget(log_name(None, g) for g in affected.groups)

    def take(self, name: str, now: datetime, cause_of: CauseOf) -> Evaluation | None:
        """The prepared evaluation of `name` for a step at `now` with `cause_of`, and forget it
        (None: evaluate it; the step is at another instant, or for another cause)."""
        evaluation = self.done.pop(name, None) if self.done else None
        return evaluation if cause_of is self.cause and now == self.at else None

    def advance(
        self,
        due: Mapping[str, datetime],
        timeline_of: Callable[[str], Timeline],
        last_of: Callable[[str], IntentFields | None],
        budget: int,
    ) -> bool:
        """Evaluate up to `budget` of the targets still to do that are still `due` at `at`;
        True while some are left."""
        todo, done, at, cause = self.todo, self.done, self.at, self.cause
        assert at is not None
        assert cause is not None
        while todo and budget > 0:
            name = todo.pop()
            if name not in done and due.get(name) == at:
                done[name] = evaluate(timeline_of(name), at, cause, last_of(name))
                budget -= 1
        return bool(todo)
