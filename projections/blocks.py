"""The merged blocks of a schedule, event windows and series occurrences (projections.merge).

`EagerBlocks` holds every block of a finite schedule; `LazyBlocks` works out, for a schedule with series,
only the blocks near the instants it is asked about: it finds the last real
gap before the instant (where the merge starts afresh) and merges forward
from there, caching what it found. Both are pure.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from ledger.occurrences import Occurrence, local_to_utc, occurrences, occurrences_from
from ledger.recurrence import Series
from ledger.values import Policy, ScheduledEvent, Window
from projections.merge import BY_TIMES, Block, Timed, merge

__all__ = ["Blocks", "EagerBlocks", "LazyBlocks"]

_CACHE = 2048  # blocks a LazyBlocks keeps; asking before the oldest one kept starts afresh
_AHEAD = timedelta(days=62)  # asked further ahead than this: start afresh rather than merge up to it
_SLACK = timedelta(hours=26)  # more than any change of a zone's UTC offset within one occurrence


class Named(Protocol):
    @property
    def events(self) -> Mapping[str, ScheduledEvent]: ...
    @property
    def series(self) -> Mapping[str, Series]: ...


class Blocks(Protocol):
    def at(self, t: datetime) -> Block | None: ...
    def names_at(self, t: datetime, sources: Sequence[Named]) -> list[str]: ...
    def edges_after(self, t: datetime) -> Iterator[datetime]: ...
    def between(self, start: datetime, end: datetime) -> list[Block]: ...


class EagerBlocks:
    """Every block of a schedule of one-off events."""

    __slots__ = ("_ends", "_names", "_starts", "blocks", "edges")

    def __init__(self, blocks: Sequence[Block]) -> None:
        self.blocks = tuple(blocks)
        self._starts = [b.start for b in self.blocks]
        self._ends = [b.end for b in self.blocks]
        self.edges = sorted({*self._starts, *self._ends})
        self._names: dict[datetime, list[str]] = {}

    def names_at(self, t: datetime, sources: Sequence[Named]) -> list[str]:
        """The windows of the block that starts or ends at `t` (cached: members share the blocks)."""
        return _names_at(self, self._names, t, sources)

    def at(self, t: datetime) -> Block | None:
        i = bisect_right(self._starts, t) - 1
        return self.blocks[i] if i >= 0 and t < self._ends[i] else None

    def edges_after(self, t: datetime) -> Iterator[datetime]:
        return iter(self.edges[bisect_right(self.edges, t) :])

    def between(self, start: datetime, end: datetime) -> list[Block]:
        first = max(0, bisect_right(self._starts, start) - 1)
        return [b for b in self.blocks[first:] if b.start < end and b.end > start][: len(self.blocks)]

    def __len__(self) -> int:
        return len(self.blocks)


class LazyBlocks:
    """The blocks of events and series, worked out near the instants asked about."""

    def __init__(self, windows: Sequence[Window], series: Sequence[Series], policy: Policy) -> None:
        self.windows = sorted(windows, key=BY_TIMES)
        self.series = tuple(series)
        self.policy = policy
        self._starts = [w.start for w in self.windows]
        # How far back a window may start and still touch a later one: the longest window
        # (an occurrence's UTC length is its nominal one give or take an offset change).
        longest = max([w.end - w.start for w in self.windows], default=timedelta(0))
        if self.series:
            longest = max(longest, max(s.recurrence.length for s in self.series) + _SLACK)
        rolls = timedelta(seconds=policy.pre_roll + policy.post_roll + policy.bridge_gap)
        self._reach = longest + rolls + timedelta(seconds=1)
        firsts = [local_to_utc(s.recurrence.first_start, s.recurrence.tz) for s in self.series]
        self._earliest = min([*firsts, *self._starts[:1]], default=datetime.max.replace(tzinfo=UTC))
        self._earliest -= timedelta(days=1)
        self._cache: list[Block] = []
        self._cache_starts: list[datetime] = []
        self._from: datetime | None = None  # the cache holds every block starting at or after this
        self._more: Iterator[Block] | None = None  # the merge, going on after the cache
        self._names: dict[datetime, list[str]] = {}

    def names_at(self, t: datetime, sources: Sequence[Named]) -> list[str]:
        """The windows and occurrences of the block that starts or ends at `t` (cached)."""
        return _names_at(self, self._names, t, sources)

    # Windows of the schedule.

    def _from_windows(self, t: datetime) -> Iterator[Timed]:
        events: Iterator[Timed] = iter(self.windows[bisect_left(self._starts, t) :])
        streams = [events, *(occurrences_from(s, t) for s in self.series)]
        return heapq.merge(*streams, key=_order)

    def _between(self, start: datetime, end: datetime) -> list[Timed]:
        found: list[Timed] = list(
            self.windows[bisect_left(self._starts, start) : bisect_left(self._starts, end)]
        )
        for s in self.series:
            found += occurrences(s, start, end)
        found.sort(key=_order)
        return found

    def _fresh_start(self, t: datetime) -> datetime:
        """The start of the window at or before `t` where the merge begins afresh (a real gap before it)."""
        gap = timedelta(seconds=self.policy.bridge_gap)
        pre, post = timedelta(seconds=self.policy.pre_roll), timedelta(seconds=self.policy.post_roll)
        step = self._reach
        lo = t - step
        while True:
            reach: datetime | None = None
            fresh: datetime | None = None
            for w in self._between(lo - self._reach, t + timedelta(seconds=1)):
                if w.start >= lo and (reach is None or w.start - pre - reach > gap):
                    fresh = w.start
                reach = w.end + post if reach is None else max(reach, w.end + post)
            if fresh is not None:
                return fresh
            if lo <= self._earliest:
                return t  # no window starts at or before t
            step *= 2
            lo = max(self._earliest, t - step)

    def _ensure(self, t: datetime) -> None:
        """Make the cache hold every block that starts at or before `t`, and two after it (if any)."""
        starts = self._cache_starts
        if len(starts) > 1 and starts[-2] > t and self._from is not None and self._from <= t:
            return  # the usual case: asked again about the same few days
        known = self._from is not None and self._from <= t
        if known and self._more is not None and self._cache and t - self._cache[-1].start > _AHEAD:
            known = False  # far ahead: a fresh start is cheaper than merging everything in between
        if not known:
            fresh = self._fresh_start(t)
            self._from = fresh - timedelta(seconds=self.policy.pre_roll)
            self._more = merge(self._from_windows(fresh), self.policy)
            self._cache, self._cache_starts = [], []
        # Two blocks ahead: the next boundary's evaluation finds the block after it cached
        # (the expansion of a new week happens at a change or a boundary before, not at this one).
        while (len(self._cache) < 2 or self._cache_starts[-2] <= t) and self._pull():
            pass
        half = _CACHE // 2
        if len(self._cache) > _CACHE and self._cache_starts[half] <= t:
            del self._cache[:half], self._cache_starts[:half]
            self._from = self._cache_starts[0]

    def _pull(self) -> bool:
        block = None if self._more is None else next(self._more, None)
        if block is None:
            self._more = None
            return False
        self._cache.append(block)
        self._cache_starts.append(block.start)
        return True

    def at(self, t: datetime) -> Block | None:
        self._ensure(t)
        i = bisect_right(self._cache_starts, t) - 1
        if i >= 0 and t < self._cache[i].end:
            return self._cache[i]
        return None

    def next_edge(self, t: datetime) -> datetime | None:
        """The first block start or end after `t` (blocks never overlap)."""
        self._ensure(t)
        i = bisect_right(self._cache_starts, t) - 1
        if i >= 0 and self._cache[i].end > t:
            return self._cache[i].end
        return self._cache[i + 1].start if i + 1 < len(self._cache) else None

    def edges_after(self, t: datetime) -> Iterator[datetime]:
        edge = self.next_edge(t)
        while edge is not None:
            yield edge
            edge = self.next_edge(edge)

    def between(self, start: datetime, end: datetime) -> list[Block]:
        first = self.at(start)
        found = [] if first is None else [first]
        for edge in self.edges_after(start):
            if edge >= end:
                break
            block = self.at(edge)
            if block is not None and block.start == edge:
                found.append(block)
        return found

    def occurrences_near(self, start: datetime, end: datetime) -> list[Occurrence]:
        """The occurrences of every series that start in `[start, end)`."""
        return sorted(o for s in self.series for o in occurrences(s, start, end))


def _names_at(
    blocks: Blocks, cache: dict[datetime, list[str]], t: datetime, sources: Sequence[Named]
) -> list[str]:
    found = cache.get(t)
    if found is not None:
        return found
    if len(cache) > 64:
        cache.clear()
    found = []
    for block in (blocks.at(t), blocks.at(t - timedelta(seconds=1))):
        if block is not None and t in (block.start, block.end):
            found += _names_in(block, sources)
    cache[t] = found = list(dict.fromkeys(found))
    return found


def _names_in(block: Block, sources: Sequence[Named]) -> list[str]:
    """The event windows and occurrences that make up `block`, in start order."""
    lo, hi = block.window.start, block.window.end
    named: list[tuple[datetime, str]] = []
    for source in sources:
        for e in source.events.values():
            if not e.cancelled and lo <= e.window.start and e.window.end <= hi:
                named.append((e.window.start, f"event {e.event_id}"))
        for s in source.series.values():
            if not s.cancelled:
                named += [(o.start, f"series {o.name}") for o in occurrences(s, lo, hi) if o.end <= hi]
    return [name for _, name in sorted(named)]


def _order(w: Timed) -> tuple[datetime, datetime]:
    return (w.start, w.end)
