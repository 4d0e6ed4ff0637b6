"""Series evidence for audits: the occurrences around an instant, named `series_id@YYYY-MM-DD`.

Occurrences are never stored; an audit expands the series as they were known
(the view it is given) over the block in question, like the fold does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from ledger.domain import Target
from ledger.occurrences import last_start, local_to_utc, occurrences
from ledger.recurrence import format_local
from ledger.values import Policy, format_instant
from projections.blocks import EagerBlocks, LazyBlocks
from projections.fleet import ClientRow
from projections.merge import Block
from projections.timeline import Timeline

__all__ = ["every_block", "inside", "occurrence_evidence"]

_LONGEST = timedelta(days=32)  # an occurrence is at most 31 days long (plus an offset change)
_GAPS_AHEAD = timedelta(days=366)  # how far past its last fixed start an endless series is searched


def inside(start: datetime, end: datetime, block: Block, policy: Policy) -> bool:
    """Whether the window `[start, end)`, widened by the policy, lies in `block`."""
    pre, post = timedelta(seconds=policy.pre_roll), timedelta(seconds=policy.post_roll)
    return block.start <= start - pre and end + post <= block.end


def occurrence_evidence(
    targets: Sequence[Target | ClientRow],
    at: datetime,
    block: Block | None,
    policy: Policy,
    made_by: Callable[[str], dict[str, Any] | None],
) -> list[dict[str, Any]]:
    """An entry per occurrence in the block around `at`, or covering `at` (cancelled series too)."""
    lo = min(block.start, at - _LONGEST) if block else at - _LONGEST
    hi = max(block.end, at + timedelta(seconds=1)) if block else at + timedelta(seconds=1)
    rows = []
    for target in targets:
        for series in target.series.values():
            for o in occurrences(series, lo, hi):
                in_block = bool(block and not series.cancelled and inside(o.start, o.end, block, policy))
                if not (in_block or o.start <= at < o.end):
                    continue
                rows.append(
                    {
                        "occurrence": o.name,
                        "target": str(target.ref),
                        "window": {"start": format_instant(o.start), "end": format_instant(o.end)},
                        "local_start": format_local(o.local_start),
                        "local_end": format_local(o.local_end),
                        "tz": series.recurrence.tz,
                        "status": "cancelled" if series.cancelled else "scheduled",
                        "in_block": in_block,
                        "made_by": made_by(series.series_id),
                    }
                )
    return sorted(rows, key=lambda r: (r["window"]["start"], r["occurrence"]))


def every_block(timeline: Timeline) -> list[Block]:
    """All blocks of a finite schedule; with series, those up to a year past the last fixed start."""
    blocks = timeline.blocks
    if isinstance(blocks, EagerBlocks):
        return list(blocks.blocks)
    assert isinstance(blocks, LazyBlocks)
    starts = [local_to_utc(s.recurrence.first_start, s.recurrence.tz) for s in blocks.series]
    ends = [w.end for w in blocks.windows]
    for s in blocks.series:
        last = last_start(s.recurrence)
        ends.append(local_to_utc(last, s.recurrence.tz) + _LONGEST if last else max(starts) + _GAPS_AHEAD)
    first = min([*starts, *(w.start for w in blocks.windows)]) - _LONGEST
    return blocks.between(first, max(ends))
