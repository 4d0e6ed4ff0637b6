"""Each target's next boundary: when its intent changes next, the earliest first.

A mapping of target name -> instant (`due`, what checkpoints save and boundaries
are prepared from) and a heap of (instant, name) beside it for the earliest one.
A target scheduled anew leaves its old heap entry behind; an entry is live only
while `due` still says the same instant, and stale ones are dropped as they reach
the top, so a schedule is O(log n) and nothing is searched.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import datetime

__all__ = ["Boundaries"]


class Boundaries:
    """The next boundary of every target that has one."""

    def __init__(self, due: dict[str, datetime] | None = None) -> None:
        self.due: dict[str, datetime] = {} if due is None else due
        self._heap = [(at, name) for name, at in self.due.items()]
        heapq.heapify(self._heap)

    def schedule(self, name: str, at: datetime | None) -> None:
        """`name`'s next boundary is `at` (None: it has none)."""
        if at is None:
            self.due.pop(name, None)
        elif self.due.get(name) != at:
            self.due[name] = at
            heapq.heappush(self._heap, (at, name))

    def next(self) -> datetime | None:
        """The earliest boundary of any target (None: none)."""
        heap, due = self._heap, self.due
        while heap and due.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: datetime) -> Iterator[tuple[datetime, str]]:
        """Take every boundary at or before `now`, earliest first: (its instant, the target)."""
        heap, due = self._heap, self.due
        while heap and heap[0][0] <= now:
            at, name = heapq.heappop(heap)
            if due.get(name) == at:
                del due[name]
                yield at, name
