"""Event windows widened by the policy and merged into blocks (DESIGN 4).

Merging runs in start order; a window that would stretch the current block's
`event_window` beyond 31 days starts the next block instead (the two touch, so
the state stays `on` with a fresh `event_window`). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Protocol

from ledger.codec import INSTANTS_KEPT, shared_instant
from ledger.values import MAX_WINDOW, Policy, Window

__all__ = ["BY_TIMES", "Block", "Span", "Timed", "merge", "merge_blocks"]


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """An `event_window`: the earliest event start and latest event end of a block
    (or an override's window). Unlike a `Window` it may exceed 31 days."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Block:
    """Merged, widened event windows: `on` over [start, end); `window` spans the events inside."""

    start: datetime
    end: datetime
    window: Span


class Timed(Protocol):
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...


_WIDENED: dict[timedelta, dict[datetime, datetime]] = {}


def _widened(delta: timedelta) -> dict[datetime, datetime]:
    """Instants moved by `delta`, by instant: each computed and shared once (`shared_instant`);
    emptied, as its table is, once it holds INSTANTS_KEPT."""
    table = _WIDENED.get(delta)
    if table is None or len(table) >= INSTANTS_KEPT:
        if len(_WIDENED) >= 8:  # policies come and go
            _WIDENED.clear()
        table = _WIDENED[delta] = {}
    return table


def merge(windows: Iterable[Timed], policy: Policy) -> Iterator[Block]:
    """The blocks of `windows` (given in start order), each yielded once it is final."""
    pre, post = timedelta(seconds=policy.pre_roll), timedelta(seconds=policy.post_roll)
    gap = timedelta(seconds=policy.bridge_gap)
    current: Block | None = None
    # Widened instants would be new objects a block; a fleet's blocks share a few of them.
    earlier, later = _widened(-pre), _widened(post)
    for w in windows:
        start = earlier.get(w.start)
        if start is None:
            start = earlier[w.start] = shared_instant(w.start - pre)
        end = later.get(w.end)
        if end is None:
            end = later[w.end] = shared_instant(w.end + post)
        if current is None or start - current.end > gap:
            if current is not None:
                yield current
            current = Block(start, end, Span(w.start, w.end))
            continue
        span_end = max(current.window.end, w.end)
        if span_end - current.window.start <= MAX_WINDOW:
            current = Block(current.start, max(current.end, end), Span(current.window.start, span_end))
        else:  # the 31-day cap: the next block starts here and takes over the tail
            yield Block(current.start, min(current.end, start), current.window)
            current = Block(start, max(current.end, end), Span(w.start, span_end))
    if current is not None:
        yield current


def merge_blocks(windows: Iterable[Window], policy: Policy) -> tuple[Block, ...]:
    """Widen each window by pre/post-roll and merge those that overlap, touch or bridge."""
    return tuple(merge(sorted(windows, key=BY_TIMES), policy))


# Window's own order (its fields as a tuple), compared in C rather than by its generated
# `__lt__` for every comparison of a sort: the same order, the same stable result.
BY_TIMES = attrgetter("start", "end")
