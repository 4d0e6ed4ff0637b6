"""A group's followers evaluated once: clients whose timeline is their group's share one evaluation.

Most clients have no schedule of their own: their timeline is their group's, for
another target (`FleetView.timeline`), so at one instant and for one cause each of
them evaluates to the same next boundary, the same cause and the same fields but
for the client id. A step or a start evaluates the first of them and derives the
others' evaluations from it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import msgspec

from ledger.intent import IntentFields
from projections.causes import CauseOf
from projections.fleet import FleetView
from projections.prepared import Evaluation, evaluate
from projections.timeline import Timeline

__all__ = ["Shared", "follower_evaluation"]

# The evaluations of one step's chunk, by (group, registered, cause).
Shared = dict[tuple[str | None, bool, CauseOf], Evaluation]


def follower_evaluation(
    view: FleetView,
    timeline_of: Callable[[str], Timeline],
    name: str,
    now: datetime,
    cause_of: CauseOf,
    last: IntentFields | None,
    shared: Shared,
) -> Evaluation | None:
    """`evaluate` of client `name` against its `last` fields, shared with its group's other
    followers (None: `name` has a timeline of its own, evaluate it); `timeline_of` gives the
    timeline of the first one."""
    client = view.follower(name)
    if client is None:
        return None
    key = (client.group_id, client.registered, cause_of)
    found = shared.get(key)
    if found is None:
        found = shared[key] = evaluate(timeline_of(name), now, cause_of, None)
    after, fields, caused, _ = found
    assert fields is not None  # evaluated against no last intent: always one
    if fields.client_id != name:
        fields = msgspec.structs.replace(fields, client_id=name)
    ids = (name, None)
    return (after, None, None, ids) if last == fields else (after, fields, caused, ids)
