"""A client's blocks from its group's: the group's merged blocks with the client's few windows spliced in.

A client with events of its own merges them with its group's; merging every window of
the group again, for each such client, would rebuild the group's blocks once a client. Merging
is a sweep in start order, and without the 31-day cap its blocks are the groups of
widened windows that overlap, touch or bridge: merging a block's span as one window gives
that block again. So the client's blocks are the group's, but for those its windows
touch, which are merged again with them. Where the cap split a block (the group's, or one
of the new ones: two blocks then touch) the caller merges every window, so the
blocks are always those `merge_blocks` gives.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import timedelta
from itertools import pairwise
from operator import attrgetter

from ledger.values import Policy, Window
from projections.merge import Block, Span, merge

__all__ = ["merged_with", "uncapped"]


def uncapped(blocks: Sequence[Block], policy: Policy) -> bool:
    """Whether no two of these merged blocks touch or bridge (the cap split none of them)."""
    gap = timedelta(seconds=policy.bridge_gap)
    return all(later.start - earlier.end > gap for earlier, later in pairwise(blocks))


def merged_with(
    group: Sequence[Block], windows: Sequence[Window], policy: Policy
) -> tuple[Block, ...] | None:
    """`merge_blocks` of the group's windows and `windows`, from `group`, the group's merged blocks
    (uncapped): the blocks `windows` touch merged again with them, the others as they are
    (None: the cap split a block, the group's or a new one; merge every window instead)."""
    if not uncapped(group, policy):
        return None
    gap = timedelta(seconds=policy.bridge_gap)
    pre, post = timedelta(seconds=policy.pre_roll), timedelta(seconds=policy.post_roll)
    starts = [b.start for b in group]
    ends = [b.end for b in group]
    touched: set[int] = set()
    for w in windows:
        # The blocks b the widened window joins: b.start - (w.end + post) <= gap
        # and (w.start - pre) - b.end <= gap.
        first = bisect_left(ends, w.start - pre - gap)
        last = bisect_right(starts, w.end + post + gap)
        touched.update(range(first, last))
    spans: list[Span | Window] = [group[i].window for i in touched]
    spans += windows
    fresh = list(merge(sorted(spans, key=_by_times), policy))
    blocks = sorted([*(b for i, b in enumerate(group) if i not in touched), *fresh], key=_by_start)
    return tuple(blocks) if uncapped(blocks, policy) else None


_by_times = attrgetter("start", "end")  # `merge_blocks`'s order of windows
_by_start = attrgetter("start")
